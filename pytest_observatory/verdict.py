"""Judge a check's recording against its spec into a CheckResult. The thresholds live in
thresholds.py, the onset analysis in onset.py, the failure text in reporting/failure_text.py."""

from __future__ import annotations

from .load.report import stage_failures, stage_rows, sweep_part
from .marker import CheckSpec
from .onset import onset
from .result import JSON, CheckResult, Verdict
from .sequential import StopDecision
from .stats import CheckRecorder, LatencyHistogram, ProbeStats
from .thresholds import threshold_failures

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}


def judge(
    nodeid: str,
    spec: CheckSpec,
    recording: CheckRecorder,
    duration_s: float,
    interrupted: bool = False,
    load: JSON | None = None,
    notes: list[str] | None = None,
    stopped_early: StopDecision | None = None,
) -> CheckResult:
    """Pass only with at least one probe and every threshold met.

    Zero probes never pass, and a rate threshold of 0 allows no failure at all. A check the
    fail-fast rule stopped fails, first for the reason it stopped.
    """
    total = recording.total
    latency = summarize(total.latency)
    ttft = summarize(recording.streams.ttft_ms)
    itl = summarize(recording.streams.itl_ms)
    reasons = threshold_failures(spec, recording, latency, {"ttft": ttft, "itl": itl})
    stages = stage_rows(spec, recording, duration_s)
    reasons += stage_failures(spec, stages)
    if stopped_early is not None:
        reasons.insert(0, stopped_early.headline())
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
        onset=onset(recording, duration_s),
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
        itl_ms=itl if streams.itl_ms.count else None,
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
        stopped_early=None if stopped_early is None else stopped_early.to_json(),
        stages=stages,
        sweep=sweep_part(spec, recording, duration_s),
        failure_samples=recording.samples.to_json(),
        tokens=recording.tokens.to_json(),
    )


def summarize(histogram: LatencyHistogram) -> dict[str, float | None]:
    values = {name: _round(histogram.quantile(q)) for name, q in QUANTILES.items()}
    values["max"] = _round(histogram.max if histogram.count else None)
    return values


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
