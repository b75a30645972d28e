"""How measurements travel from the transport to the check that caused them.

The engine installs the running check's recorder in a context variable for each probe; the
transport and the stream parser report to whatever is installed, so probes need do nothing.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .client import StreamResult


@dataclass(frozen=True)
class RequestTiming:
    """One HTTP exchange as the transport saw it. Queueing for a pooled connection is
    client-side, so it is reported apart and left out of the two latencies."""

    status: int
    queue_ns: int
    headers_ns: int
    total_ns: int
    bytes_in: int


class RequestObserver(Protocol):
    """What the engine installs for a probe: it receives every request and stream it made."""

    def request_done(self, timing: RequestTiming) -> None: ...

    def stream_done(self, result: StreamResult) -> None: ...


# The recorder of the check whose probe is running; set by the engine, read by the transport.
current_observer: contextvars.ContextVar[RequestObserver | None] = contextvars.ContextVar(
    "observatory_request_observer", default=None
)
