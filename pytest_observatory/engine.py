"""The soak engine: call a probe again and again until the check's end, on the session loop.

When probes start is the load shape's business (load/: closed lanes, open arrivals, stages,
sweeps); this run owns the clock, the deadline, stopping, and running and recording each probe.
Probes still in flight at the deadline finish (up to ``request_timeout``).

Probe outcomes never stop a check by themselves; only its end (duration or probe budget), an
interrupt, a skip raised by the probe itself, ``stop(reason)`` (the fail-fast rule of the
verdict layer, sequential.py) or the shape's own end (a sweep past saturation) do.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .errors import classify, http_status
from .live import Progress
from .load import shape_for
from .load.rows import phase_label
from .marker import CheckSpec
from .observe import Exchange, RequestTiming, StreamResult, current_observer
from .result import JSON
from .stats import NS_PER_MS, CheckRecorder

Probe = Callable[[str | None], Awaitable[Any]]

NS_PER_S = 1_000_000_000
WAKE_S = 0.25  # a sleeping shape wakes this often to see an early end
LOOP_TICK_S = 0.1
LOOP_BLOCKED_NS = 500 * NS_PER_MS  # a busy CI machine delays a tick by tens of ms, not this


class CheckRun:
    """One check's run. ``interrupt()`` may be called from any thread."""

    def __init__(self, spec: CheckSpec, probe: Probe, recorder: CheckRecorder) -> None:
        self.spec = spec
        self.recorder = recorder
        self.interrupted = False
        self.stop_reason: str | None = None
        self._probe = probe
        self._models = itertools.cycle(spec.models) if spec.models else itertools.repeat(None)
        self._started_probes = 0
        self._in_flight: dict[int, tuple[str | None, int, _ProbeObserver]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.shape, phases = shape_for(spec)
        for phase in phases:
            recorder.add_phase(phase)
        self.ended_early: str | None = None
        self._max_loop_lag_ns = 0
        self._loop_blocks = 0
        self._abort: BaseException | None = None
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
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self.start_ns = time.perf_counter_ns()
        self._deadline_ns = self.start_ns + int(self.spec.duration_s * NS_PER_S)
        watchdog = asyncio.ensure_future(self._watch_loop())  # first, to see the first probe
        self.shape.start(self)
        try:
            await self._wait_idle(self.spec.duration_s)
            grace_s = self._seconds_until(self._deadline_ns) + self.spec.request_timeout_s
            await self._wait_idle(grace_s)
            if self._tasks and not self._stop.is_set():
                self._record_hung()
        finally:
            watchdog.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.end_ns = time.perf_counter_ns()
        if self._abort is not None:
            raise self._abort

    def interrupt(self) -> None:
        """Stop now: in-flight probes are dropped, the figures so far are the result."""
        if self._loop is None or self._loop.is_closed():
            return
        self.interrupted = True
        self._loop.call_soon_threadsafe(self._stop.set)

    def stop(self, reason: str) -> None:
        """Stop early with a reason (fail-fast): like interrupt(), but the check is judged on
        the figures so far. The first reason wins."""
        if self._loop is None or self._loop.is_closed():
            return
        if self.stop_reason is None:
            self.stop_reason = reason
        self._loop.call_soon_threadsafe(self._stop.set)

    async def _wait_idle(self, timeout_s: float) -> None:
        """Until every task is done, a stop, or the timeout (O(1) per wake-up, however many
        probes an open loop has in flight)."""
        if not self._tasks or self._stop.is_set():
            return
        waiters = {
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._idle.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _watch_loop(self) -> None:
        """A blocking call in an ``async def`` probe (``time.sleep``, a sync HTTP client) stalls
        every lane and skews every timing; a tick that wakes up late shows it."""
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(LOOP_TICK_S)
            lag = time.perf_counter_ns() - before - int(LOOP_TICK_S * NS_PER_S)
            self._max_loop_lag_ns = max(self._max_loop_lag_ns, lag)
            if lag >= LOOP_BLOCKED_NS:
                self._loop_blocks += 1

    def _seconds_until(self, ns: int) -> float:
        return max(0.0, (ns - time.perf_counter_ns()) / NS_PER_S)

    # -- live progress (reporting/progress.py): a read-only view, taken on the loop thread --
    def snapshot(self) -> Progress:
        total = self.recorder.total
        return Progress(
            elapsed_s=self.elapsed_s,
            duration_s=self.spec.duration_s,
            probes=total.probes,
            failures=total.failures,
            p95_ms=total.latency.quantile(0.95),
            last_error=self.recorder.last_category,
            phase=phase_label(self.recorder, self.elapsed_s, bool(self.spec.sweep)),
        )

    # -- end of live progress --

    def load_summary(self) -> JSON:
        spec = self.spec
        summary: JSON = {
            **self.shape.summary(self.elapsed_s),
            "ramp_s": spec.ramp_s,
            "max_loop_lag_ms": round(self._max_loop_lag_ns / NS_PER_MS, 3),
        }
        if spec.rate is not None:
            summary["rate"] = spec.rate
        if self.ended_early is not None:
            summary["ended_early"] = self.ended_early
        return summary

    def notes(self) -> list[str]:
        notes = []
        if self._loop_blocks:
            notes.append(
                f"the event loop was blocked {self._loop_blocks} times, for up to "
                f"{self._max_loop_lag_ns / NS_PER_S:.1f}s: a blocking call in an async def "
                "check (time.sleep, a sync HTTP client) stalls every probe and skews every "
                "timing; await instead, or write a plain def check"
            )
        if self.ended_early is not None:
            notes.append(self.ended_early)
        return notes + self.shape.notes(self.elapsed_s)

    # -- what a load shape may use (load/protocol.py: Driver) --
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def elapsed_s_now(self) -> float:
        return (time.perf_counter_ns() - self.start_ns) / NS_PER_S

    async def wait_until(self, t_s: float) -> bool:
        due_ns = self.start_ns + int(min(t_s, self.spec.duration_s) * NS_PER_S)
        while True:
            if self._stop.is_set() or time.perf_counter_ns() >= self._deadline_ns:
                return False
            wait_ns = due_ns - time.perf_counter_ns()
            if wait_ns <= 0:
                return True
            await asyncio.sleep(min(wait_ns / NS_PER_S, WAKE_S))

    def end_early(self, note: str) -> None:
        if self.ended_early is None:
            self.ended_early = note
            self._deadline_ns = min(self._deadline_ns, time.perf_counter_ns())
            self.recorder.cut_phases(self.elapsed_s_now())

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    def may_start(self) -> bool:
        if self._stop.is_set() or time.perf_counter_ns() >= self._deadline_ns:
            return False
        if self.spec.max_probes is not None and self._started_probes >= self.spec.max_probes:
            return False
        self._started_probes += 1
        return True

    async def probe_once(self, slot: int) -> None:
        model = next(self._models)
        started = time.perf_counter_ns()
        observer = _ProbeObserver(self.recorder, self._t_s(started))
        token = current_observer.set(observer)
        self._in_flight[slot] = (model, started, observer)
        self.recorder.probe_started(self._t_s(started))
        try:
            await self._probe(model)
        except (pytest.skip.Exception, pytest.exit.Exception) as exc:  # they end the check
            self._abort = exc
            self._stop.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Anything else is the probe failing, SystemExit, KeyboardInterrupt and
            # GeneratorExit included: raised by probe code (a real Ctrl-C reaches the main
            # thread, never this loop), and re-raised from a task they would kill the loop.
            category, message = classify(exc)
            self.recorder.failure(
                model, self._t_s(started), category, message, slot, http_status(exc), observer.last
            )
        else:
            wall_ns = time.perf_counter_ns() - started
            self.recorder.success(
                model, self._t_s(started), (wall_ns - observer.queue_ns) / NS_PER_MS
            )
        finally:
            self._in_flight.pop(slot, None)
            current_observer.reset(token)

    def _record_hung(self) -> None:
        for slot, (model, started, observer) in list(self._in_flight.items()):
            self.recorder.failure(
                model,
                self._t_s(started),
                "timeout",
                f"timeout: probe still running {self.spec.request_timeout_s:g}s "
                "after the check's end (hung)",
                slot,
                None,
                observer.last,
            )

    def _t_s(self, ns: int) -> float:
        return (ns - self.start_ns) / NS_PER_S


class _ProbeObserver:
    """Installed for one probe: forwards to the check's recorder, sums the probe's waits
    for a pooled connection, which are the client's, not the deployment's latency, and keeps
    the probe's latest request, to which a failure is traced."""

    __slots__ = ("_recorder", "_t_s", "queue_ns", "last")

    def __init__(self, recorder: CheckRecorder, t_s: float) -> None:
        self._recorder = recorder
        self._t_s = t_s  # the probe's start, which places its stream in a time window
        self.queue_ns = 0
        self.last: Exchange | None = None

    def request_sent(self, exchange: Exchange) -> None:
        self.last = exchange

    def tokens_used(self, model: str | None, usage: object) -> None:
        self._recorder.tokens.add(model, usage)

    def request_done(self, timing: RequestTiming) -> None:
        self.queue_ns += timing.queue_ns or 0
        self._recorder.request_done(timing)

    def stream_done(self, result: StreamResult) -> None:
        self._recorder.stream_done(result, self._t_s)
