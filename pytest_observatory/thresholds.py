"""A check's thresholds as small objects: the verdict asks them once at the end, and the
fail-fast rule (sequential.py) asks the failure-rate ones mid-run, with the same arithmetic, so
a check stopped early fails for exactly the reason the full run would have given."""

from __future__ import annotations

from dataclasses import dataclass

from .durations import format_duration
from .marker import CheckSpec
from .stats import CheckRecorder


@dataclass(frozen=True)
class RateLimit:
    """A failure-rate threshold. A rate at or above the limit fails; a limit of 0 therefore
    allows no failure at all (and is settled by the first one)."""

    name: str
    limit: float

    def exceeded(self, failures: int, probes: int) -> bool:
        return failures > 0 and probes > 0 and failures / probes >= self.limit

    def describe(self, failures: int, probes: int, counted: str = "probes failed") -> str:
        rate = failures / probes if probes else 0.0
        return (
            f"failure rate {rate:.2%} >= {self.name} {self.limit:.2%} "
            f"({failures} of {probes} {counted})"
        )


def pooled_limit(spec: CheckSpec) -> RateLimit:
    return RateLimit("max_failure_rate", spec.max_failure_rate)


def window_limit(spec: CheckSpec) -> RateLimit | None:
    if spec.max_window_failure_rate is None:
        return None
    return RateLimit("max_window_failure_rate", spec.max_window_failure_rate)


def window_label(index: int, window_s: float) -> str:
    start = index * window_s
    return f"window {format_duration(start)}-{format_duration(start + window_s)}"


def threshold_failures(
    spec: CheckSpec,
    recording: CheckRecorder,
    latency: dict[str, float | None],
    streams: dict[str, dict[str, float | None]],
) -> list[str]:
    """Every threshold the finished run breaks, one readable line each."""
    total = recording.total
    if total.probes == 0:
        return ["no probe completed"]
    reasons = []
    pooled = pooled_limit(spec)
    if pooled.exceeded(total.failures, total.probes):
        reasons.append(pooled.describe(total.failures, total.probes))
    per_window = window_limit(spec)
    if per_window is not None:
        index, window = max(
            recording.windows.items(), key=lambda item: _rate(item[1].failures, item[1].probes)
        )
        if per_window.exceeded(window.failures, window.probes):
            reasons.append(
                f"{window_label(index, recording.window_s)}: "
                + per_window.describe(window.failures, window.probes)
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
    for name, label, limit_s, measured_p95 in (
        ("max_ttft_p95", "TTFT", spec.max_ttft_p95_s, streams["ttft"]["p95"]),
        ("max_itl_p95", "inter-token latency", spec.max_itl_p95_s, streams["itl"]["p95"]),
    ):
        if limit_s is None:
            continue
        if measured_p95 is None:
            reasons.append(
                f"{name} is set but no probe streamed (use a deployment.stream_* helper)"
            )
        elif measured_p95 > limit_s * 1000:
            reasons.append(
                f"{label} p95 {_ms_text(measured_p95)} > {name} {_ms_text(limit_s * 1000)}"
            )
    return reasons


def _rate(failures: int, probes: int) -> float:
    return failures / probes if probes else 0.0


def _ms_text(ms: float) -> str:
    return format_duration(ms / 1000)
