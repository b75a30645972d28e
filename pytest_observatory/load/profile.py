"""A load profile: the target (lanes or probes per second) as a piecewise-linear function of
time, k6's stage semantics. Each stage moves the target linearly from the previous stage's
target to its own over its duration; a stage of zero duration is a step (a sweep's staircase).
Pure arithmetic, no clock: the shapes ask it when a lane is due and when arrival k is due."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Profile:
    """``stages`` as (duration in seconds, target), starting from ``start`` at time 0."""

    stages: tuple[tuple[float, float], ...]
    start: float = 0.0

    @classmethod
    def ramp(cls, target: float, ramp_s: float, duration_s: float) -> Profile:
        """A linear ramp from zero (none when ``ramp_s`` is 0), then ``target`` held."""
        return cls(((ramp_s, target), (max(duration_s - ramp_s, 0.0), target)))

    @classmethod
    def staircase(cls, levels: Sequence[float], step_s: float) -> Profile:
        """Each level held for ``step_s``, stepping straight from one to the next."""
        return cls(tuple(pair for level in levels for pair in ((0.0, level), (step_s, level))))

    @property
    def duration_s(self) -> float:
        return sum(duration for duration, _ in self.stages)

    @property
    def peak(self) -> float:
        return max([self.start, *(target for _, target in self.stages)])

    def segments(self) -> list[tuple[float, float, float, float]]:
        """(start_s, end_s, from, to) per stage."""
        return list(self._segments)

    @cached_property
    def _segments(self) -> tuple[tuple[float, float, float, float], ...]:
        """Computed once: the shapes ask for every lane start and every arrival."""
        rows, t, value = [], 0.0, self.start
        for duration, target in self.stages:
            rows.append((t, t + duration, value, target))
            t, value = t + duration, target
        return tuple(rows)

    def value(self, t: float) -> float:
        value = self.start
        for begin, end, low, high in self._segments:
            if t < begin:
                break
            value = high if t >= end else low + (high - low) * (t - begin) / (end - begin)
        return value

    def integral(self, t: float) -> float:
        """Probes a rate profile schedules in [0, t)."""
        total = 0.0
        for begin, end, low, high in self._segments:
            if t <= begin:
                break
            span = min(t, end) - begin
            if end > begin:
                total += span * (low + (high - low) * span / (2 * (end - begin)))
        return total

    def time_of(self, count: float) -> float:
        """When the rate profile has scheduled ``count`` probes (inf if it never does)."""
        done = 0.0
        for begin, end, low, high in self._segments:
            width = end - begin
            area = width * (low + high) / 2
            if area > 0 and done + area >= count:
                need, slope = count - done, (high - low) / width
                if abs(slope) < 1e-12:
                    return begin + need / low
                # need = low x + slope x^2 / 2, smallest root in [0, width]
                root = (-low + math.sqrt(max(low * low + 2 * slope * need, 0.0))) / slope
                return begin + min(max(root, 0.0), width)
            done += area
        return math.inf

    def first_time_above(self, level: float, t: float) -> float:
        """The earliest time >= t at which the target exceeds ``level`` (a lane ``level`` is
        active from then); inf if it never does again before the end."""
        for begin, end, low, high in self._segments:
            if end <= t and not (end == begin == t):
                continue
            at = max(t, begin)
            if self._at(begin, end, low, high, at) > level:
                return at
            if high > level and high > low and end > begin:
                return max(at, begin + (end - begin) * (level - low) / (high - low))
        return math.inf

    @staticmethod
    def _at(begin: float, end: float, low: float, high: float, t: float) -> float:
        if end <= begin or t >= end:
            return high
        return low + (high - low) * (t - begin) / (end - begin)
