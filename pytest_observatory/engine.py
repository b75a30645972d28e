"""The soak engine: call a probe again and again for a duration, `concurrency` lanes at a time.

Probe outcomes never stop a check; only its end (duration or probe budget), an interrupt, or a
skip raised by the probe itself do. Runs on the session loop.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .errors import classify
from .marker import CheckSpec
from .stats import CheckRecorder

Probe = Callable[[str | None], Awaitable[Any]]

NS_PER_S = 1_000_000_000


class CheckRun:
    """One check's run. ``interrupt()`` may be called from any thread."""

    def __init__(self, spec: CheckSpec, probe: Probe, recorder: CheckRecorder) -> None:
        self.spec = spec
        self.recorder = recorder
        self.interrupted = False
        self._probe = probe
        self._models = itertools.cycle(spec.models) if spec.models else itertools.repeat(None)
        self._started_probes = 0
        self._in_flight: dict[int, tuple[str | None, int]] = {}
        self._lanes: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.start_ns = 0
        self.end_ns = 0

    @property
    def elapsed_s(self) -> float:
        end = self.end_ns or time.perf_counter_ns()
        return (end - self.start_ns) / NS_PER_S if self.start_ns else 0.0

    async def run(self) -> None:
        """Run to the end. Probes still in flight `request_timeout` after the deadline are
        cancelled and counted as hung: a stream that never ends is a finding, not a wait."""
        self._loop = asyncio.get_running_loop()
        self.start_ns = time.perf_counter_ns()
        self._deadline_ns = self.start_ns + int(self.spec.duration_s * NS_PER_S)
        self._lanes = [asyncio.create_task(self._lane(i)) for i in range(self.spec.concurrency)]
        try:
            done, pending = await asyncio.wait(
                self._lanes,
                timeout=self.spec.duration_s + self.spec.request_timeout_s,
                return_when=asyncio.FIRST_EXCEPTION,
            )
            if pending and not self.interrupted and not any(_raised(t) for t in done):
                self._record_hung()
        finally:
            for lane in self._lanes:
                lane.cancel()
            await asyncio.gather(*self._lanes, return_exceptions=True)
            self.end_ns = time.perf_counter_ns()
        for lane in done:
            if _raised(lane):
                raise lane.exception()  # type: ignore[misc]  # a skip from the probe

    def interrupt(self) -> None:
        """Stop now: in-flight probes are dropped, the figures so far are the result."""
        if self._loop is None or self._loop.is_closed():
            return
        self.interrupted = True
        self._loop.call_soon_threadsafe(lambda: [lane.cancel() for lane in self._lanes])

    async def _lane(self, lane_id: int) -> None:
        spec = self.spec
        while self._may_start():
            model = next(self._models)
            started = time.perf_counter_ns()
            self._in_flight[lane_id] = (model, started)
            try:
                await self._probe(model)
            except pytest.skip.Exception:
                raise
            except (Exception, pytest.fail.Exception) as exc:
                category, message = classify(exc)
                self.recorder.failure(model, self._t_s(started), category, message)
            else:
                self.recorder.success(model, (time.perf_counter_ns() - started) / 1e6)
            finally:
                self._in_flight.pop(lane_id, None)
            if spec.interval_s:
                remaining = (self._deadline_ns - time.perf_counter_ns()) / NS_PER_S
                await asyncio.sleep(max(0.0, min(spec.interval_s, remaining)))

    def _may_start(self) -> bool:
        if time.perf_counter_ns() >= self._deadline_ns:
            return False
        if self.spec.max_probes is not None and self._started_probes >= self.spec.max_probes:
            return False
        self._started_probes += 1
        return True

    def _record_hung(self) -> None:
        for model, started in list(self._in_flight.values()):
            self.recorder.failure(
                model,
                self._t_s(started),
                "timeout",
                f"timeout: probe still running {self.spec.request_timeout_s:g}s "
                "after the check's end (hung)",
            )

    def _t_s(self, ns: int) -> float:
        return (ns - self.start_ns) / NS_PER_S


def _raised(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
