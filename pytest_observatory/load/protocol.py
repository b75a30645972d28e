"""What a load shape is, and what of the run it may use: the shape decides when probes start,
the run (engine.py) runs them, records them and owns the clock, the deadline and stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

from ..result import JSON
from ..stats import CheckRecorder


class Driver(Protocol):
    """The run as a shape sees it."""

    recorder: CheckRecorder
    start_ns: int

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]: ...

    def may_start(self) -> bool:
        """False once the run ends (deadline, probe budget, stop); True counts one probe."""

    def probe_once(self, slot: int) -> Awaitable[None]: ...

    async def wait_until(self, t_s: float) -> bool:
        """Sleep until ``t_s`` into the run; False if the run ended first."""

    def elapsed_s_now(self) -> float: ...

    def end_early(self, note: str) -> None:
        """End the schedule now (no new probes; those in flight finish): a shape's own end,
        e.g. a sweep past saturation. Not a failure, unlike stop()."""


class LoadShape(Protocol):
    def start(self, run: Driver) -> None:
        """Spawn the tasks that start probes; they end when ``run.may_start()`` says so."""

    def summary(self, elapsed_s: float) -> JSON:
        """The ``load`` part of the result: how the shape ran."""

    def notes(self, elapsed_s: float) -> list[str]:
        """Lines for the summary, e.g. an open loop that fell behind."""
