"""When failures started and whether they recur.

Pooled: bursts in the failure timeline that stand out from a background rate, and a steady
period between them (the signature of a cache or credential TTL). Per model and per error
message: clusters of failures from their recorded times, and the period of the clusters even
when each recurrence is one or two failures, which no timeline slice would single out."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

from .durations import format_duration
from .result import JSON
from .stats import CheckRecorder, FailureTimeline, FailureTimes

PERIOD_TOLERANCE = 0.15  # bursts count as periodic when every gap is within 15% of the median
LISTED_BURSTS = 20
LISTED_CLUSTERS = 5  # more clusters than this read as failures spread over the run
TOP_ERROR_PATTERNS = 3
CLUSTER_SPACINGS = 3
CLUSTER_RUN_SHARE = 1 / 200
BEAT_SPACINGS = 1  # a cluster is on the beat within a probe spacing of it,
BEAT_SHARE = 0.02  # or 2% of the period, whichever is longer,
MAX_BEAT_WIDTH = 0.25  # but never over a quarter of the period
MIN_ON_BEAT_SHARE = 0.6
MIN_BEAT_FAILURES = 4
MIN_BEATS = 3  # consecutive
MIN_COVERAGE = 0.6
MAX_CLUSTERS_FOR_PERIOD = 120  # beyond this, failures are dense: the timeline's bursts apply


def onset(recording: CheckRecorder, duration_s: float) -> JSON | None:
    """When failures started, and whether they come in bursts at a steady period (the
    signature of a cache or credential TTL) rather than at a steady background rate: pooled,
    per model and per top error message."""
    first = recording.first_failure
    if first is None:
        return None
    total = recording.total
    bursts = find_bursts(recording.timeline)
    starts = [start for start, _, _ in bursts]
    period = _period(starts)
    pooled = failure_pattern(recording.failure_times, total.probes, duration_s)
    if total.failures == total.probes:
        summary = f"every probe failed from the start: {recording.errors.most_common()[0][0]}"
    elif period is not None:
        summary = (
            f"failures in bursts every ~{format_duration(period)}, "
            f"first at {format_duration(starts[0])}"
        )
    elif len(bursts) == 1:
        start, end, failures = bursts[0]
        summary = f"one burst of {failures} failures at {format_duration(start)}"
        if end - start >= 1:
            summary += f", lasting {format_duration(end - start)}"
    elif bursts:
        summary = f"{len(bursts)} bursts of failures, first at {format_duration(starts[0])}"
    else:  # no slice stands out: sparse failures, perhaps recurring one or two at a time
        summary = pooled.summary()
    models = {
        name: failure_pattern(
            recording.model_failure_times.get(name, FailureTimes(1.0)), stats.probes, duration_s
        )
        for name, stats in recording.models.items()
        if name is not None
    }
    failing = [name for name, pattern in models.items() if pattern.failures]
    confined_to = failing[0] if len(models) > 1 and len(failing) == 1 else None
    if confined_to is not None:
        summary += f"; only {confined_to} failed"
    errors = {
        message: failure_pattern(recording.error_failure_times[message], total.probes, duration_s)
        for message, _ in recording.errors.most_common()[:TOP_ERROR_PATTERNS]
    }
    return {
        "first_failure_s": round(first.t_s, 3),
        "bursts": len(bursts),
        "burst_starts_s": [round(start, 3) for start in starts[:LISTED_BURSTS]],
        "period_s": _round(period if period is not None else pooled.period_s),
        "summary": summary,
        "confined_to": confined_to,
        "models": {name: pattern.to_json() for name, pattern in models.items()},
        "errors": {message: pattern.to_json() for message, pattern in errors.items()},
    }


@dataclass(frozen=True)
class FailurePattern:
    """One model's (or one error message's) failures: clusters of failures close together,
    and the period they recur at, if any."""

    probes: int
    failures: int
    first_s: float | None
    clusters: list[tuple[float, float, int]]
    period_s: float | None

    def summary(self) -> str:
        first = format_duration(self.first_s or 0.0)
        if not self.failures:
            return "no failures"
        if self.failures >= self.probes:
            return f"every probe failed ({self.failures} of {self.probes})"
        if self.period_s is not None:
            return f"failures every ~{format_duration(self.period_s)}, first at {first}"
        if self.failures == 1:
            return f"one failure, at {first}"
        if len(self.clusters) == 1:
            start, end, count = self.clusters[0]
            lasting = f", lasting {format_duration(end - start)}" if end - start >= 1 else ""
            return f"one burst of {count} failures at {format_duration(start)}{lasting}"
        if len(self.clusters) <= LISTED_CLUSTERS:
            return f"{self.failures} failures in {len(self.clusters)} clusters, first at {first}"
        return f"{self.failures} failures spread over the run, first at {first}"

    def to_json(self) -> JSON:
        return {
            "failures": self.failures,
            "first_failure_s": _round(self.first_s),
            "clusters": len(self.clusters),
            "cluster_starts_s": [round(start, 3) for start, _, _ in self.clusters[:LISTED_BURSTS]],
            "period_s": _round(self.period_s),
            "summary": self.summary(),
        }


def failure_pattern(times: FailureTimes, probes: int, duration_s: float) -> FailurePattern:
    """Clusters: failures less than three probe spacings (of these probes) apart, or 1/200 of
    the run, whichever is longer, so one recurrence of one or two failures is one cluster."""
    events = times.events()
    spacing = duration_s / probes if probes else duration_s
    gap_s = max(CLUSTER_SPACINGS * spacing, duration_s * CLUSTER_RUN_SHARE)
    if times.coarse:
        gap_s = max(gap_s, 2 * times.slice_s)
    found = clusters(events, gap_s)
    return FailurePattern(
        probes=probes,
        failures=times.count,
        first_s=events[0][0] if events else None,
        clusters=found,
        period_s=recurrence(found, spacing),
    )


def clusters(events: list[tuple[float, int]], gap_s: float) -> list[tuple[float, float, int]]:
    """(start, end, failures) of runs of events less than gap_s apart."""
    found: list[tuple[float, float, int]] = []
    for t, count in events:
        if found and t - found[-1][1] < gap_s:
            start, _, failures = found[-1]
            found[-1] = (start, t, failures + count)
        else:
            found.append((t, t, count))
    return found


def recurrence(found: list[tuple[float, float, int]], spacing_s: float) -> float | None:
    """A steady period of the clusters, robust to clusters that are off the beat (background
    noise). A cluster is on a beat when it starts within one probe spacing (``spacing_s``:
    when the first probe after the recurrence's start came) or 2% of the period of it. A
    period qualifies when its best phase's beats hold at least 60% of the failures and at
    least four, at least three consecutive beats are hit (the run's start counts as one when
    the beat passes through it: a TTL counted from the start), and at least 60% of the beats
    between the first and the last one. Candidates are the gaps between nearby cluster
    starts and the first start itself; the one hitting the largest share of its beats wins,
    then the one holding the most failures, then the shorter; its period is fitted to the
    beats by least squares. Halving the period leaves every other beat empty and doubling it
    leaves half the failures off the beat, so neither harmonic wins."""
    if not 2 <= len(found) <= MAX_CLUSTERS_FOR_PERIOD:
        return None
    points = [(start, count) for start, _, count in found]
    total = sum(count for _, count in points)
    best: tuple[float, int, float] | None = None
    for candidate in _candidate_periods([start for start, _ in points]):
        tolerance_s = max(BEAT_SPACINGS * spacing_s, BEAT_SHARE * candidate)
        fit = _beat(points, candidate, tolerance_s)
        if fit is None or fit[1] < MIN_ON_BEAT_SHARE * total:
            continue
        if best is None or fit[:2] > best[:2]:
            best = fit
    return None if best is None else best[2]


def _candidate_periods(starts: list[float]) -> list[float]:
    """Gaps between each cluster start and the next few (noise may sit between two beats),
    and the first start (a TTL counted from the run's start); one per 2% band, shortest first."""
    gaps = [b - a for i, a in enumerate(starts) for b in starts[i + 1 : i + 4]]
    gaps.append(starts[0])
    bands: dict[int, float] = {}
    for gap in sorted(gaps):
        if gap > 0:
            bands.setdefault(round(math.log(gap) / math.log(1.02)), gap)
    return list(bands.values())


def _beat(
    points: list[tuple[float, int]], period: float, tolerance_s: float
) -> tuple[float, int, float] | None:
    """The phase holding the most failures for this period (a sliding window over the sorted
    phases); return (share of beats hit, failures on the beat, fitted period) when the beat
    qualifies."""
    width = min(2 * tolerance_s / period, MAX_BEAT_WIDTH)
    phases = sorted(((start / period) % 1.0, count, start) for start, count in points)
    wrapped = phases + [(phase + 1.0, count, start) for phase, count, start in phases]
    best = (0, 0, 0)
    held, j = 0, 0
    for i in range(len(phases)):
        while j < i + len(phases) and wrapped[j][0] - wrapped[i][0] <= width:
            held += wrapped[j][1]
            j += 1
        if held > best[0]:
            best = (held, i, j)
        held -= wrapped[i][1]
    held, i, j = best
    on_beat = sorted(start for _, _, start in wrapped[i:j])
    if held < MIN_BEAT_FAILURES:
        return None
    numbers = [round((start - on_beat[0]) / period) for start in on_beat]
    fitted = _slope(list(zip(numbers, on_beat, strict=True)))
    if fitted is None or fitted <= 0:
        return None
    beats = set(numbers)
    before_first = on_beat[0] / fitted
    if round(before_first) >= 1 and abs(before_first - round(before_first)) <= width / 2:
        beats.add(-round(before_first))  # the run's start is on the beat
    span = max(beats) - min(beats) + 1
    if _longest_run(beats) < MIN_BEATS or len(beats) < MIN_COVERAGE * span:
        return None
    return len(beats) / span, held, fitted


def _longest_run(beats: set[int]) -> int:
    """The most consecutive beats hit."""
    return max(
        next(n for n in itertools.count() if beat + n not in beats)
        for beat in beats
        if beat - 1 not in beats
    )


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of start against beat number."""
    beats = [beat for beat, _ in points]
    mean_beat = statistics.fmean(beats)
    spread = sum((beat - mean_beat) ** 2 for beat in beats)
    if spread == 0:
        return None
    mean_start = statistics.fmean(start for _, start in points)
    return sum((beat - mean_beat) * (start - mean_start) for beat, start in points) / spread


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def find_bursts(timeline: FailureTimeline) -> list[tuple[float, float, int]]:
    """Runs of slices with far more failures than the background rate explains.

    The background is the pooled rate of all but the worst tenth of the slices; a slice is a
    burst slice when its failures exceed the binomial expectation by 4 standard deviations
    (plus one, and at least two failures). When failures are few and scattered, the worst
    tenth holds all of them and that background is zero, so any two failures in a slice would
    read as a burst: the background is then estimated again from the slices outside (and not
    next to) the bursts found, and the bursts found again with it. Runs of burst slices one
    quiet slice apart merge. Returns (start_s, end_s, failures) per burst.
    """
    active = [i for i, n in enumerate(timeline.probes) if n]
    if not active:
        return []
    rates = sorted(active, key=lambda i: timeline.failures[i] / timeline.probes[i])
    background = _background(timeline, rates[: max(1, len(rates) - len(rates) // 10)])

    def above(i: int, margin: float, extra: float) -> bool:
        n, failed = timeline.probes[i], timeline.failures[i]
        expected = n * background
        return failed > expected + margin * math.sqrt(expected * (1 - background)) + extra

    def burst_slices() -> set[int]:
        return {i for i in active if timeline.failures[i] >= 2 and above(i, 4, 1)}

    core = burst_slices()
    outside = [i for i in active if not {i - 1, i, i + 1} & core]
    if outside:
        background = max(background, _background(timeline, outside))
        core = burst_slices()
    # A burst's edges usually fall inside slices that are only partly failing: grow each burst
    # over the neighbouring slices that still fail more than the background.
    members = set(core)
    frontier = list(core)
    while frontier:
        i = frontier.pop()
        for j in (i - 1, i + 1):
            if j not in members and 0 <= j < len(timeline.probes) and timeline.probes[j]:
                if above(j, 1, 0):
                    members.add(j)
                    frontier.append(j)
    bursts: list[tuple[float, float, int]] = []
    last_index = -10
    for i in sorted(members):
        first = timeline.first_failure_s[i]
        if first is None:
            continue
        end = (i + 1) * timeline.slice_s
        if bursts and i - last_index <= 2:
            start, _, count = bursts[-1]
            bursts[-1] = (start, end, count + timeline.failures[i])
        else:
            bursts.append((first, end, timeline.failures[i]))
        last_index = i
    return bursts


def _background(timeline: FailureTimeline, slices: list[int]) -> float:
    """The failure rate of these slices, never quite zero."""
    probes = sum(timeline.probes[i] for i in slices)
    return max(sum(timeline.failures[i] for i in slices) / probes, 1 / (10 * probes))


def _period(starts: list[float]) -> float | None:
    """A steady gap between burst starts: three or more bursts whose gaps agree, or two whose
    gap matches the time from the run's start to the first (a TTL counted from the start)."""
    if len(starts) < 2:
        return None
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    typical = statistics.median(gaps)
    if len(starts) == 2:
        gaps.append(starts[0])
    if typical <= 0 or any(abs(gap - typical) > PERIOD_TOLERANCE * typical for gap in gaps):
        return None
    return typical
