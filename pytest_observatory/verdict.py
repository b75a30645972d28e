"""Judge a check's recording against its spec, and explain a failure in a few readable lines."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from .durations import format_duration
from .marker import CheckSpec
from .result import JSON, CheckResult, Verdict
from .stats import CheckRecorder, FailureTimeline, LatencyHistogram, ProbeStats

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
TOP_ERRORS = 5
PERIOD_TOLERANCE = 0.15  # bursts count as periodic when every gap is within 15% of the median
LISTED_BURSTS = 20


def judge(
    nodeid: str,
    spec: CheckSpec,
    recording: CheckRecorder,
    duration_s: float,
    interrupted: bool = False,
    load: JSON | None = None,
    notes: list[str] | None = None,
) -> CheckResult:
    """Pass only with at least one probe and every threshold met.

    Zero probes never pass, and a rate threshold of 0 allows no failure at all.
    """
    total = recording.total
    latency = summarize(total.latency)
    ttft = summarize(recording.streams.ttft_ms)
    reasons = _threshold_failures(spec, recording, latency, ttft)
    verdict: Verdict = "interrupted" if interrupted else ("failed" if reasons else "passed")
    first = recording.first_failure
    http = recording.http
    streams = recording.streams
    return CheckResult(
        nodeid=nodeid,
        verdict=verdict,
        duration_s=round(duration_s, 3),
        probes=total.probes,
        failures=total.failures,
        failure_rate=_rate(total),
        max_failure_rate=spec.max_failure_rate,
        errors=dict(recording.errors.most_common()),
        error_categories=dict(recording.categories.most_common()),
        first_failure=(
            {"t_s": round(first.t_s, 3), "model": first.model, "error": first.error}
            if first
            else None
        ),
        latency_ms=latency,
        models={
            name: {
                "probes": stats.probes,
                "failures": stats.failures,
                "failure_rate": _rate(stats),
                "latency_ms": summarize(stats.latency),
            }
            for name, stats in recording.models.items()
            if name is not None
        },
        windows=_windows(recording, duration_s),
        onset=onset(recording),
        http=(
            {
                "requests": http.requests,
                "status": {str(code): n for code, n in sorted(http.statuses.items())},
                "headers_ms": summarize(http.headers_ms),
                "total_ms": summarize(http.total_ms),
                "queue_ms": summarize(http.queue_ms) if http.queue_ms.count else None,
                "queue_waits": http.queue_waits,
                "bytes_in": http.bytes_in,
            }
            if http.requests
            else None
        ),
        ttft_ms=ttft if streams.streams else None,
        itl_ms=summarize(streams.itl_ms) if streams.itl_ms.count else None,
        tpot_ms=summarize(streams.tpot_ms) if streams.tpot_ms.count else None,
        tokens_per_s=summarize(streams.tokens_per_s) if streams.streams else None,
        streams=(
            {
                "count": streams.streams,
                "output_tokens": streams.output_tokens,
                "tokens_source": dict(streams.token_sources),
            }
            if streams.streams
            else None
        ),
        load=load or {},
        reasons=reasons,
        notes=notes or [],
    )


def summarize(histogram: LatencyHistogram) -> dict[str, float | None]:
    values = {name: _round(histogram.quantile(q)) for name, q in QUANTILES.items()}
    values["max"] = _round(histogram.max if histogram.count else None)
    return values


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


def _threshold_failures(
    spec: CheckSpec,
    recording: CheckRecorder,
    latency: dict[str, float | None],
    ttft: dict[str, float | None],
) -> list[str]:
    total = recording.total
    if total.probes == 0:
        return ["no probe completed"]
    reasons = []
    if _exceeds(total, spec.max_failure_rate):
        reasons.append(
            f"failure rate {_rate(total):.2%} >= max_failure_rate {spec.max_failure_rate:.2%} "
            f"({total.failures} of {total.probes} probes failed)"
        )
    if spec.max_window_failure_rate is not None:
        limit = spec.max_window_failure_rate
        worst = max(recording.windows.items(), key=lambda item: _rate(item[1]))
        index, window = worst
        if _exceeds(window, limit):
            start = index * recording.window_s
            reasons.append(
                f"window {format_duration(start)}-{format_duration(start + recording.window_s)}: "
                f"failure rate {_rate(window):.2%} >= max_window_failure_rate {limit:.2%} "
                f"({window.failures} of {window.probes} probes failed)"
            )
    for name, key, limit_s in (
        ("max_p95_latency", "p95", spec.max_p95_latency_s),
        ("max_p99_latency", "p99", spec.max_p99_latency_s),
    ):
        measured = latency[key]
        if limit_s is not None and measured is not None and measured > limit_s * 1000:
            reasons.append(
                f"latency {key} {_ms_text(measured)} > {name} {_ms_text(limit_s * 1000)}"
            )
    if spec.max_ttft_p95_s is not None:
        measured = ttft["p95"]
        if measured is None:
            reasons.append("max_ttft_p95 is set but no probe streamed (use deployment.stream_chat)")
        elif measured > spec.max_ttft_p95_s * 1000:
            reasons.append(
                f"TTFT p95 {_ms_text(measured)} > max_ttft_p95 "
                f"{_ms_text(spec.max_ttft_p95_s * 1000)}"
            )
    return reasons


def _exceeds(stats: ProbeStats, limit: float) -> bool:
    """A rate at or above the limit fails; a limit of 0 therefore allows no failure."""
    return stats.failures > 0 and _rate(stats) >= limit


def _rate(stats: ProbeStats) -> float:
    return stats.failures / stats.probes if stats.probes else 0.0


def _windows(recording: CheckRecorder, duration_s: float) -> list[JSON]:
    width = recording.window_s
    rows: list[JSON] = []
    for index in sorted(recording.windows):
        window = recording.windows[index]
        ttft = recording.window_ttft_ms.get(index)
        rows.append(
            {
                "start_s": round(index * width, 3),
                "end_s": round(min((index + 1) * width, max(duration_s, index * width)), 3),
                "probes": window.probes,
                "failures": window.failures,
                "failure_rate": _rate(window),
                "p50_ms": _round(window.latency.quantile(0.5)),
                "p95_ms": _round(window.latency.quantile(0.95)),
                "ttft_p50_ms": _round(ttft.quantile(0.5)) if ttft is not None else None,
                "ttft_p95_ms": _round(ttft.quantile(0.95)) if ttft is not None else None,
            }
        )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ms_text(ms: float) -> str:
    return format_duration(ms / 1000)


def explain(result: CheckResult) -> str:
    """The failure text pytest shows: why, the top errors, onset, first failure, per model."""
    lines = [f"observatory check {result.verdict}: " + "; ".join(result.reasons)]
    lines.append(
        f"  {result.probes} probes in {format_duration(result.duration_s)}, "
        f"{result.failures} failed ({result.failure_rate:.2%})"
    )
    if result.errors:
        lines.append("  top errors:")
        for message, count in list(result.errors.items())[:TOP_ERRORS]:
            lines.append(f"    {count:>6} x {message}")
    if result.onset:
        lines.append(f"  onset: {result.onset['summary']}")
    first: dict[str, Any] | None = result.first_failure
    if first:
        on_model = f" on {first['model']}" if first["model"] else ""
        lines.append(
            f"  first failure: {format_duration(first['t_s'])} after start{on_model}: "
            f"{first['error']}"
        )
    for name, model in result.models.items():
        lines.append(
            f"  {name}: {model['probes']} probes, {model['failures']} failed "
            f"({model['failure_rate']:.2%})"
        )
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)
