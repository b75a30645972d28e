"""The HTML report: self-contained, escaped, no secrets; and drawn, as headless Chromium shows it.

The Chromium test takes a screenshot and finds each chart's plot frame (a crisp #999 rectangle)
in the pixels, then counts the series colours inside each frame: the plots are drawn only if the
lines and dots are really there, not just present in the markup.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

STREAM = """
import pytest

@pytest.mark.observatory(duration="4s", window="250ms", max_failure_rate=0.5, concurrency=4)
async def test_stream(deployment, model):
    await deployment.stream_chat(model, "Hello", max_tokens=8)
"""
ODD = """
import pytest

@pytest.mark.parametrize("name", ["<script>alert('x')</script>"])
@pytest.mark.observatory(duration="300ms", window="100ms", max_failure_rate=0.5)
def test_odd(name):
    raise RuntimeError(f"gateway said <b>{name}</b> & more")
"""
# Series colours (reporting/html.py, svg.py) as RGB.
FAILURE_RATE, P50, P95 = (0xD6, 0x27, 0x28), (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)
TTFT_P50, TTFT_P95, BURST = (0x2C, 0xA0, 0x2C), (0x94, 0x67, 0xBD), (0x8C, 0x56, 0x4B)
FRAME = (0x99, 0x99, 0x99)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_is_self_contained_and_escaped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_odd=ODD)
    report = pytester.path / "out" / "report.html"
    result = pytester.runpytest("--deployment-url=mock", f"--observatory-html={report}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*- observatory HTML report: {report} -*"])
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html  # neither ours nor the node id's
    assert not re.search(r"(src|href)=\"(?!#)", html)  # no external resource, only anchors
    assert "http://" not in html and "https://" not in html
    assert "test_odd[&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;]" in html
    assert "gateway said &lt;b&gt;&lt;script&gt;" in html and "&amp; more" in html
    assert html.count('<svg class="chart"') == 2  # failure rate and latency; no stream, no TTFT


@pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_plots_are_drawn_in_headless_chromium(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_stream=STREAM)
    report = pytester.path / "report.html"
    pytester.runpytest(
        # Two short bursts in 4 s: few enough slices that they stand out from the background
        # even when a loaded machine slows the probes down.
        "--deployment-url=mock?token_rate=400&burst_every=1500ms&burst_length=150ms",
        f"--observatory-html={report}",
    ).assert_outcomes(passed=1)
    screenshot = tmp_path / "report.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1400",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, pixels = read_png(screenshot.read_bytes())
    frames = plot_frames(width, pixels)
    assert len(frames) == 3, frames  # failure rate, latency, TTFT
    failure, latency, ttft = (colours_inside(width, pixels, frame) for frame in frames)
    assert failure[FAILURE_RATE] > 50 and failure[BURST] > 20
    assert latency[P50] > 50 and latency[P95] > 50 and latency[BURST] > 20
    assert ttft[TTFT_P50] > 50 and ttft[TTFT_P95] > 50
    assert failure[P50] == latency[FAILURE_RATE] == ttft[P95] == 0  # each in its own plot


Pixel = tuple[int, int, int]


def read_png(data: bytes) -> tuple[int, list[Pixel]]:
    """Width and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[Pixel] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - up_left
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[i] = (line[i] + best) & 0xFF
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels))
        previous = line
    return width, pixels


def plot_frames(width: int, pixels: list[Pixel]) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each plot frame: two long #999 rows, top and bottom
    (mostly #999: dots and burst markers may cover a few of their pixels)."""
    edges: list[tuple[int, int, int]] = []  # (row, first column, last column)
    for row in range(len(pixels) // width):
        line = pixels[row * width : (row + 1) * width]
        columns = [x for x, pixel in enumerate(line) if pixel == FRAME]
        if len(columns) > 500:
            edges.append((row, columns[0], columns[-1]))
    assert len(edges) % 2 == 0, edges
    return [
        (top[1], top[0], top[2], bottom[0])
        for top, bottom in zip(edges[::2], edges[1::2], strict=True)
    ]


def colours_inside(
    width: int, pixels: list[Pixel], frame: tuple[int, int, int, int]
) -> dict[Pixel, int]:
    left, top, right, bottom = frame
    counts: dict[Pixel, int] = {}
    for y in range(top + 1, bottom):
        for pixel in pixels[y * width + left + 1 : y * width + right]:
            counts[pixel] = counts.get(pixel, 0) + 1
    return {
        colour: counts.get(colour, 0)
        for colour in (FAILURE_RATE, P50, P95, TTFT_P50, TTFT_P95, BURST)
    }
