"""The terminal lines of a staged check (a row per stage) and of a sweep (a row per level and
the ``saturation:`` line), under the check's own row."""

from __future__ import annotations

from ..durations import format_duration
from ..result import JSON, CheckResult

HEADER = (
    f"{'':<12} {'stage':>13} {'target':>11} {'probes':>7} {'started/s':>9} {'done/s':>8} "
    f"{'in flight':>9} "
    f"{'fail rate':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'ttft p95':>8}"
)


def load_lines(result: CheckResult) -> list[str]:
    if result.stages:
        rows = [(_span(row), _target(row), row) for row in result.stages]
    elif result.sweep:
        rows = [(_span(row), f"{row['level']:g}", row) for row in result.sweep["levels"]]
    else:
        return []
    lines = [HEADER.replace("stage", "level", 1) if result.sweep else HEADER]
    lines += [_line(span, target, row) for span, target, row in rows]
    if result.sweep:
        lines.append(f"{'':<12} {result.sweep['knee']['line']}")
    return lines


def _line(span: str, target: str, row: JSON) -> str:
    return (
        f"{'':<12} {span:>13} {target:>11} {row['probes']:>7} {row['started_per_s']:>9.1f} "
        f"{row['throughput_per_s']:>8.1f} {row['in_flight']:>9.1f} {row['failure_rate']:>9.2%} "
        f"{_ms(row['p50_ms']):>8} "
        f"{_ms(row['p95_ms']):>8} {_ms(row['p99_ms']):>8} {_ms(row['ttft_p95_ms']):>8}"
    )


def _span(row: JSON) -> str:
    return f"{format_duration(row['start_s'])}-{format_duration(row['end_s'])}"


def _target(row: JSON) -> str:
    low, high = row["target_from"], row["target_to"]
    return f"{high:g}" if low == high else f"{low:g}->{high:g}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
