"""The memory watch in the reports: a line per series (the last value and the growth per hour
by least squares, the limit beside memory) for the terminal and HTML, and one chart per series
for the HTML report."""

from __future__ import annotations

from ..result import JSON
from ..sizes import format_size
from .svg import Series, line_chart

MEMORY_METRIC = "process_resident_memory_bytes"
COLOUR = "#9467bd"


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
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _signed(text: str) -> str:
    return text if text.startswith("-") else "+" + text


def resource_charts(resources: JSON, x_max: float) -> list[str]:
    """Memory in MB, the watched metrics in their own units."""
    charts = []
    for name, points in resources["series"].items():
        scale, unit = (1e-6, "MB") if name == MEMORY_METRIC else (1.0, "value")
        series = Series(name, COLOUR, [(t, v * scale) for t, v in points])
        charts.append(line_chart(name, unit, [series], x_max))
    return charts
