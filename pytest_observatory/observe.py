"""How measurements travel from the transport to the check that caused them.

The engine installs the running check's recorder in a context variable for each probe; the
transport and the stream parser report to whatever is installed, so probes need do nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RequestTiming:
    """One HTTP exchange as the transport saw it. Queueing for a pooled connection is
    client-side, so it is reported apart and left out of the two latencies; ``queue_ns`` is
    ``None`` when the pool is not capped. ``stream_ttft_ns`` is set for server-sent event
    streams read through the httpx client (the OpenAI SDK, ``observatory_client``), which the
    transport times without parsing: their first body bytes."""

    status: int
    queue_ns: int | None
    headers_ns: int
    total_ns: int
    bytes_in: int
    stream_ttft_ns: int | None = None


@dataclass(frozen=True)
class StreamResult:
    """A streamed chat completion with its timing. ``output_tokens`` comes from the server's
    usage report when it sends one (``tokens_source="usage"``), else it counts content chunks
    (``"chunks"``). ITL excludes the first token; TPOT is (total - TTFT) / (tokens - 1)."""

    text: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    ttft_ms: float
    itl_ms: tuple[float, ...]
    tpot_ms: float | None
    output_tokens: int
    tokens_source: str
    tokens_per_s: float
    total_ms: float


class Exchange(Protocol):
    """One request as far as it got (the transport's stopwatch): the ``X-Request-ID`` we sent,
    and the status and headers once an answer began (None before)."""

    @property
    def request_id(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def response_headers(self) -> Mapping[str, str] | None: ...


class RequestObserver(Protocol):
    """What the engine installs for a probe: it receives every request and stream it made."""

    def request_sent(self, exchange: Exchange) -> None:
        """A request is about to leave: the probe's latest, which a failure is traced to."""

    def request_done(self, timing: RequestTiming) -> None: ...

    def stream_done(self, result: StreamResult) -> None: ...

    def tokens_used(self, model: str | None, usage: object) -> None:
        """An answer's ``usage`` member (usage.py reads it), for the ``model`` asked for."""


# The recorder of the check whose probe is running; set by the engine, read by the transport.
current_observer: contextvars.ContextVar[RequestObserver | None] = contextvars.ContextVar(
    "observatory_request_observer", default=None
)
