"""Byte sizes ("512MiB", "1.5GB") and sizes per unit ("50MB/h", "4KiB/request") to numbers
and back.

One parser for the marker's ``max_memory_growth`` and the mock's ``leak`` and ``huge_size``
knobs, so all accept the same spelling. Decimal (kB = 1000) and binary (KiB = 1024) units are
kept apart: a memory limit written in MiB means MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_BYTES = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
PER_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
PER_REQUEST = "request"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(text: str) -> float:
    """Bytes from '1000', '32MB', '1.5GiB'; ValueError says what is expected."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in ("", *UNIT_BYTES):
        raise ValueError("expected a size in bytes such as 32MB, 512KiB, 1.5GB or 1000")
    return float(match.group(1)) * UNIT_BYTES.get(match.group(2), 1)


@dataclass(frozen=True)
class SizeRate:
    """``size`` bytes per ``per``: a time unit (s, min, h) or one request."""

    size: float
    per: str

    @property
    def per_hour(self) -> float | None:
        """Bytes per hour, or None for a rate per request."""
        seconds = PER_SECONDS.get(self.per)
        return None if seconds is None else self.size * 3600 / seconds


def parse_size_rate(text: str, pers: tuple[str, ...] = (*PER_SECONDS, PER_REQUEST)) -> SizeRate:
    """'50MB/h' -> SizeRate(50e6, 'h'); only the units in ``pers`` are accepted after '/'."""
    size_text, slash, per = text.strip().partition("/")
    per = per.strip().lower()
    wanted = ", ".join(f"SIZE/{p}" for p in pers)
    if not slash or per not in pers:
        raise ValueError(f"expected {wanted} (e.g. 50MB/{pers[-1]})")
    return SizeRate(parse_size(size_text), per)


def format_size(size: float) -> str:
    """Decimal units for summaries: '12.3 MB', '-512 B'."""
    sign = "-" if size < 0 else ""
    magnitude = abs(size)
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if magnitude >= factor:
            return f"{sign}{magnitude / factor:.1f} {unit}"
    return f"{sign}{magnitude:.0f} B"
