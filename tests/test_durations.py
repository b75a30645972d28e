from __future__ import annotations

import pytest

from pytest_observatory.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("3h", 10800),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (" 10 s ", 10),
        ("45", 45),
        (45, 45),
        (0.5, 0.5),
    ],
)
def test_parses(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["abc", "10x", "h", "-5", "1h-3m", "", True, None, float("nan"), [1]]
)
def test_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.85, "850ms"), (42, "42.0s"), (725, "12m05s"), (10800, "3h00m"), (3602, "1h00m02s")],
)
def test_formats(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
