"""The ``observatory`` marker: parsed strictly, once, into a frozen CheckSpec.

Like pytest-timeout's ``_parse_marker``, positional and unknown arguments are errors: a typo in a
threshold must never silently fall back to a default during a 3-hour run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from .durations import parse_duration
from .options import Settings

MARKER_NAME = "observatory"
MARKER_HELP = (
    "observatory(*, duration, max_failure_rate=0.01, models=None, concurrency=1, interval=None, "
    "request_timeout='60s', probes=None): run the test body as a probe again and again for "
    "`duration`, keeping `concurrency` probes in flight, and judge the run by its failure rate."
)
MAX_CONCURRENCY = 4096


class MarkerError(ValueError):
    """A bad marker argument; its message names the argument and the value."""


@dataclass(frozen=True)
class CheckSpec:
    duration_s: float
    max_failure_rate: float = 0.01
    models: tuple[str, ...] = ()
    concurrency: int = 1
    interval_s: float = 0.0
    request_timeout_s: float = 60.0
    max_probes: int | None = None


def parse_marker(mark: pytest.Mark, settings: Settings) -> CheckSpec:
    """Build the spec from the marker, with session settings filling models and duration."""
    if mark.args:
        raise MarkerError(f"takes keyword arguments only, got positional {mark.args!r}")
    kwargs = dict(mark.kwargs)
    unknown = sorted(set(kwargs) - _KNOWN)
    if unknown:
        raise MarkerError(
            f"unknown argument {unknown[0]}={kwargs[unknown[0]]!r} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    if "duration" not in kwargs:
        raise MarkerError("missing required argument duration (e.g. duration='30m')")
    duration = _positive_duration(kwargs, "duration")
    if settings.duration_override_s is not None:
        duration = settings.duration_override_s
    models = _models(kwargs.get("models")) or settings.models
    return CheckSpec(
        duration_s=duration,
        max_failure_rate=_failure_rate(kwargs.get("max_failure_rate", 0.01)),
        models=models,
        concurrency=_bounded_int(kwargs, "concurrency", 1, 1, MAX_CONCURRENCY),
        interval_s=_duration(kwargs, "interval", 0.0),
        request_timeout_s=_positive_duration(kwargs, "request_timeout", "60s"),
        max_probes=(
            None if kwargs.get("probes") is None else _bounded_int(kwargs, "probes", 1, 1, 2**62)
        ),
    )


_KNOWN = frozenset(
    {
        "duration",
        "max_failure_rate",
        "models",
        "concurrency",
        "interval",
        "request_timeout",
        "probes",
    }
)


def _duration(kwargs: dict[str, Any], name: str, default: object) -> float:
    value = kwargs.get(name)
    try:
        return parse_duration(default if value is None else value)
    except ValueError as exc:
        raise MarkerError(f"{name}={value!r}: {exc}") from None


def _positive_duration(kwargs: dict[str, Any], name: str, default: object = None) -> float:
    seconds = _duration(kwargs, name, default)
    if seconds <= 0:
        raise MarkerError(f"{name}={kwargs.get(name)!r}: must be > 0")
    return seconds


def _failure_rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarkerError(f"max_failure_rate={value!r}: expected a number in [0, 1)")
    if not (math.isfinite(value) and 0 <= value < 1):
        raise MarkerError(f"max_failure_rate={value!r}: must be in [0, 1)")
    return float(value)


def _bounded_int(kwargs: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = kwargs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MarkerError(f"{name}={value!r}: expected an integer >= {low}")
    if not low <= value <= high:
        raise MarkerError(f"{name}={value!r}: must be between {low} and {high}")
    return value


def _models(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise MarkerError(f"models={value!r}: expected a list of model names or 'a,b'")
    models = tuple(n.strip() for n in names if n.strip())
    if not models:
        raise MarkerError(f"models={value!r}: no model names")
    return models
