"""Open loop: probes start on a schedule (constant or Poisson arrivals) whatever the
deployment's speed, at most ``cap`` in flight; when that cap makes probes start late, the lag
is counted and reported instead of silently lowering the rate. The profile gives the rate over
time (a ramp, stages, a sweep's staircase); arrival k is due when it has scheduled k probes."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

from ..result import JSON
from ..stats import NS_PER_MS
from .profile import Profile
from .protocol import Driver

NS_PER_S = 1_000_000_000
LATE_AFTER_NS = 10 * NS_PER_MS
LATE_NOTE_SHARE = 0.01


class OpenArrivals:
    def __init__(self, profile: Profile, arrival: str, cap: int) -> None:
        self.profile = profile
        self.arrival = arrival
        self.cap = cap
        self.started = 0
        self.late = 0
        self.max_lag_ns = 0

    def start(self, run: Driver) -> None:
        run.spawn(self._schedule(run))

    async def _schedule(self, run: Driver) -> None:
        """Start probe k at its arrival time, come what may."""
        ids = itertools.count()
        running: set[asyncio.Task[Any]] = set()
        for offset_s in self._arrival_offsets_s():
            if not await run.wait_until(offset_s):
                return
            while len(running) >= self.cap:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            if not run.may_start():
                return
            self.started += 1
            lag = time.perf_counter_ns() - run.start_ns - int(offset_s * NS_PER_S)
            if lag > LATE_AFTER_NS:
                self.late += 1
                self.max_lag_ns = max(self.max_lag_ns, lag)
            task = run.spawn(run.probe_once(next(ids)))
            running.add(task)
            task.add_done_callback(running.discard)

    def _arrival_offsets_s(self) -> Iterator[float]:
        """Constant arrivals at whole counts, Poisson ones at a running sum of unit
        exponential gaps, each mapped through the profile's inverse."""
        if self.arrival == "poisson":
            rng = random.Random()
            gaps = (rng.expovariate(1.0) for _ in itertools.count())
            counts: Iterator[float] = itertools.accumulate(gaps)
        else:
            counts = (float(k) for k in itertools.count())
        return (self.profile.time_of(count) for count in counts)

    def summary(self, elapsed_s: float) -> JSON:
        span_s = min(elapsed_s, self.profile.duration_s) or 1.0
        return {
            "mode": "open",
            "concurrency": self.cap,
            "arrival": self.arrival,
            "scheduled_probes": round(self.profile.integral(span_s)),
            "achieved_rate": round(self.started / span_s, 3),
            "late_probes": self.late,
            "max_lag_ms": round(self.max_lag_ns / NS_PER_MS, 3),
        }

    def notes(self, elapsed_s: float) -> list[str]:
        """A note when more than 1% of the probes started late: a few late starts are the
        machine's jitter, not a client that cannot keep up (they still count in `load`)."""
        if self.late <= LATE_NOTE_SHARE * self.started:
            return []
        span_s = min(elapsed_s, self.profile.duration_s)
        return [
            f"open loop fell behind: {self.late} of {self.started} probes started "
            f"late (max {self.max_lag_ns / NS_PER_MS:.0f} ms) and "
            f"{self.started} of ~{self.profile.integral(span_s):.0f} scheduled probes "
            f"started: {self.cap} in flight were not enough; raise concurrency "
            "or lower rate"
        ]
