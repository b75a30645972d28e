"""When failures started and whether they recur: bursts in the failure timeline that stand out
from a background rate, and a steady period between them (the signature of a cache or
credential TTL)."""

from __future__ import annotations

import itertools
import math
import statistics

from .durations import format_duration
from .result import JSON
from .stats import CheckRecorder, FailureTimeline

PERIOD_TOLERANCE = 0.15  # bursts count as periodic when every gap is within 15% of the median
LISTED_BURSTS = 20


def onset(recording: CheckRecorder) -> JSON | None:
    """When failures started, and whether they come in bursts at a steady period (the
    signature of a cache or credential TTL) rather than at a steady background rate."""
    first = recording.first_failure
    if first is None:
        return None
    bursts = find_bursts(recording.timeline)
    starts = [start for start, _, _ in bursts]
    period = _period(starts)
    if period is not None:
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
    elif recording.total.failures == 1:
        summary = f"one failure, at {format_duration(first.t_s)}"
    else:
        summary = (
            f"{recording.total.failures} failures spread over the run, "
            f"first at {format_duration(first.t_s)}"
        )
    return {
        "first_failure_s": round(first.t_s, 3),
        "bursts": len(bursts),
        "burst_starts_s": [round(start, 3) for start in starts[:LISTED_BURSTS]],
        "period_s": None if period is None else round(period, 3),
        "summary": summary,
    }


def find_bursts(timeline: FailureTimeline) -> list[tuple[float, float, int]]:
    """Runs of slices with far more failures than the background rate explains.

    The background is the pooled rate of all but the worst tenth of the slices; a slice is a
    burst slice when its failures exceed the binomial expectation by 4 standard deviations
    (plus one, and at least two failures). Runs of burst slices one quiet slice apart merge.
    Returns (start_s, end_s, failures) per burst.
    """
    active = [i for i, n in enumerate(timeline.probes) if n]
    if not active:
        return []
    rates = sorted(active, key=lambda i: timeline.failures[i] / timeline.probes[i])
    kept = rates[: max(1, len(rates) - len(rates) // 10)]
    probes = sum(timeline.probes[i] for i in kept)
    background = max(sum(timeline.failures[i] for i in kept) / probes, 1 / (10 * probes))

    def above(i: int, margin: float, extra: float) -> bool:
        n, failed = timeline.probes[i], timeline.failures[i]
        expected = n * background
        return failed > expected + margin * math.sqrt(expected * (1 - background)) + extra

    core = {i for i in active if timeline.failures[i] >= 2 and above(i, 4, 1)}
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
