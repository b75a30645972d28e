"""The mock gateway's knobs, importable without starting (or importing) the server."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..durations import parse_duration

DEFAULT_MODELS = ("mock-gpt-4o", "mock-gpt-4o-mini")
STREAM_FAULTS = ("", "stall", "truncate", "malformed")
CLIENT_CLOSED = "Cannot send a request, as the client has been closed."


@dataclass(frozen=True)
class MockSettings:
    """Knobs. Failures are deterministic (exactly every n-th request at ``failure_rate``).

    Streams: ``tokens`` per answer (else the request's ``max_tokens``, else 16), sent at
    ``token_rate`` tokens/s (0: at once) after ``latency``; ``stream_fault`` makes a
    ``stream_fault_rate`` share of streams stall, get cut off, or carry malformed data after
    ``stream_fault_after`` tokens. ``burst_every`` simulates the cache-TTL bug: from then on,
    every ``burst_every`` seconds, requests for ``burst_model`` (default: the first model) fail
    for ``burst_length`` seconds with "Cannot send a request, as the client has been closed."
    """

    latency_s: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 500
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    tokens: int | None = None
    token_rate: float = 0.0
    stream_fault: str = ""
    stream_fault_rate: float = 1.0
    stream_fault_after: int = 2
    burst_every_s: float = 0.0
    burst_length_s: float = 2.0
    burst_model: str | None = None

    def __post_init__(self) -> None:
        for name in ("latency_s", "burst_every_s", "burst_length_s", "token_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"mock setting {name}={value!r}: expected a value >= 0")
        for name in ("failure_rate", "stream_fault_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"mock setting {name}={value!r}: expected a number in [0, 1]")
        if self.stream_fault not in STREAM_FAULTS:
            raise ValueError(
                f"mock setting stream_fault={self.stream_fault!r}: expected one of "
                "stall, truncate, malformed"
            )
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"mock setting tokens={self.tokens!r}: expected an integer >= 1")
        if self.burst_model is not None and self.burst_model not in self.models:
            raise ValueError(f"mock setting burst_model={self.burst_model!r}: not in models")
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


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError("expected a whole number")
    return int(text)


def parse_models(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


_QUERY_KNOBS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "latency": ("latency_s", parse_duration),
    "failure_rate": ("failure_rate", _number),
    "failure_status": ("failure_status", _count),
    "models": ("models", parse_models),
    "api_key": ("api_key", str),
    "tokens": ("tokens", _count),
    "token_rate": ("token_rate", _number),
    "stream_fault": ("stream_fault", str),
    "stream_fault_rate": ("stream_fault_rate", _number),
    "stream_fault_after": ("stream_fault_after", _count),
    "burst_every": ("burst_every_s", parse_duration),
    "burst_length": ("burst_length_s", parse_duration),
    "burst_model": ("burst_model", str),
}
# Knobs whose values may be shown: everything but the key the mock requires.
PUBLIC_KNOBS = frozenset(_QUERY_KNOBS) - {"api_key"}
