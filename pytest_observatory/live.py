"""Checks running now, for the live progress line.

The runner registers each run while it goes on (only when progress is shown); the progress
reporter reads snapshots on its own timer. The flow stays one-way: nothing here, in the engine
or in the recorder ever calls a reporter, and a snapshot is taken on the session loop, the one
thread that writes the recorder, so it never sees a half-updated histogram.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .engine import CheckRun
    from .loop import SessionLoop


@dataclass(frozen=True)
class Progress:
    """How far a running check has got. Built-in types only: it crosses from xdist workers."""

    elapsed_s: float
    duration_s: float
    probes: int
    failures: int
    p95_ms: float | None
    last_error: str | None
    nodeid: str = ""
    worker: str = ""
    phase: str = ""  # the current stage or sweep level (load/rows.py: phase_label)


class RunningChecks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[CheckRun, SessionLoop]] = {}

    def add(self, nodeid: str, run: CheckRun, loop: SessionLoop) -> None:
        with self._lock:
            self._runs[nodeid] = (run, loop)

    def snapshots(self, timeout_s: float = 1.0) -> list[Progress]:
        """One per running check; finished runs are dropped here, so nobody has to remove them."""
        with self._lock:
            for nodeid, (run, _) in list(self._runs.items()):
                if run.end_ns:
                    del self._runs[nodeid]
            runs = list(self._runs.items())
        found = []
        for nodeid, (run, loop) in runs:
            try:
                snapshot = loop.submit(_take(run)).result(timeout_s)
            except (concurrent.futures.TimeoutError, RuntimeError):
                continue  # the loop is busy or gone: skip this tick rather than wait
            if not run.end_ns:
                found.append(dataclasses.replace(snapshot, nodeid=nodeid))
        return found


async def _take(run: CheckRun) -> Progress:
    return run.snapshot()


RUNNING_KEY = pytest.StashKey[RunningChecks]()
