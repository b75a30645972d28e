"""Closed loop: lanes run probes back to back, pausing ``interval``; the profile says how many
lanes are active at each moment (lane i runs while the target exceeds i), so a ramp, stages
and a sweep's staircase are all the same loop."""

from __future__ import annotations

import math

from ..result import JSON
from .profile import Profile
from .protocol import Driver


class ClosedLanes:
    def __init__(self, profile: Profile, interval_s: float) -> None:
        self.profile = profile
        self.interval_s = interval_s
        self.lanes = max(1, math.ceil(profile.peak))

    def start(self, run: Driver) -> None:
        for lane in range(self.lanes):
            run.spawn(self._lane(run, lane))

    async def _lane(self, run: Driver, lane: int) -> None:
        # Lanes started in lockstep stay in lockstep: their answers arrive in waves that queue
        # on this one loop and show up as gateway tail latency (bench/README.md), hence the
        # staggered start a ramp gives (shape.py ramps over a second when none is asked for).
        while True:
            due = self.profile.first_time_above(lane, run.elapsed_s_now())
            if due == math.inf or not await run.wait_until(due):
                return
            if not run.may_start():
                return
            await run.probe_once(lane)
            if self.interval_s:
                await run.wait_until(run.elapsed_s_now() + self.interval_s)

    def summary(self, elapsed_s: float) -> JSON:
        return {"mode": "closed", "concurrency": self.lanes}

    def notes(self, elapsed_s: float) -> list[str]:
        return []
