"""xdist: a worker that dies mid-check still gets its check reported once, as ``crashed``.

The worker cannot report its own death, so its setup report carries the admitted check's
metadata; when xdist then reports the node as crashed (``when == "???"``), the controller turns
what it knew into a CheckResult and the session goes on with the other workers.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from .locks import Meta
from .result import CheckResult

STARTED_ATTR = "observatory_started"
XDIST_CRASH_PHASE = "???"  # the `when` of the report xdist makes for a crashed worker's test
UTC_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # as result.utc_iso writes it


class CrashWatch:
    """Registered on the xdist controller only."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._running: dict[str, Meta] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        started = getattr(report, STARTED_ATTR, None)
        if started is not None:
            self._running[report.nodeid] = started
        elif report.when == "teardown":
            self._running.pop(report.nodeid, None)
        elif report.when == XDIST_CRASH_PHASE and report.nodeid in self._running:
            result = crashed_result(report.nodeid, self._running.pop(report.nodeid))
            self._config.hook.pytest_observatory_check_finished(config=self._config, result=result)


def crashed_result(nodeid: str, meta: Meta) -> CheckResult:
    started = meta.get("started")
    ran_s = 0.0
    if not isinstance(started, str):
        started = None
    else:
        start = datetime.strptime(started, UTC_ISO_FORMAT).replace(tzinfo=timezone.utc)
        ran_s = max(time.time() - start.timestamp(), 0.0)
    return CheckResult(
        nodeid,
        "crashed",
        duration_s=round(ran_s, 3),
        started_at=started,
        queued_s=float(meta.get("queued_s", 0.0)),
        notes=[
            f"xdist worker {meta.get('worker')} (pid {meta.get('pid')} on host "
            f"{meta.get('host')}) died during the check, started {started}; "
            "its measurements are lost"
        ],
    )
