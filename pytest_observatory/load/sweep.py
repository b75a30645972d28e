"""``sweep=[1, 2, 4, ...]`` with ``step``: each level held for ``step``, one phase per level;
with ``stop_on_saturation`` the sweep ends at the first level found past the knee (knee.py),
so it never drives a deployment further into overload than one level."""

from __future__ import annotations

from ..result import JSON
from ..stats import Phase
from .knee import find_knee
from .protocol import Driver, LoadShape
from .rows import phase_rows

WATCH_AHEAD_S = 0.05


class Sweep:
    def __init__(
        self,
        levels: tuple[float, ...],
        step_s: float,
        driver: LoadShape,
        stop_on_saturation: bool,
        max_failure_rate: float,
    ) -> None:
        self.levels = levels
        self.step_s = step_s
        self.driver = driver
        self.stop_on_saturation = stop_on_saturation
        self.max_failure_rate = max_failure_rate
        self.stopped_after: float | None = None

    def phases(self) -> list[Phase]:
        return [
            Phase(index * self.step_s, (index + 1) * self.step_s, level, level)
            for index, level in enumerate(self.levels)
        ]

    def start(self, run: Driver) -> None:
        self.driver.start(run)
        if self.stop_on_saturation:
            run.spawn(self._watch(run))

    async def _watch(self, run: Driver) -> None:
        """Just before the end of each level from the second on (so that no probe of the next
        level starts first), look for the knee in the levels so far; the probes of the level
        ending that are still in flight are not counted."""
        for index in range(1, len(self.levels) - 1):
            end_s = (index + 1) * self.step_s
            if not await run.wait_until(end_s - min(WATCH_AHEAD_S, self.step_s / 10)):
                return
            rows = level_rows(phase_rows(run.recorder, end_s))
            if find_knee(rows, self.max_failure_rate) is not None:
                self.stopped_after = self.levels[index]
                run.end_early(f"sweep stopped past saturation, after level {self.levels[index]:g}")
                return

    def summary(self, elapsed_s: float) -> JSON:
        summary = {**self.driver.summary(elapsed_s), "shape": "sweep", "step_s": self.step_s}
        if self.stop_on_saturation:
            summary["stopped_after_level"] = self.stopped_after
        return summary

    def notes(self, elapsed_s: float) -> list[str]:
        return self.driver.notes(elapsed_s)


def level_rows(rows: list[JSON]) -> list[JSON]:
    """Phase rows as sweep levels: the level is the target held."""
    return [{"level": row["target_to"], **row} for row in rows]
