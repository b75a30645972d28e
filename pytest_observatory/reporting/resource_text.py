"""The memory watch's lines in the terminal summary: one per series, the last value and the
growth per hour (least squares), memory in bytes and the limit beside it."""

from __future__ import annotations

from ..result import JSON
from ..sizes import format_size

MEMORY_METRIC = "process_resident_memory_bytes"


def resource_lines(resources: JSON) -> list[str]:
    samples = f"{resources['samples']} samples"
    if resources["failed_samples"]:
        samples += f", {resources['failed_samples']} failed"
    lines = [f"metrics: {resources['url']} ({samples})"]
    limit = resources.get("max_memory_growth_per_h")
    for name, points in resources["series"].items():
        growth = resources["growth_per_h"].get(name)
        show = format_size if name == MEMORY_METRIC else _number
        text = f"  {name}: {show(points[-1][1])} at the end"
        text += ", growth -" if growth is None else f", growth {_signed(show(growth))}/h"
        if name == MEMORY_METRIC and limit is not None:
            text += f" (max_memory_growth {format_size(limit)}/h)"
        lines.append(text)
    return lines


def _number(value: float) -> str:
    return f"{value:.4g}"


def _signed(text: str) -> str:
    return text if text.startswith("-") else "+" + text
