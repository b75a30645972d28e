"""Failure patterns per model and per error, from sparse failures: simulated recordings (no
network, seeded) and one session against the mock's TTL mode."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from pytest_observatory.onset import failure_pattern, onset
from pytest_observatory.stats import EXACT_FAILURE_TIMES, MAX_SLICES, CheckRecorder, FailureTimes

CLOSED = "client_closed: Cannot send a request, as the client has been closed"
NOISE = "http_5xx: HTTP 500 from /v1/chat/completions: upstream error"

# (t_s, model) -> the error message of a failing probe, or None for a success
Outcome = Callable[[float, str], "str | None"]


def simulate(duration_s: float, every_s: float, outcome: Outcome) -> CheckRecorder:
    """Two lanes, one probe each every `every_s`, the models taken in turn across lanes (as
    the engine does), a little start jitter."""
    rng = random.Random(11)
    recorder = CheckRecorder(10.0, duration_s)
    models = ["model-a", "model-b"]
    n = 0
    for step in range(int(duration_s / every_s)):
        for lane in range(2):
            t = step * every_s + lane * every_s / 2 + rng.uniform(0, every_s / 10)
            model = models[n % 2]
            n += 1
            error = outcome(t, model)
            if error is None:
                recorder.success(model, t, 12.0)
            else:
                recorder.failure(model, t, error.split(":")[0], error)
    return recorder


def sparse_ttl(seed: int, noise: float) -> Outcome:
    """model-b fails for 0.6 s every 10 s from 3.8 s (one or two of its probes), and both
    models fail at random at the `noise` rate."""
    rng = random.Random(seed)

    def outcome(t: float, model: str) -> str | None:
        if model == "model-b" and t >= 3.8 and (t - 3.8) % 10 < 0.6:
            return CLOSED
        return NOISE if rng.random() < noise else None

    return outcome


@pytest.mark.parametrize("seed", range(20))
def test_sparse_periodic_failures_on_one_model_show_its_period(seed: int) -> None:
    """The issue's gateway: 45 s, two lanes, two models, ~150 probes; one model fails one or
    two probes every ~10 s; plus 1% background noise on both models."""
    recorder = simulate(45.0, 0.6, sparse_ttl(seed, noise=0.01))
    result = onset(recorder, 45.0)
    assert result is not None
    model_b, model_a = result["models"]["model-b"], result["models"]["model-a"]
    assert model_b["period_s"] == pytest.approx(10.0, rel=0.1)
    assert model_b["summary"].startswith("failures every ~")
    assert model_a["period_s"] is None
    closed = result["errors"][CLOSED]
    assert closed["period_s"] == pytest.approx(10.0, rel=0.1)


def test_failures_confined_to_one_model_are_named() -> None:
    recorder = simulate(45.0, 0.6, sparse_ttl(0, noise=0.0))
    result = onset(recorder, 45.0)
    assert result is not None
    assert result["models"]["model-b"]["summary"].startswith("failures every ~10.0s, first at 3.")
    assert result["models"]["model-a"]["summary"] == "no failures"
    assert result["confined_to"] == "model-b"
    assert result["summary"].startswith("failures every ~10.0s, first at 3.")
    assert result["summary"].endswith("; only model-b failed")


@pytest.mark.parametrize("rate", [0.01, 0.03, 0.1, 0.3])
@pytest.mark.parametrize("seed", range(5))
def test_random_failures_at_a_steady_rate_have_no_period(rate: float, seed: int) -> None:
    rng = random.Random(seed)
    recorder = simulate(1200.0, 0.5, lambda t, model: NOISE if rng.random() < rate else None)
    result = onset(recorder, 1200.0)
    assert result is not None
    assert result["period_s"] is None
    assert [m["period_s"] for m in result["models"].values()] == [None, None]
    assert result["errors"][NOISE]["period_s"] is None


def test_hourly_bursts_in_a_three_hour_run_read_every_hour() -> None:
    """One probe per second; from 1 h on, every hour, model-b fails two probes (a TTL counted
    from the start); 0.2% background noise on model-a."""
    rng = random.Random(2)

    def outcome(t: float, model: str) -> str | None:
        if model == "model-b" and t >= 3600 and t % 3600 < 4:
            return CLOSED
        return NOISE if model == "model-a" and rng.random() < 0.002 else None

    recorder = simulate(3 * 3600, 2.0, outcome)
    result = onset(recorder, 3 * 3600)
    assert result is not None
    assert result["models"]["model-b"]["period_s"] == pytest.approx(3600, rel=0.01)
    assert result["models"]["model-b"]["summary"].startswith("failures every ~1h00m")
    assert "every ~1h00m" in result["summary"]
    assert result["models"]["model-a"]["period_s"] is None


def test_every_probe_failing_is_said_plainly() -> None:
    refused = "connection_refused: ConnectError: [Errno 111] Connection refused"
    recorder = simulate(5.0, 0.5, lambda t, model: refused)
    result = onset(recorder, 5.0)
    assert result is not None
    assert result["summary"] == f"every probe failed from the start: {refused}"
    assert result["models"]["model-a"]["summary"] == "every probe failed (10 of 10)"


def test_failure_times_are_kept_in_bounded_memory() -> None:
    times = FailureTimes(slice_s=3 * 3600 / MAX_SLICES)
    for i in range(200_000):
        times.add(i * 3 * 3600 / 200_000)
    assert times.count == 200_000
    assert len(times.exact) == EXACT_FAILURE_TIMES
    assert len(times.coarse) <= MAX_SLICES + 1
    assert sum(count for _, count in times.events()) == 200_000


def test_the_period_survives_past_the_exact_failure_times() -> None:
    """Hourly bursts of 300 failures each: beyond the first 256 only per-slice counts are
    kept, and the bursts and their period still come out."""
    duration_s = 3 * 3600
    times = FailureTimes(slice_s=duration_s / MAX_SLICES)
    for hour in (1, 2):
        for i in range(300):
            times.add(hour * 3600 + i * 0.1)
    assert times.coarse
    pattern = failure_pattern(times, probes=100_000, duration_s=duration_s)
    assert [round(start) for start, _, _ in pattern.clusters] == [3600, 7200]
    assert pattern.period_s == pytest.approx(3600, rel=0.01)


def test_per_model_onset_from_the_mock_ttl_mode(pytester: pytest.Pytester) -> None:
    """The mock's TTL mode on its first model, short bursts: a few failures each."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="13s", concurrency=2, interval="100ms")
        async def test_chat(deployment, model):
            await deployment.chat(model, "hi")
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--deployment-url=mock?burst_every=3s&burst_length=300ms",
        f"--observatory-report={report}",
    )
    result.assert_outcomes(failed=1)
    (check,) = json.loads(report.read_text())["checks"]
    onset_ = check["onset"]
    assert onset_["confined_to"] == "mock-gpt-4o"
    assert onset_["models"]["mock-gpt-4o"]["period_s"] == pytest.approx(3.0, rel=0.1)
    assert onset_["models"]["mock-gpt-4o-mini"]["summary"] == "no failures"
    result.stdout.fnmatch_lines(
        [
            "*onset: *; only mock-gpt-4o failed",
            "*  mock-gpt-4o: failures every ~3.0s, first at *s",
            "*  mock-gpt-4o-mini: no failures",
        ]
    )
