"""``--junitxml``: each check's figures as properties of its testcase, for CI dashboards.

They go on ``item.user_properties`` during the call, as ``record_property`` does, so they ride
on the test reports: under xdist the worker's report carries them to the controller, which is
where pytest's junitxml writes the file. Registered wherever a JUnit file is requested, workers
included; it writes nothing itself.
"""

from __future__ import annotations

import pytest

from ..result import CheckResult
from ..runner import RESULT_KEY


class JunitProperties:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> None:
        result = item.stash.get(RESULT_KEY, None) if call.when == "call" else None
        if result is not None:
            item.user_properties.extend(junit_properties(result))


def junit_properties(result: CheckResult) -> list[tuple[str, object]]:
    """Names as in the issue tracker's CI dashboards; a figure nobody measured is left out."""
    figures: dict[str, object] = {
        "probes": result.probes,
        "failures": result.failures,
        "failure_rate": round(result.failure_rate, 6),
        "p50_ms": result.latency_ms.get("p50"),
        "p95_ms": result.latency_ms.get("p95"),
        "p99_ms": result.latency_ms.get("p99"),
        "ttft_p95_ms": result.ttft_ms.get("p95") if result.ttft_ms else None,
        "verdict": result.verdict,
    }
    return [(name, value) for name, value in figures.items() if value is not None]
