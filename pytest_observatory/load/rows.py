"""Per-stage and per-level rows of the report, from the recorder's phases: probes, achieved
load beside the asked-for target, failure rate, latency percentiles and TTFT when streamed."""

from __future__ import annotations

from ..result import JSON
from ..stats import CheckRecorder, LatencyHistogram, Phase


def phase_rows(recorder: CheckRecorder, elapsed_s: float) -> list[JSON]:
    """One row per phase begun by ``elapsed_s``; a phase cut short (stop, interrupt, a
    sweep that ended early) counts its throughput over the part that ran."""
    return [_row(phase, elapsed_s) for phase in recorder.phases if phase.start_s < elapsed_s]


def phase_label(recorder: CheckRecorder, t_s: float, sweep: bool) -> str:
    """Where a staged check or a sweep is, for the progress line: ``stage 3/6 (4->16)`` or
    ``level 4/6 (8)``; empty for a plain check."""
    for index, phase in enumerate(recorder.phases):
        if phase.start_s <= t_s < phase.end_s or index == len(recorder.phases) - 1:
            low, high = phase.target_from, phase.target_to
            target = f"{high:g}" if low == high else f"{low:g}->{high:g}"
            what = "level" if sweep else "stage"
            return f"{what} {index + 1}/{len(recorder.phases)} ({target})"
    return ""


def _row(phase: Phase, elapsed_s: float) -> JSON:
    stats, latency = phase.stats, phase.stats.latency
    ran_s = max(min(phase.end_s, elapsed_s) - phase.start_s, 1e-9)
    return {
        "start_s": round(phase.start_s, 3),
        "end_s": round(phase.end_s, 3),
        "target_from": phase.target_from,
        "target_to": phase.target_to,
        "probes": stats.probes,
        "failures": stats.failures,
        "failure_rate": stats.failures / stats.probes if stats.probes else 0.0,
        "started_per_s": round(stats.probes / ran_s, 3),
        "throughput_per_s": round(phase.completed / ran_s, 3),
        # Little's law: mean probes in flight = arrival rate x mean latency (successes).
        "in_flight": round(stats.probes / ran_s * _mean_ms(latency) / 1000, 3),
        "p50_ms": _q(latency, 0.5),
        "p95_ms": _q(latency, 0.95),
        "p99_ms": _q(latency, 0.99),
        "ttft_p50_ms": _q(phase.ttft_ms, 0.5),
        "ttft_p95_ms": _q(phase.ttft_ms, 0.95),
    }


def _q(histogram: LatencyHistogram, q: float) -> float | None:
    value = histogram.quantile(q)
    return None if value is None else round(value, 3)


def _mean_ms(histogram: LatencyHistogram) -> float:
    return histogram.total / histogram.count if histogram.count else 0.0
