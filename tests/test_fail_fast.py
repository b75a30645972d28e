"""Fail-fast: the sequential test's error rates simulated over thousands of seeded runs, the rule
fed probe by probe with a fake clock, and whole sessions against dead and bursting gateways.

    python tests/test_fail_fast.py   # prints the operating characteristic quoted in README.md
"""

from __future__ import annotations

import json
import math
import random
import statistics
from typing import Any

import pytest

from pytest_observatory.marker import CheckSpec
from pytest_observatory.sequential import FailFast, SequentialRateTest

HORIZON = 10_800  # the release suite: 3 h at one probe per second


def early_stops(
    threshold: float, rate: float, runs: int, horizon: int = HORIZON, seed: int = 1
) -> list[int]:
    """Run the decision rule over `runs` seeded runs of `horizon` probes failing independently
    at `rate`; return, for each run it failed early, the probes it took. The log likelihood
    ratio only grows on a failure, so the rule is asked at each failure: failures are drawn as
    geometric gaps, which makes a 10,800-probe run cost its few dozen failures."""
    test = SequentialRateTest(threshold)
    rng = random.Random(seed)
    log_pass = math.log1p(-rate) if rate < 1 else None
    stops = []
    for _ in range(runs):
        probes = failures = 0
        while True:
            gap = 1 if log_pass is None else 1 + int(math.log(1.0 - rng.random()) / log_pass)
            probes += gap
            if probes > horizon:
                break
            failures += 1
            if test.conclusive(failures, probes):
                stops.append(probes)
                break
    return stops


@pytest.mark.parametrize(
    ("threshold", "dead_after"),
    [(0.001, 7), (0.01, 7), (0.05, 7), (0.2, 7), (1 / 3, 7), (0.5, 12), (0.9, 86)],
)
def test_a_gateway_failing_every_probe_is_failed_within_a_few_probes(
    threshold: float, dead_after: int
) -> None:
    test = SequentialRateTest(threshold)
    first = next(n for n in range(1, 1000) if test.conclusive(n, n))
    assert first == dead_after
    assert early_stops(threshold, 1.0, runs=10) == [dead_after] * 10


@pytest.mark.parametrize(
    ("threshold", "share", "runs", "horizon"),
    [
        (0.01, 0.5, 10_000, HORIZON),  # the bar: half the threshold
        (0.01, 1.0, 3_000, HORIZON),  # the worst case the guarantee covers
        (0.05, 0.9, 2_000, HORIZON),
        (0.01, 1.0, 1_000, 100_000),  # any horizon: Ville's inequality
        (0.2, 1.0, 3_000, 1_000),
    ],
)
def test_at_or_below_the_threshold_at_most_one_run_in_a_hundred_fails_early(
    threshold: float, share: float, runs: int, horizon: int
) -> None:
    stops = early_stops(threshold, share * threshold, runs, horizon)
    assert len(stops) / runs <= 0.01
    if share == 0.5:
        assert len(stops) / runs <= 0.001


@pytest.mark.parametrize(
    ("threshold", "factor", "median_at_most"),
    [(0.01, 3, 600), (0.05, 3, 120), (0.2, 3, 25)],
)
def test_far_above_the_threshold_every_run_fails_early(
    threshold: float, factor: float, median_at_most: int
) -> None:
    """The other error: a deployment at three times the threshold that runs the full 3 hours."""
    stops = early_stops(threshold, factor * threshold, runs=2_000)
    assert len(stops) == 2_000
    assert statistics.median(stops) <= median_at_most


class Harness:
    """The rule with a clock the test moves and a record of its stop requests."""

    def __init__(self, **spec: Any) -> None:
        self.now = 0.0
        self.stops: list[str] = []
        self.rule = FailFast(CheckSpec(**spec), lambda: self.now, self.stops.append)

    def probes(self, count: int, failed: bool, t_s: float | None = None) -> None:
        for _ in range(count):
            t = self.now if t_s is None else t_s
            self.rule.probe_started(t)
            self.rule.probe_done(t, failed)


def test_a_healthy_run_is_never_stopped() -> None:
    harness = Harness(duration_s=3600, max_window_failure_rate=0.2, window_s=10)
    rng = random.Random(5)
    for step in range(36_000):
        harness.now = step / 10
        harness.probes(1, rng.random() < 0.004)
    assert harness.stops == [] and harness.rule.decision is None


def test_a_closed_window_over_its_limit_settles_the_verdict() -> None:
    harness = Harness(
        duration_s=600, max_failure_rate=0.9, window_s=10, max_window_failure_rate=0.1
    )
    harness.probes(15, failed=False)
    harness.probes(3, failed=True)
    for _ in range(2):  # still in flight when the window closes
        harness.rule.probe_started(9.0)
    harness.now = 9.9
    harness.probes(1, failed=False)
    assert harness.stops == []  # 3 of 21: the window is still open
    harness.now = 10.0
    harness.probes(1, failed=False)
    assert harness.stops == [
        "window 0ms-10.0s: failure rate 14.29% >= max_window_failure_rate 10.00% "
        "(3 of 21 probes started)"
    ]
    decision = harness.rule.decision
    assert decision is not None and decision.t_s == 10.0 and decision.probes == 19
    harness.probes(5, failed=True)
    assert len(harness.stops) == 1  # decided once


def test_probes_still_in_flight_count_as_successes_until_they_fail() -> None:
    harness = Harness(
        duration_s=600, max_failure_rate=0.9, window_s=10, max_window_failure_rate=0.12
    )
    harness.probes(9, failed=False)
    harness.probes(1, failed=True)
    for _ in range(10):
        harness.rule.probe_started(5.0)
    harness.now = 12.0
    harness.probes(1, failed=False)
    assert harness.stops == []  # 1 of 20 started: whatever the 10 in flight do, 5% < 12%
    harness.rule.probe_done(5.0, False)
    harness.rule.probe_done(5.0, True)
    assert harness.stops == []  # 2 of 20
    harness.rule.probe_done(5.0, True)
    assert harness.stops and harness.stops[0].startswith("window 0ms-10.0s: failure rate 15.00%")


def test_a_rate_threshold_of_zero_is_settled_by_the_first_failure() -> None:
    harness = Harness(duration_s=600, max_failure_rate=0.0)
    harness.probes(100, failed=False)
    harness.probes(1, failed=True)
    assert harness.stops == [
        "failure rate 0.99% >= max_failure_rate 0.00% (1 of 101 probes failed)"
    ]


CHECK = """
import pytest

@pytest.mark.observatory(duration={duration!r}{args})
async def test_check(deployment, model):
    await deployment.chat(model, "hi")
"""


def run_session(
    pytester: pytest.Pytester, url: str, duration: str, args: str = "", *argv: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_release=CHECK.format(duration=duration, args=args))
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url={url}",
        "--models=mock-gpt-4o,mock-gpt-4o-mini",
        f"--observatory-report={report}",
        *argv,
    )
    (check,) = json.loads(report.read_text())["checks"]
    return result, check


def test_a_dead_deployment_fails_a_ten_minute_check_within_seconds(
    pytester: pytest.Pytester,
) -> None:
    result, check = run_session(pytester, "http://127.0.0.1:9", "10m", ", fail_fast=True")
    result.assert_outcomes(failed=1)
    assert check["verdict"] == "failed" and check["duration_s"] < 20
    stopped = check["stopped_early"]
    assert stopped["probes"] == 7 and stopped["failures"] == 7 and stopped["t_s"] < 20
    assert stopped["reason"] == (
        "sequential test: failure rate at or above max_failure_rate 1.00% at 99% confidence "
        "(7 of 7 probes failed)"
    )
    assert check["reasons"][0].startswith("stopped early (fail_fast) at ")
    result.stdout.fnmatch_lines(
        [
            "observatory check failed: stopped early (fail_fast) at *s after 7 probes: "
            "sequential test: *(7 of 7 probes failed)*",
            "FAILED early *test_release.py::test_check",
            "* stopped early (fail_fast) at *s after 7 probes: sequential test*",
        ]
    )


def test_stopped_early_crosses_from_an_xdist_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_release=CHECK.format(duration="10m", args=", fail_fast=True"))
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--deployment-url=http://127.0.0.1:9",
        "--models=a,b",
        f"--observatory-report={report}",
    )
    result.assert_outcomes(failed=1)
    (check,) = json.loads(report.read_text())["checks"]
    assert check["stopped_early"]["probes"] == 7
    result.stdout.fnmatch_lines(["FAILED early *test_release.py::test_check"])


@pytest.mark.parametrize("source", ["flag", "env", "ini"])
def test_the_session_option_turns_fail_fast_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    argv: list[str] = []
    if source == "flag":
        argv.append("--observatory-fail-fast")
    elif source == "env":
        monkeypatch.setenv("OBSERVATORY_FAIL_FAST", "1")
    else:
        pytester.makeini("[pytest]\nobservatory_fail_fast = true\n")
    result, check = run_session(pytester, "http://127.0.0.1:9", "10m", "", *argv)
    result.assert_outcomes(failed=1)
    assert check["stopped_early"]["probes"] == 7 and check["duration_s"] < 20
    result.stdout.fnmatch_lines(["observatory: *fail-fast*"])


def test_a_marker_opts_out_of_the_session_fail_fast(pytester: pytest.Pytester) -> None:
    result, check = run_session(
        pytester,
        "http://127.0.0.1:9",
        "1s",
        ", fail_fast=False, interval='50ms'",
        "--observatory-fail-fast",
    )
    result.assert_outcomes(failed=1)
    assert check["stopped_early"] is None and check["duration_s"] >= 1.0


def test_a_healthy_deployment_never_passes_early(pytester: pytest.Pytester) -> None:
    result, check = run_session(
        pytester, "mock?failure_rate=0.02", "1s", ", fail_fast=True, max_failure_rate=0.2"
    )
    result.assert_outcomes(passed=1)
    assert check["stopped_early"] is None and check["duration_s"] >= 1.0
    assert check["failures"] > 0  # failures seen, yet no early verdict either way


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        # Pooled: half the probes fail during the burst; the sequential test is conclusive.
        ("", "sequential test: failure rate at or above max_failure_rate 1.00%*"),
        # A high pooled threshold: the window holding the burst settles it when it closes.
        (
            ", max_failure_rate=0.5, window='2s', max_window_failure_rate=0.1",
            "window *: failure rate *% >= max_window_failure_rate 10.00% (* probes started)",
        ),
    ],
)
def test_a_ttl_burst_fails_a_ten_minute_check_within_the_burst_plus_one_window(
    pytester: pytest.Pytester, args: str, reason: str
) -> None:
    every_s, length_s = 3.0, 1.0
    result, check = run_session(
        pytester,
        f"mock?burst_every={every_s:g}s&burst_length={length_s:g}s",
        "10m",
        f", fail_fast=True, concurrency=2, interval='10ms'{args}",
    )
    result.assert_outcomes(failed=1)
    stopped = check["stopped_early"]
    window_s = 2.0 if "window=" in args else 10.0
    # The mock's clock starts with the session, a little before the check: its first burst
    # falls at most `every_s` into the check.
    assert check["first_failure"]["t_s"] <= stopped["t_s"] <= every_s + length_s + window_s + 0.5
    assert check["duration_s"] < every_s + length_s + window_s + 2
    assert pytest.importorskip("fnmatch").fnmatch(stopped["reason"], reason)
    assert check["first_failure"]["error"].endswith("the client has been closed.")


def test_bad_fail_fast_values_are_one_line_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_bad=CHECK.format(duration="1s", args=", fail_fast='yes'"))
    result = pytester.runpytest("--deployment-url=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_bad.py::test_check: observatory marker: fail_fast='yes': expected True or False"]
    )
    monkeypatch.setenv("OBSERVATORY_FAIL_FAST", "maybe")
    result = pytester.runpytest("--deployment-url=mock")
    result.stderr.fnmatch_lines(["ERROR: OBSERVATORY_FAIL_FAST='maybe': expected true or false"])
    result.stdout.no_fnmatch_line("*Traceback*")


if __name__ == "__main__":
    RUNS = 2_000
    print(f"{RUNS:,} seeded runs of {HORIZON:,} probes (3 h at one per second) per row")
    print("| max_failure_rate | true failure rate | failed early | median probes to the verdict |")
    print("|---|---|---|---|")
    for limit in (0.01, 0.05, 0.2):
        for factor in (0.5, 0.9, 1.0, 1.5, 2.0, 3.0, 1 / limit):
            rate = min(1.0, factor * limit)
            stops = early_stops(limit, rate, runs=RUNS)
            median = f"{statistics.median(stops):,.0f}" if stops else "-"
            print(f"| {limit:.0%} | {rate:.2%} | {len(stops) / RUNS:.2%} | {median} |")
