"""Failures you can trace: a fresh ``X-Request-ID`` on every request we send, and a bounded
sample of failed probes with the ids that find them in the gateway's own logs.

A soak run can fail thousands of probes; an operator needs a handful of them, each with an id
to grep for. So the first failures are kept (an outage's start) and a uniform reservoir of the
later ones (whether the failures changed over the run), in memory that does not grow.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping

from .observe import Exchange
from .result import JSON

REQUEST_ID_HEADER = "X-Request-ID"
# Where gateways put their own id for a request, first match wins: LiteLLM's call id, then the
# common request-id spellings (vLLM and many proxies echo or set x-request-id, Azure and
# Anthropic send request-id, AWS x-amzn-requestid). An echo of our own id adds nothing.
GATEWAY_ID_HEADERS = (
    "x-litellm-call-id",
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "apim-request-id",
)
FIRST_SAMPLES = 20
LATER_SAMPLES = 20
EXCERPT_CHARS = 200


def new_request_id() -> str:
    """A random (version 4) UUID in its canonical form: unique across processes and machines.
    Built from the random bytes directly, as ``uuid.uuid4()`` would, at under half its cost
    (the UUID object's validation is what costs): it runs once per request."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def gateway_request_id(headers: Mapping[str, str] | None, ours: str) -> str | None:
    if headers is None:
        return None
    for name in GATEWAY_ID_HEADERS:
        value = headers.get(name)
        if value and value != ours:
            return value
    return None


class FailureSamples:
    """The first FIRST_SAMPLES failures, then a uniform reservoir (algorithm R) of LATER_SAMPLES
    of the rest. A sample is built only when it is kept: most failures of a long outage cost a
    counter increment and one random draw."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self._first: list[JSON] = []
        self._later: list[JSON] = []
        self._later_seen = 0
        self._random = random.Random()

    def offer(
        self,
        t_s: float,
        model: str | None,
        lane: int | None,
        category: str,
        message: str,
        status: int | None,
        exchange: Exchange | None,
    ) -> None:
        """``message`` is redacted already (the recorder's error message)."""
        place = self._place()
        if place is None:
            return
        samples, index = place
        request_id = gateway_id = None
        if exchange is not None:
            request_id = self._redact(exchange.request_id)
            if status is None:
                status = exchange.status
            gateway_id = gateway_request_id(exchange.response_headers, exchange.request_id)
        text = message.removeprefix(f"{category}: ")
        if len(text) > EXCERPT_CHARS:
            text = text[: EXCERPT_CHARS - 1] + "…"
        samples[index] = {
            "t_s": round(t_s, 3),
            "model": model,
            "lane": lane,
            "category": category,
            "status": status,
            "request_id": request_id,
            "gateway_request_id": None if gateway_id is None else self._redact(gateway_id),
            "message": text,
        }

    def _place(self) -> tuple[list[JSON], int] | None:
        """Where this failure's sample goes, or None when the reservoir passes it over."""
        if len(self._first) < FIRST_SAMPLES:
            self._first.append({})
            return self._first, len(self._first) - 1
        self._later_seen += 1
        if len(self._later) < LATER_SAMPLES:
            self._later.append({})
            return self._later, len(self._later) - 1
        index = self._random.randrange(self._later_seen)
        return (self._later, index) if index < LATER_SAMPLES else None

    def to_json(self) -> list[JSON] | None:
        """In time order; None when nothing failed."""
        samples = self._first + self._later
        return sorted(samples, key=lambda sample: sample["t_s"]) if samples else None
