"""The mock gateway's knobs, importable without starting (or importing) the server.

Each knob is declared once, in :data:`KNOBS`: the URL query form (``mock?failure_rate=0.05``)
and the command line (``python -m pytest_observatory.mock --failure-rate 0.05``) are both built
from that table, so they accept the same names, spellings and values, and fail the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ..durations import parse_duration
from ..sizes import SizeRate, parse_size, parse_size_rate

DEFAULT_MODELS = ("mock-gpt-4o", "mock-gpt-4o-mini")
STREAM_FAULTS = ("", "stall", "truncate", "malformed", "error")
CLIENT_CLOSED = "Cannot send a request, as the client has been closed."
# Chaos faults, in the order a request's one draw is mapped onto them (see mock/chaos.py).
CHAOS_FAULTS = ("reset", "stall", "bad_json", "wrong_type", "huge", "trickle", "throttle")
# One broken field each, in an otherwise valid answer (see mock/contract_faults.py).
CONTRACT_FAULTS = (
    "finish_reason",
    "no_finish",
    "missing_id",
    "created_type",
    "role",
    "usage_sum",
    "chunk_type",
    "no_done",
    "embedding_dim",
    "embedding_count",
    "tokens_type",
)


@dataclass(frozen=True)
class MockSettings:
    """Knobs. Failures are deterministic (exactly every n-th request at ``failure_rate``).

    Streams: ``tokens`` per answer (else the request's ``max_tokens``, else 16), sent at
    ``token_rate`` tokens/s (0: at once) after ``latency``; ``stream_fault`` makes a
    ``stream_fault_rate`` share of streams stall, get cut off, carry malformed data or end with
    an error event after
    ``stream_fault_after`` tokens. ``burst_every`` simulates the cache-TTL bug: from then on,
    every ``burst_every`` seconds, requests for ``burst_model`` (default: the first model) fail
    for ``burst_length`` seconds with "Cannot send a request, as the client has been closed."
    Chaos: ``<fault>_rate`` for each of :data:`CHAOS_FAULTS`, drawn at random per request of the
    ``chaos_models`` (default: all) from a generator seeded with ``seed``. ``capacity``: at
    most that many requests are in their ``latency`` at once, the rest wait their turn, so the
    mock saturates at a known concurrency (``capacity / latency`` requests per second).
    ``contract_fault``: one field of a ``contract_fault_rate`` share of the answers it concerns
    is broken (:data:`CONTRACT_FAULTS`), every n-th like ``failure_rate``.
    ``health_fail_after``, ``model_missing_after``: from that long after the start, the health
    routes answer 503, /v1/models leaves out the last model; ``embedding_dim_change_after``:
    after that many embeddings answers, vectors have 4 dimensions instead of 8 (what a bad
    redeploy looks like).
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
    reset_rate: float = 0.0
    stall_rate: float = 0.0
    bad_json_rate: float = 0.0
    wrong_type_rate: float = 0.0
    huge_rate: float = 0.0
    huge_size: int = 32_000_000
    trickle_rate: float = 0.0
    trickle_time_s: float = 10.0
    throttle_rate: float = 0.0
    retry_after_s: float = 1.0
    chaos_models: tuple[str, ...] = ()
    seed: int = 0
    capacity: int = 0  # requests served at once (0: no limit); the rest queue
    contract_fault: str = ""
    contract_fault_rate: float = 1.0
    # Faults of a redeployed gateway, from that many seconds after the start (0: never)...
    health_fail_after_s: float = 0.0
    model_missing_after_s: float = 0.0
    # ... or after that many embeddings answers (0: never).
    embedding_dim_change_after: int = 0
    leak: SizeRate | None = None  # simulated memory growth of /metrics (mock/metrics.py)

    def __post_init__(self) -> None:
        for name in (
            "latency_s",
            "burst_every_s",
            "burst_length_s",
            "token_rate",
            "trickle_time_s",
            "retry_after_s",
            "health_fail_after_s",
            "model_missing_after_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"mock setting {name}={value!r}: expected a value >= 0")
        for name in (
            "failure_rate",
            "stream_fault_rate",
            "contract_fault_rate",
            *(f"{f}_rate" for f in CHAOS_FAULTS),
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"mock setting {name}={value!r}: expected a number in [0, 1]")
        rates = {f"{fault}_rate": rate for fault, rate in self.chaos_rates().items() if rate}
        if sum(rates.values()) > 1 + 1e-9:
            given = ", ".join(f"{name}={rate!r}" for name, rate in rates.items())
            raise ValueError(f"mock settings {given}: chaos fractions add up to more than 1")
        if self.stream_fault not in STREAM_FAULTS:
            raise ValueError(
                f"mock setting stream_fault={self.stream_fault!r}: expected one of "
                "stall, truncate, malformed, error"
            )
        if self.contract_fault and self.contract_fault not in CONTRACT_FAULTS:
            raise ValueError(
                f"mock setting contract_fault={self.contract_fault!r}: expected one of "
                + ", ".join(CONTRACT_FAULTS)
            )
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"mock setting tokens={self.tokens!r}: expected an integer >= 1")
        if self.burst_model is not None and self.burst_model not in self.models:
            raise ValueError(f"mock setting burst_model={self.burst_model!r}: not in models")
        unknown = [m for m in self.chaos_models if m not in self.models]
        if unknown:
            raise ValueError(f"mock setting chaos_models={','.join(unknown)!r}: not in models")
        if not 400 <= self.failure_status <= 599:
            raise ValueError(
                f"mock setting failure_status={self.failure_status!r}: expected 400-599"
            )
        if not self.models:
            raise ValueError("mock setting models: expected at least one model name")

    def chaos_rates(self) -> dict[str, float]:
        """Fault name -> fraction, in :data:`CHAOS_FAULTS` order."""
        return {fault: getattr(self, f"{fault}_rate") for fault in CHAOS_FAULTS}

    @classmethod
    def from_query(cls, query: str) -> MockSettings:
        """Knobs from a URL query, e.g. ``failure_rate=0.05&latency=20ms&failure_status=503``."""
        return cls.from_knobs(parse_qsl(query, keep_blank_values=True))

    @classmethod
    def from_knobs(cls, pairs: Iterable[tuple[str, str]]) -> MockSettings:
        """Knobs from (name, text) pairs, the last of a name winning; ValueError names the knob."""
        values: dict[str, Any] = {}
        for key, raw in pairs:
            knob = KNOBS_BY_NAME.get(key)
            if knob is None:
                known = ", ".join(sorted(KNOBS_BY_NAME))
                raise ValueError(f"unknown mock setting {key}={raw!r} (known: {known})")
            try:
                values[knob.field] = knob.parse(raw)
            except ValueError as exc:
                raise ValueError(f"mock setting {key}={raw!r}: {exc}") from None
        return cls(**values)


@dataclass(frozen=True)
class Knob:
    """One knob: its query name (``--name-with-dashes`` on the command line), the
    :class:`MockSettings` field it sets, how its text is parsed, and its help line."""

    name: str
    field: str
    parse: Callable[[str], Any]
    help: str
    public: bool = True  # may its value be shown (the mock's API key may not)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError("expected a whole number")
    return int(text)


def _size(text: str) -> int:
    """Bytes: ``32000000``, ``32MB``, ``512KiB``."""
    return int(parse_size(text))


def parse_models(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _fraction(fault: str, what: str) -> Knob:
    return Knob(f"{fault}_rate", f"{fault}_rate", _number, f"fraction [0, 1] of requests {what}")


KNOBS: tuple[Knob, ...] = (
    Knob("latency", "latency_s", parse_duration, "delay before every answer, e.g. 20ms"),
    Knob("failure_rate", "failure_rate", _number, "fraction [0, 1] of failed requests (n-th)"),
    Knob("failure_status", "failure_status", _count, "HTTP status of those failures (500)"),
    Knob("models", "models", parse_models, "comma-separated model names"),
    Knob("api_key", "api_key", str, "require 'Authorization: Bearer KEY'", public=False),
    Knob("tokens", "tokens", _count, "tokens per answer (default: max_tokens, else 16)"),
    Knob("token_rate", "token_rate", _number, "streamed tokens per second (0: at once)"),
    Knob("stream_fault", "stream_fault", str, "stall, truncate, malformed or error"),
    Knob("stream_fault_rate", "stream_fault_rate", _number, "share of streams with that fault"),
    Knob("stream_fault_after", "stream_fault_after", _count, "tokens sent before the fault"),
    Knob("burst_every", "burst_every_s", parse_duration, "cache-TTL bug: a burst every ..."),
    Knob("burst_length", "burst_length_s", parse_duration, "length of each burst (2s)"),
    Knob("burst_model", "burst_model", str, "the model the bursts hit (the first)"),
    _fraction("reset", "whose connection is reset before the answer"),
    _fraction("stall", "that get no answer headers at all"),
    _fraction("bad_json", "answered 200 with invalid JSON"),
    _fraction("wrong_type", "answered 200 with an HTML page"),
    _fraction("huge", "answered with a huge (huge_size) but valid body"),
    Knob("huge_size", "huge_size", _size, "size of a huge answer's content (32MB)"),
    _fraction("trickle", "whose body trickles in over trickle_time"),
    Knob("trickle_time", "trickle_time_s", parse_duration, "how long a trickled body takes (10s)"),
    _fraction("throttle", "answered 429 with Retry-After"),
    Knob("retry_after", "retry_after_s", parse_duration, "Retry-After of those 429s (1s)"),
    Knob("chaos_models", "chaos_models", parse_models, "models the chaos faults hit (all)"),
    Knob("seed", "seed", _count, "seed of the chaos draws: same seed, same faults (0)"),
    Knob("capacity", "capacity", _count, "requests served at once, the rest queue (0: no limit)"),
    Knob(
        "contract_fault", "contract_fault", str, "one field broken: " + ", ".join(CONTRACT_FAULTS)
    ),
    Knob("contract_fault_rate", "contract_fault_rate", _number, "share of answers it breaks (1)"),
    Knob(
        "health_fail_after",
        "health_fail_after_s",
        parse_duration,
        "health routes answer 503 from this long after the start (0: never)",
    ),
    Knob(
        "model_missing_after",
        "model_missing_after_s",
        parse_duration,
        "/v1/models leaves out the last model from this long after the start (0: never)",
    ),
    Knob(
        "embedding_dim_change_after",
        "embedding_dim_change_after",
        _count,
        "embeddings shrink from 8 to 4 dimensions after N answers (0: never)",
    ),
    Knob("leak", "leak", parse_size_rate, "/metrics memory grows by SIZE/s|min|h|request"),
)
KNOBS_BY_NAME = {knob.name: knob for knob in KNOBS}
# Knobs whose values may be shown: everything but the key the mock requires.
PUBLIC_KNOBS = frozenset(knob.name for knob in KNOBS if knob.public)
