from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from pytest_observatory.onset import _period, find_bursts
from pytest_observatory.stats import (
    OTHER_ERRORS,
    CheckRecorder,
    ErrorCounter,
    FailureTimeline,
    LatencyHistogram,
)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("distribution", ["uniform", "lognormal", "bimodal"])
def test_quantiles_within_one_percent(distribution: str) -> None:
    rng = random.Random(7)
    draw = {
        "uniform": lambda: rng.uniform(1, 1000),
        "lognormal": lambda: rng.lognormvariate(3, 1),
        "bimodal": lambda: rng.choice([rng.gauss(20, 2), rng.gauss(900, 50)]),
    }[distribution]
    values = [max(0.01, draw()) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        expected = exact_quantile(values, q)
        assert histogram.quantile(q) == pytest.approx(expected, rel=0.0101)
    assert histogram.max == max(values)
    assert histogram.count == len(values)


def test_memory_is_bounded_by_range_not_count() -> None:
    histogram = LatencyHistogram()
    for i in range(200_000):
        histogram.record(1 + (i % 5000) * 0.37)
    # 1 ms .. 1851 ms at 2% bucket width is a few hundred buckets, whatever the count.
    assert len(histogram._counts) < 500


def test_merge_equals_recording_everything_in_one() -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(1, 1000):
        (a if i % 2 else b).record(float(i))
        both.record(float(i))
    a.merge(b)
    assert a.count == both.count
    assert [a.quantile(q) for q in (0.5, 0.99)] == [both.quantile(q) for q in (0.5, 0.99)]


def test_empty_histogram_has_no_quantiles() -> None:
    assert LatencyHistogram().quantile(0.5) is None


def test_error_counter_keeps_a_bounded_number_of_messages() -> None:
    counter = ErrorCounter(limit=3)
    for i in range(10):
        counter.add(f"error {i}")
    counter.add("error 0")
    counts = dict(counter.most_common())
    assert counts == {"error 0": 2, "error 1": 1, "error 2": 1, OTHER_ERRORS: 7}


def test_recorder_redacts_and_keeps_first_failure() -> None:
    recorder = CheckRecorder(10.0, 60.0, redact=lambda text: text.replace("sk-secret", "***"))
    recorder.success("a", 0.5, 10.0)
    recorder.failure("b", 1.5, "http_5xx", "http_5xx: HTTP 500: bad key sk-secret")
    recorder.failure("a", 2.5, "timeout", "timeout: ReadTimeout")
    assert recorder.total.probes == 3 and recorder.total.failures == 2
    assert recorder.first_failure is not None
    assert recorder.first_failure.model == "b"
    assert "sk-secret" not in recorder.first_failure.error
    assert recorder.models["a"].probes == 2 and recorder.models["a"].failures == 1


def timeline_with(
    duration_s: float, rate_per_s: int, failing: Callable[[float, int], bool]
) -> FailureTimeline:
    timeline = FailureTimeline(duration_s)
    for n in range(int(duration_s * rate_per_s)):
        t = n / rate_per_s
        timeline.add(t, failing(t, n))
    return timeline


def test_bursts_stand_out_from_a_background_rate() -> None:
    """One probe per second for 3 hours, 2% failing at random, plus a 30-second burst every
    hour on top: the bursts are found, hourly, and the background is not taken for one."""
    rng = random.Random(3)

    def failing(t: float, n: int) -> bool:
        in_burst = t >= 3600 and t % 3600 < 30
        return in_burst or rng.random() < 0.02

    bursts = find_bursts(timeline_with(3 * 3600, 1, failing))
    assert [start for start, _, _ in bursts] == [
        pytest.approx(3600, abs=20),
        pytest.approx(7200, abs=20),
    ]
    assert _period([start for start, _, _ in bursts]) == pytest.approx(3600, abs=20)


def test_a_steady_failure_rate_has_no_bursts() -> None:
    rng = random.Random(4)
    assert find_bursts(timeline_with(600, 20, lambda t, n: rng.random() < 0.05)) == []


def test_period_needs_consistent_gaps() -> None:
    assert _period([60, 120, 180]) == 60
    assert _period([60, 120]) == 60  # a TTL counted from the start
    assert _period([30, 120]) is None
    assert _period([60, 120, 300]) is None
    assert _period([60]) is None
