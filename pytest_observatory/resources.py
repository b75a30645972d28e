"""The deployment's resource series (memory and watched metrics over a check) and what they say:
growth per hour by least squares, judged against ``max_memory_growth``.

A leak shows as a steady slope under noise (garbage collections, caches filling), so the
growth is the least-squares slope over every sample, not the last value minus the first: one
sample taken during a collection must not decide a 3-hour run. Series stay bounded: past
``MAX_POINTS`` every other point is dropped and only every other later sample is kept, so a
run of any length keeps between MAX_POINTS/2 and MAX_POINTS points spread over all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .durations import format_duration
from .result import JSON, CheckResult
from .sizes import format_size

MEMORY_METRIC = "process_resident_memory_bytes"
MAX_POINTS = 512
MIN_SAMPLES = 3
MIN_SPAN_S = 1.0  # shorter than this, a slope is noise whatever the sample count
SECONDS_PER_HOUR = 3600.0

Point = tuple[float, float]  # (seconds since the check started, value)


class Series:
    """(t, value) points, decimated by two whenever ``max_points`` is reached."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self._max_points = max_points
        self._stride = 1
        self._offered = 0
        self.points: list[Point] = []

    def add(self, t_s: float, value: float) -> None:
        index = self._offered
        self._offered += 1
        if index % self._stride:
            return
        self.points.append((t_s, value))
        if len(self.points) >= self._max_points:  # kept indexes stay multiples of the stride
            self.points = self.points[::2]
            self._stride *= 2


def slope_per_s(points: list[Point]) -> float | None:
    """Least-squares slope of value over time; None for fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def growth_per_h(points: list[Point]) -> float | None:
    """Units per hour, judged only on MIN_SAMPLES points spanning MIN_SPAN_S or more."""
    if len(points) < MIN_SAMPLES or points[-1][0] - points[0][0] < MIN_SPAN_S:
        return None
    slope = slope_per_s(points)
    return None if slope is None else slope * SECONDS_PER_HOUR


@dataclass
class ResourceWatch:
    """What the metrics sampler (metrics_watch.py) gathered during one check."""

    url: str  # as shown: credentials and query values masked
    names: tuple[str, ...]  # MEMORY_METRIC first, then the watched metrics
    series: dict[str, Series] = field(default_factory=dict)
    samples: int = 0
    failed: int = 0
    problems: dict[str, int] = field(default_factory=dict)  # first failure text -> count
    missing: set[str] = field(default_factory=set)  # names absent from a good sample

    def record(self, t_s: float, values: dict[str, float]) -> None:
        self.samples += 1
        for name in self.names:
            if name in values:
                self.series.setdefault(name, Series()).add(t_s, values[name])
            else:
                self.missing.add(name)

    def fail(self, problem: str) -> None:
        self.samples += 1
        self.failed += 1
        self.problems[problem] = self.problems.get(problem, 0) + 1


def with_resources(
    result: CheckResult, watch: ResourceWatch | None, max_growth_per_h: float | None
) -> CheckResult:
    """The result with its ``resources`` field; a passed check fails on too much growth. A
    limit with nothing watched is a note: the same check runs against the mock without one."""
    if watch is None:
        if max_growth_per_h is None or result.verdict == "skipped":
            return result
        note = f"max_memory_growth {_per_h_text(max_growth_per_h)} not judged: no metrics page"
        return replace(result, notes=[*result.notes, note + " (--deployment-metrics-url)"])
    part, reasons, notes = _resource_part(watch, max_growth_per_h)
    verdict = "failed" if reasons and result.verdict == "passed" else result.verdict
    return replace(
        result,
        verdict=verdict,
        resources=part,
        reasons=result.reasons + reasons,
        notes=result.notes + notes,
    )


def _resource_part(
    watch: ResourceWatch, max_growth_per_h: float | None
) -> tuple[JSON, list[str], list[str]]:
    """The ``resources`` field, the reasons it fails the check, and notes."""
    series = {name: watch.series[name].points for name in watch.names if name in watch.series}
    growth = {name: _rounded(growth_per_h(points)) for name, points in series.items()}
    reasons: list[str] = []
    notes: list[str] = []
    if watch.failed:
        first = next(iter(watch.problems))
        notes.append(
            f"metrics {watch.url}: {watch.failed} of {watch.samples} samples failed "
            f"(first: {first})"
        )
    for name in sorted(watch.missing):
        notes.append(f"metrics {watch.url}: {name} missing from some or all samples")
    memory = growth.get(MEMORY_METRIC)
    if max_growth_per_h is not None:
        limit = _per_h_text(max_growth_per_h)
        if memory is None:
            points = series.get(MEMORY_METRIC, [])
            span = points[-1][0] - points[0][0] if points else 0.0
            notes.append(
                f"max_memory_growth {limit} not judged: {len(points)} memory samples over "
                f"{format_duration(span)} (needs {MIN_SAMPLES} over {format_duration(MIN_SPAN_S)})"
            )
        elif memory > max_growth_per_h:
            reasons.append(
                f"memory growth {_per_h_text(memory)} > max_memory_growth {limit} "
                f"({MEMORY_METRIC}, least squares over {len(series[MEMORY_METRIC])} samples)"
            )
    part: JSON = {
        "url": watch.url,
        "samples": watch.samples,
        "failed_samples": watch.failed,
        "series": {name: [[t, v] for t, v in points] for name, points in series.items()},
        "growth_per_h": growth,
        "max_memory_growth_per_h": max_growth_per_h,
    }
    return part, reasons, notes


def _per_h_text(bytes_per_h: float) -> str:
    return f"{format_size(bytes_per_h)}/h"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
