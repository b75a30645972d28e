"""The saturation point of a sweep, from its per-level rows.

The rule: going from level L to the next level L' (load ratio r = L'/L), the deployment is past
saturation when the throughput grew by less than half of the load's growth
(T'/T - 1 < (r - 1) / 2) while p95 latency grew by more than 20%, or when the next level's
failure rate reaches the check's ``max_failure_rate``. The knee is the level L before the first
such step: the highest load the deployment carried in proportion. No such step: not reached.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..result import JSON

GAIN_SHARE = 0.5
LATENCY_GROWTH = 0.2


def past_saturation(before: JSON, after: JSON, max_failure_rate: float) -> bool:
    if after["probes"] and after["failure_rate"] >= max(max_failure_rate, 1e-12):
        return True
    if not (before["throughput_per_s"] and before["p95_ms"] and after["p95_ms"]):
        return False
    ratio = after["level"] / before["level"]
    gain = after["throughput_per_s"] / before["throughput_per_s"] - 1
    latency = after["p95_ms"] / before["p95_ms"] - 1
    return bool(gain < GAIN_SHARE * (ratio - 1) and latency > LATENCY_GROWTH)


def find_knee(levels: Sequence[JSON], max_failure_rate: float) -> int | None:
    """The index of the knee level in ``levels``, or None when no step went past it."""
    for index in range(len(levels) - 1):
        if past_saturation(levels[index], levels[index + 1], max_failure_rate):
            return index
    return None


def saturation(levels: Sequence[JSON], max_failure_rate: float, unit: str) -> JSON:
    """The JSON report's ``sweep.knee`` and the summary's ``saturation:`` line."""
    index = find_knee(levels, max_failure_rate)
    if index is None:
        top = levels[-1] if levels else None
        line = "not reached" + (f" up to {unit} {top['level']:g}" if top else "")
        return {"level": None, "index": None, "line": f"saturation: {line}"}
    knee, after = levels[index], levels[index + 1]
    line = (
        f"saturation: {unit} {knee['level']:g} ({knee['throughput_per_s']:.0f} req/s, "
        f"p95 {_ms(knee['p95_ms'])}); at {after['level']:g}: "
        f"{_change(knee['throughput_per_s'], after['throughput_per_s'])} throughput, "
        f"p95 {_change(knee['p95_ms'], after['p95_ms'])}, "
        f"{after['failure_rate']:.1%} failed"
    )
    return {"level": knee["level"], "index": index, "line": line}


def _change(before: float | None, after: float | None) -> str:
    if not before or after is None:
        return "n/a"
    return f"{(after / before - 1):+.0%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
