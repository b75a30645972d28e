"""Human duration strings ("90s", "30m", "1h30m", "250ms") to seconds and back.

One parser for marker arguments, options and the mock's knobs, so every place accepts the same
spelling and rejects the same mistakes.
"""

from __future__ import annotations

import math
import re

MAX_DURATION_S = 30 * 86400.0  # a month: longer is a typo, and overflows timers downstream
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as "3h", "1h30m", "90s", "250ms" or "45".

    Raises ValueError with a message fit to show a user; bools are rejected so that
    ``duration=True`` is not silently one second.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '90s', '30m', '1h30m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"expected a duration such as '90s', '30m', '1h30m', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"expected a duration of at most 30 days (30d), got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    compact = text.strip().lower().replace(" ", "")
    try:
        return float(compact)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(compact):
        raise ValueError(f"expected a duration such as '90s', '30m', '1h30m', got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """Short, stable rendering for summaries: "850ms", "42.0s", "12m05s", "3h00m", "1h00m02s"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" + (f"{secs:02d}s" if secs else "")
