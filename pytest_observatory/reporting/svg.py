"""Small inline SVG line charts for the HTML report: no script, no library, no network.

A chart is a handful of polylines over time, so drawing it here costs less than inlining a
plotting library's hundreds of kilobytes of JavaScript, and the report opens anywhere, even
with scripts disabled, and prints. Every point is also a dot (a single window is still seen);
gaps (``None``) break the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..durations import format_duration

WIDTH, HEIGHT = 760, 210
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 34, 30
MARKER_COLOUR = "#8c564b"


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: Sequence[tuple[float, float | None]]  # (seconds, value); None leaves a gap


def line_chart(
    title: str,
    unit: str,
    series: Sequence[Series],
    x_max: float,
    markers: Sequence[float] = (),
    marker_name: str = "failure burst",
) -> str:
    values = [y for s in series for _, y in s.points if y is not None]
    y_max = _nice_ceiling(max(values, default=0.0))
    x_max = max(x_max, max((x for s in series for x, _ in s.points), default=0.0), 1e-3)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + plot_w * x / x_max

    def py(y: float) -> float:
        return TOP + plot_h * (1 - y / y_max)

    parts = [
        f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="14" class="title">{escape(title)} ({escape(unit)})</text>',
    ]
    for tick in _ticks(y_max):
        tick_y = py(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{tick_y:.1f}" y2="{tick_y:.1f}" '
            'class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{tick_y + 4:.1f}" class="tick" text-anchor="end">'
            f"{tick:g}</text>"
        )
    for tick in _ticks(x_max):
        x = px(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 10}" class="tick" text-anchor="middle">'
            f"{escape(format_duration(tick))}</text>"
        )
    for start in markers:
        x = px(start)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="{MARKER_COLOUR}" stroke-width="2" stroke-dasharray="5 3">'
            f"<title>{escape(marker_name)} at {escape(format_duration(start))}</title></line>"
        )
        parts.append(
            f'<path d="M{x - 5:.1f},{TOP} L{x + 5:.1f},{TOP} L{x:.1f},{TOP + 8}Z" '
            f'fill="{MARKER_COLOUR}"/>'
        )
    for s in series:
        for segment in _segments(s.points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in segment)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2"/>'
            )
        for x, y in s.points:
            if y is not None:
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{s.colour}">'
                    f"<title>{escape(s.name)} {y:g} {escape(unit)} at "
                    f"{escape(format_duration(x))}</title></circle>"
                )
    # The frame goes over the data: a series at 0 must not hide the axis.
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    legend_x = LEFT + 8 * len(f"{title} ({unit})") + 24  # past the bold title
    legend = [(s.name, s.colour) for s in series]
    if markers:
        legend.append((marker_name, MARKER_COLOUR))
    for name, colour in legend:
        parts.append(f'<rect x="{legend_x}" y="5" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="15" class="legend">{escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "\n".join(parts)


def _segments(
    points: Sequence[tuple[float, float | None]],
) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            segments.append([])
        else:
            segments[-1].append((x, y))
    return [segment for segment in segments if len(segment) > 1]


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _ticks(top: float, count: int = 4) -> list[float]:
    step = _nice_ceiling(top / count)
    return [round(i * step, 9) for i in range(int(top / step + 1e-9) + 1)]
