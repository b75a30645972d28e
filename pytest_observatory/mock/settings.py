"""The mock gateway's knobs, importable without starting (or importing) the server."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..durations import parse_duration

DEFAULT_MODELS = ("mock-gpt-4o", "mock-gpt-4o-mini")


@dataclass(frozen=True)
class MockSettings:
    latency_s: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 500
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise ValueError(f"mock setting latency={self.latency_s!r}: expected a duration >= 0")
        if not (math.isfinite(self.failure_rate) and 0 <= self.failure_rate <= 1):
            raise ValueError(
                f"mock setting failure_rate={self.failure_rate!r}: expected a number in [0, 1]"
            )
        if not 400 <= self.failure_status <= 599:
            raise ValueError(
                f"mock setting failure_status={self.failure_status!r}: expected 400-599"
            )
        if not self.models:
            raise ValueError("mock setting models: expected at least one model name")

    @classmethod
    def from_query(cls, query: str) -> MockSettings:
        """Knobs from a URL query, e.g. ``failure_rate=0.05&latency=20ms&failure_status=503``."""
        values: dict[str, Any] = {}
        for key, items in parse_qs(query, keep_blank_values=True).items():
            raw = items[-1]
            parse = _QUERY_KNOBS.get(key)
            if parse is None:
                raise ValueError(
                    f"unknown mock setting {key}={raw!r} (known: {', '.join(sorted(_QUERY_KNOBS))})"
                )
            name, convert = parse
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise ValueError(f"mock setting {key}={raw!r}: {exc}") from None
        return cls(**values)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def _status(text: str) -> int:
    if not text.isdigit():
        raise ValueError("expected an HTTP status code")
    return int(text)


def parse_models(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


_QUERY_KNOBS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "latency": ("latency_s", parse_duration),
    "failure_rate": ("failure_rate", _number),
    "failure_status": ("failure_status", _status),
    "models": ("models", parse_models),
    "api_key": ("api_key", str),
}
