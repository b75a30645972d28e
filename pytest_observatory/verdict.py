"""Judge a check's recording against its spec, and explain a failure in a few readable lines."""

from __future__ import annotations

from .durations import format_duration
from .marker import CheckSpec
from .result import QUANTILES, CheckResult, FirstFailure, LatencySummary, ModelSummary, Verdict
from .stats import CheckRecorder, LatencyHistogram

TOP_ERRORS = 5


def judge(
    nodeid: str,
    spec: CheckSpec,
    recording: CheckRecorder,
    duration_s: float,
    interrupted: bool = False,
) -> CheckResult:
    """Pass only with at least one probe and a failure rate under the threshold.

    Zero probes never pass, and ``max_failure_rate=0`` allows no failure at all.
    """
    total = recording.total
    rate = total.failures / total.probes if total.probes else 0.0
    reasons: list[str] = []
    if total.probes == 0:
        reasons.append("no probe completed")
    elif total.failures and rate >= spec.max_failure_rate:
        reasons.append(
            f"failure rate {rate:.2%} >= max_failure_rate {spec.max_failure_rate:.2%} "
            f"({total.failures} of {total.probes} probes failed)"
        )
    verdict: Verdict = "interrupted" if interrupted else ("failed" if reasons else "passed")
    first = recording.first_failure
    return CheckResult(
        nodeid=nodeid,
        verdict=verdict,
        duration_s=round(duration_s, 3),
        probes=total.probes,
        failures=total.failures,
        failure_rate=rate,
        max_failure_rate=spec.max_failure_rate,
        errors=dict(recording.errors.most_common()),
        error_categories=dict(recording.categories.most_common()),
        first_failure=(
            FirstFailure(round(first.t_s, 3), first.model, first.error) if first else None
        ),
        latency_ms=summarize(total.latency),
        models={
            name: ModelSummary(
                probes=m.probes,
                failures=m.failures,
                failure_rate=m.failures / m.probes if m.probes else 0.0,
                latency_ms=summarize(m.latency),
            )
            for name, m in recording.models.items()
            if name is not None
        },
        reasons=tuple(reasons),
    )


def summarize(histogram: LatencyHistogram) -> LatencySummary:
    values = {name: _ms(histogram.quantile(q)) for name, q in QUANTILES.items()}
    return LatencySummary(**values, max=_ms(histogram.max if histogram.count else None))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def explain(result: CheckResult) -> str:
    """The failure text pytest shows: why, the top errors, the first failure, per model."""
    lines = [f"observatory check {result.verdict}: " + "; ".join(result.reasons or ("",))]
    lines.append(
        f"  {result.probes} probes in {format_duration(result.duration_s)}, "
        f"{result.failures} failed ({result.failure_rate:.2%})"
    )
    if result.errors:
        lines.append("  top errors:")
        for message, count in list(result.errors.items())[:TOP_ERRORS]:
            lines.append(f"    {count:>6} x {message}")
    if result.first_failure:
        first = result.first_failure
        on_model = f" on {first.model}" if first.model else ""
        lines.append(
            f"  first failure: {format_duration(first.t_s)} after start{on_model}: {first.error}"
        )
    for name, model in result.models.items():
        lines.append(
            f"  {name}: {model.probes} probes, {model.failures} failed ({model.failure_rate:.2%})"
        )
    return "\n".join(lines)
