"""The soak engine: call a probe again and again until the check's end, on the session loop.

Closed loop (default): ``concurrency`` lanes run probes back to back, pausing ``interval``;
their starts are staggered over the first second.
Open loop (``rate``): probes start on a schedule (constant or Poisson arrivals), whatever the
deployment's speed, at most ``concurrency`` in flight; when that cap makes probes start late,
the lag is counted and reported instead of silently lowering the rate. ``ramp`` grows the lanes
or the rate linearly from zero.

Probe outcomes never stop a check by themselves; only its end (duration or probe budget), an
interrupt, a skip raised by the probe itself, or ``stop(reason)`` (the fail-fast rule of the
verdict layer, sequential.py) do.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from .errors import classify
from .marker import CheckSpec
from .observe import RequestTiming, StreamResult, current_observer
from .result import JSON
from .stats import NS_PER_MS, CheckRecorder

Probe = Callable[[str | None], Awaitable[Any]]

NS_PER_S = 1_000_000_000
LATE_AFTER_NS = 10 * NS_PER_MS
LATE_NOTE_SHARE = 0.01
STAGGER_S = 1.0
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
        self._in_flight: dict[int, tuple[str | None, int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._late = 0
        self._max_lag_ns = 0
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
        if self.spec.rate is None:
            for lane in range(self.spec.concurrency):
                self._spawn(self._lane(lane))
        else:
            self._spawn(self._schedule())
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

    def load_summary(self) -> JSON:
        spec = self.spec
        summary: JSON = {
            "mode": "closed" if spec.rate is None else "open",
            "concurrency": spec.concurrency,
            "ramp_s": spec.ramp_s,
            "max_loop_lag_ms": round(self._max_loop_lag_ns / NS_PER_MS, 3),
        }
        if spec.rate is not None:
            span_s = min(self.elapsed_s, spec.duration_s) or 1.0
            summary.update(
                rate=spec.rate,
                arrival=spec.arrival,
                scheduled_probes=round(self._scheduled_by(span_s)),
                achieved_rate=round(self._started_probes / span_s, 3),
                late_probes=self._late,
                max_lag_ms=round(self._max_lag_ns / NS_PER_MS, 3),
            )
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
        return notes + self._late_note()

    def _late_note(self) -> list[str]:
        """A note when more than 1% of the probes started late: a few late starts are the
        machine's jitter, not a client that cannot keep up (they still count in `load`)."""
        if self._late <= LATE_NOTE_SHARE * self._started_probes:
            return []
        span_s = min(self.elapsed_s, self.spec.duration_s)
        return [
            f"open loop fell behind: {self._late} of {self._started_probes} probes started "
            f"late (max {self._max_lag_ns / NS_PER_MS:.0f} ms) and "
            f"{self._started_probes} of ~{self._scheduled_by(span_s):.0f} scheduled probes "
            f"started: {self.spec.concurrency} in flight were not enough; raise concurrency "
            "or lower rate"
        ]

    def _scheduled_by(self, seconds: float) -> float:
        """How many probes the (ramped) rate schedules in the first `seconds`."""
        rate, ramp = self.spec.rate or 0.0, self.spec.ramp_s
        if seconds < ramp:
            return rate * seconds * seconds / (2 * ramp)
        return rate * (seconds - ramp / 2)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _lane(self, lane: int) -> None:
        spec = self.spec
        # Lanes started in lockstep stay in lockstep: their answers arrive in waves that queue
        # on this one loop and show up as gateway tail latency (bench/README.md). Without a
        # ramp, lane starts are spread over a second (a tenth of a shorter check).
        spread_s = spec.ramp_s or min(STAGGER_S, spec.duration_s / 10)
        if lane:
            await asyncio.sleep(spread_s * lane / spec.concurrency)
        while self._may_start():
            await self._probe_once(lane)
            if spec.interval_s:
                remaining = (self._deadline_ns - time.perf_counter_ns()) / NS_PER_S
                await asyncio.sleep(max(0.0, min(spec.interval_s, remaining)))

    async def _schedule(self) -> None:
        """Open loop: start probe k at its arrival time, come what may."""
        arrivals = self._arrival_offsets_ns()
        ids = itertools.count()
        running: set[asyncio.Task[Any]] = set()
        for offset in arrivals:
            due = self.start_ns + offset
            wait = due - time.perf_counter_ns()
            if wait > 0:
                await asyncio.sleep(wait / NS_PER_S)
            while len(running) >= self.spec.concurrency:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            if not self._may_start():
                return
            lag = time.perf_counter_ns() - due
            if lag > LATE_AFTER_NS:
                self._late += 1
                self._max_lag_ns = max(self._max_lag_ns, lag)
            task = self._spawn(self._probe_once(next(ids)))
            running.add(task)
            task.add_done_callback(running.discard)

    def _arrival_offsets_ns(self) -> Iterator[int]:
        """Arrival k when the (ramped) rate has delivered k probes: constant arrivals at whole
        counts, Poisson ones at a running sum of unit exponential gaps."""
        rate, ramp = self.spec.rate or 1.0, self.spec.ramp_s
        rng = random.Random()
        ramp_count = rate * ramp / 2  # probes a linear ramp from zero delivers

        def offset_ns(count: float) -> int:
            if count < ramp_count:
                seconds = math.sqrt(2 * ramp * count / rate)
            else:
                seconds = ramp + (count - ramp_count) / rate
            return int(seconds * NS_PER_S)

        if self.spec.arrival == "poisson":
            gaps = (rng.expovariate(1.0) for _ in itertools.count())
            return (offset_ns(count) for count in itertools.accumulate(gaps))
        return (offset_ns(count) for count in itertools.count())

    def _may_start(self) -> bool:
        if self._stop.is_set() or time.perf_counter_ns() >= self._deadline_ns:
            return False
        if self.spec.max_probes is not None and self._started_probes >= self.spec.max_probes:
            return False
        self._started_probes += 1
        return True

    async def _probe_once(self, slot: int) -> None:
        model = next(self._models)
        started = time.perf_counter_ns()
        observer = _ProbeObserver(self.recorder, self._t_s(started))
        token = current_observer.set(observer)
        self._in_flight[slot] = (model, started)
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
            self.recorder.failure(model, self._t_s(started), category, message)
        else:
            wall_ns = time.perf_counter_ns() - started
            self.recorder.success(
                model, self._t_s(started), (wall_ns - observer.queue_ns) / NS_PER_MS
            )
        finally:
            self._in_flight.pop(slot, None)
            current_observer.reset(token)

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


class _ProbeObserver:
    """Installed for one probe: forwards to the check's recorder and sums the probe's waits
    for a pooled connection, which are the client's, not the deployment's latency."""

    __slots__ = ("_recorder", "_t_s", "queue_ns")

    def __init__(self, recorder: CheckRecorder, t_s: float) -> None:
        self._recorder = recorder
        self._t_s = t_s  # the probe's start, which places its stream in a time window
        self.queue_ns = 0

    def request_done(self, timing: RequestTiming) -> None:
        self.queue_ns += timing.queue_ns or 0
        self._recorder.request_done(timing)

    def stream_done(self, result: StreamResult) -> None:
        self._recorder.stream_done(result, self._t_s)
