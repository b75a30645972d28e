"""Judge a check's recording against its spec, and explain a failure in a few readable lines."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from .durations import format_duration
from .marker import CheckSpec
from .result import JSON, CheckResult, Verdict
from .stats import CheckRecorder, LatencyHistogram, ProbeStats

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
    """When failures started, and whether they come back in bursts at a steady period (the
    signature of a cache or credential TTL)."""
    bursts = recording.bursts.bursts
    first = recording.first_failure
    if not bursts or first is None:
        return None
    starts = sorted(burst.start_s for burst in bursts)
    period = _period(starts)
    if period is not None:
        summary = (
            f"failures in bursts every ~{format_duration(period)}, "
            f"first at {format_duration(first.t_s)}"
        )
    elif len(bursts) == 1:
        burst = bursts[0]
        length = burst.end_s - burst.start_s
        summary = f"one burst of {burst.failures} failures at {format_duration(burst.start_s)}"
        if length > 0:
            summary += f", lasting {format_duration(length)}"
    else:
        summary = f"{len(bursts)} bursts of failures, first at {format_duration(first.t_s)}"
    return {
        "first_failure_s": round(first.t_s, 3),
        "bursts": len(bursts),
        "burst_starts_s": [round(start, 3) for start in starts[:LISTED_BURSTS]],
        "period_s": None if period is None else round(period, 3),
        "summary": summary,
    }


def _period(starts: list[float]) -> float | None:
    if len(starts) < 3:
        return None
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    typical = statistics.median(gaps)
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
        rows.append(
            {
                "start_s": round(index * width, 3),
                "end_s": round(min((index + 1) * width, max(duration_s, index * width)), 3),
                "probes": window.probes,
                "failures": window.failures,
                "failure_rate": _rate(window),
                "p50_ms": _round(window.latency.quantile(0.5)),
                "p95_ms": _round(window.latency.quantile(0.95)),
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
