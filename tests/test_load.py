"""Stages and sweeps against the embedded mock with a known capacity (``capacity`` requests in
their 20 ms at once, the rest queued): per-stage rows with the spike and the recovery, per-stage
thresholds, the sweep's knee at the capacity for two capacities, and stop_on_saturation."""

from __future__ import annotations

import json
from typing import Any

import pytest

STAGED = """
import pytest

SPIKE = [("0.3s", 2), ("0.7s", 2), ("0.1s", 8), ("0.9s", 8), ("0.1s", 2), ("0.9s", 2)]

@pytest.mark.observatory(stages=SPIKE, max_recovery_p95_ratio=2.0)
async def test_spike(deployment, model):
    await deployment.chat(model, "hi")

@pytest.mark.observatory(stages=[("0.5s", 2), ("0.5s", 8, {"max_p95_latency": "30ms"})])
async def test_stage_limit(deployment, model):
    await deployment.chat(model, "hi")
"""

SWEEP = """
import pytest

@pytest.mark.observatory(sweep=[1, 2, 4, 8], step="0.5s")
async def test_sweep(deployment, model):
    await deployment.chat(model, "hi")

@pytest.mark.observatory(sweep=[1, 2, 4, 8, 16, 32], step="0.5s", stop_on_saturation=True)
async def test_sweep_stops(deployment, model):
    await deployment.chat(model, "hi")
"""


def run(pytester: pytest.Pytester, source: str, capacity: int) -> tuple[Any, dict[str, Any]]:
    pytester.makepyfile(source)
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url=mock?latency=20ms&capacity={capacity}",
        f"--observatory-report={report}",
    )
    checks = json.loads(report.read_text())["checks"]
    return result, {check["nodeid"].rsplit("::", 1)[1]: check for check in checks}


def test_stages_report_a_row_each_with_the_spike_and_the_recovery(
    pytester: pytest.Pytester,
) -> None:
    result, checks = run(pytester, STAGED, capacity=2)
    result.assert_outcomes(passed=1, failed=1)
    spike = checks["test_spike"]
    assert spike["verdict"] == "passed"
    assert spike["duration_s"] == pytest.approx(3.0, abs=0.5)
    rows = spike["stages"]
    assert [(r["target_from"], r["target_to"]) for r in rows] == [
        (0, 2),
        (2, 2),
        (2, 8),
        (8, 8),
        (8, 2),
        (2, 2),
    ]
    assert sum(r["probes"] for r in rows) == spike["probes"]
    hold, peak, recovery = rows[1], rows[3], rows[5]
    assert hold["in_flight"] == pytest.approx(2, abs=0.5)
    assert peak["in_flight"] == pytest.approx(8, abs=1.5)
    # capacity 2: eight lanes queue at the mock, so latency rises ~4x and throughput does not
    assert peak["p95_ms"] > 2.5 * hold["p95_ms"]
    assert peak["throughput_per_s"] < 1.5 * hold["throughput_per_s"]
    assert peak["started_per_s"] == pytest.approx(peak["throughput_per_s"], rel=0.2)
    assert recovery["p95_ms"] < 2 * hold["p95_ms"]
    result.stdout.fnmatch_lines(
        [
            "*stage*target*probes*started/s*done/s*in flight*fail rate*p50 ms*p95 ms*p99 ms*ttft*",
            "*1.0s-1.1s*2->8*",
            "*1.1s-2.0s*8 *",
        ]
    )
    limited = checks["test_stage_limit"]
    assert limited["verdict"] == "failed"
    assert limited["reasons"][0].startswith("stage 2 (500ms-1.0s): latency p95 ")
    assert limited["reasons"][0].endswith(" > max_p95_latency 30 ms")


@pytest.mark.parametrize("capacity", [2, 4])
def test_sweep_finds_the_knee_at_the_capacity(pytester: pytest.Pytester, capacity: int) -> None:
    result, checks = run(pytester, SWEEP, capacity)
    sweep = checks["test_sweep"]["sweep"]
    assert [row["level"] for row in sweep["levels"]] == [1, 2, 4, 8]
    assert sweep["knee"]["level"] == capacity
    result.stdout.fnmatch_lines([f"*saturation: concurrency {capacity} (*req/s, p95 *"])
    stopped = checks["test_sweep_stops"]
    # the knee is seen at the end of the level after it; the sweep ends there
    assert [row["level"] for row in stopped["sweep"]["levels"]] == [1, 2, 4, 8][
        : [1, 2, 4, 8].index(capacity) + 2
    ]
    assert stopped["sweep"]["knee"]["level"] == capacity
    assert stopped["load"]["stopped_after_level"] == capacity * 2
    assert stopped["verdict"] == "passed"
    result.stdout.fnmatch_lines(
        [f"*note: sweep stopped past saturation, after level {capacity * 2}"]
    )


def test_progress_lines_name_the_current_level(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(sweep=[1, 2, 4], step="1.5s")
        async def test_sweep(deployment, model):
            await deployment.chat(model, "hi")
        """
    )
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock?latency=20ms", "--observatory-progress=1s"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["observatory progress: *test_sweep: * of 4.5s (* left), level 2/3 (2), * probes, *"]
    )
