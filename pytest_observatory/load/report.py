"""A staged check's or a sweep's part of the result: the per-stage rows or the per-level rows
and the knee, and the thresholds that apply per stage, to the recovery stage, and per level."""

from __future__ import annotations

from ..durations import format_duration
from ..marker import CheckSpec
from ..result import JSON
from ..stats import CheckRecorder
from .knee import saturation
from .rows import phase_rows
from .sweep import level_rows


def stage_rows(spec: CheckSpec, recorder: CheckRecorder, elapsed_s: float) -> list[JSON] | None:
    return phase_rows(recorder, elapsed_s) if spec.stages else None


def sweep_part(spec: CheckSpec, recorder: CheckRecorder, elapsed_s: float) -> JSON | None:
    if not spec.sweep:
        return None
    levels = level_rows(phase_rows(recorder, elapsed_s))
    return {
        "unit": spec.load,
        "levels": levels,
        "knee": saturation(levels, spec.max_failure_rate, spec.load),
    }


def recovery_baseline(spec: CheckSpec) -> int | None:
    """The stage the last (recovery) stage is compared with: the last stage before the first
    peak stage that holds the recovery stage's target (else the first stage)."""
    targets = [stage.target for stage in spec.stages]
    peak = targets.index(max(targets))
    starts = [0.0, *targets]
    holds = [
        index
        for index in range(peak)
        if targets[index] == targets[-1] and starts[index] == targets[index]
    ]
    same = [index for index in range(peak) if targets[index] == targets[-1]]
    return (holds or same or [0])[-1] if len(targets) > 1 else None


def stage_failures(spec: CheckSpec, rows: list[JSON] | None) -> list[str]:
    """Per-stage limits and the recovery ratio, one line each."""
    if not rows:
        return []
    reasons = []
    for index, (stage, row) in enumerate(zip(spec.stages, rows, strict=False)):
        label = _label(index, row)
        if (
            stage.max_failure_rate is not None
            and row["failures"]
            and row["failure_rate"] >= stage.max_failure_rate
        ):
            reasons.append(
                f"{label}: failure rate {row['failure_rate']:.2%} >= max_failure_rate "
                f"{stage.max_failure_rate:.2%} ({row['failures']} of {row['probes']})"
            )
        limit_ms = None if stage.max_p95_latency_s is None else stage.max_p95_latency_s * 1000
        if limit_ms is not None and row["p95_ms"] is not None and row["p95_ms"] > limit_ms:
            reasons.append(
                f"{label}: latency p95 {row['p95_ms']:.0f} ms > max_p95_latency {limit_ms:.0f} ms"
            )
    ratio = spec.max_recovery_p95_ratio
    baseline = recovery_baseline(spec)
    if ratio is not None and baseline is not None and len(rows) == len(spec.stages):
        before, after = rows[baseline]["p95_ms"], rows[-1]["p95_ms"]
        if before is None or after is None:
            reasons.append("max_recovery_p95_ratio: no latency in the recovery or baseline stage")
        elif after > before * ratio:
            reasons.append(
                f"{_label(len(rows) - 1, rows[-1])} (recovery): latency p95 {after:.0f} ms > "
                f"{ratio:g} x {before:.0f} ms of {_label(baseline, rows[baseline])}"
            )
    return reasons


def _label(index: int, row: JSON) -> str:
    return f"stage {index + 1} ({format_duration(row['start_s'])}-{format_duration(row['end_s'])})"
