"""Chaos faults of the mock gateway: which request gets which fault, and the faults that replace
an answer outright.

Unlike the every-n-th failure schedule, chaos faults are drawn at random from a generator seeded
with ``seed``: several fractions at once on a deterministic grid would collide and beat against
the round-robin of models and lanes (at 0.5, every fault would hit the same one of two models),
while independent draws give each request the injected probability, which is what the binomial
bounds in the tests and a reader's intuition assume. One draw per eligible request, always
taken, so the same seed and the same order of requests give exactly the same faults.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct

from aiohttp import web

from .settings import MockSettings

STALL_S = 3600.0  # a stalled answer waits this long, or until the client gives up
TRICKLE_PIECES = 20
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>injected by the mock (wrong_type)</p></body></html>"
)
BAD_JSON = b'{"id": "chatcmpl-mock-bad", "object": "chat.completion", "choices": [{"index": 0,'


class ChaosDraw:
    """One uniform draw per request of a chaos model, mapped onto the faults' cumulative
    fractions: faults never overlap and each keeps its exact marginal probability."""

    def __init__(self, settings: MockSettings) -> None:
        self._random = random.Random(settings.seed)
        self._models = frozenset(settings.chaos_models or settings.models)
        self._bounds: list[tuple[float, str]] = []
        upper = 0.0
        for fault, rate in settings.chaos_rates().items():
            if rate:
                upper += rate
                self._bounds.append((upper, fault))

    def draw(self, model: str) -> str | None:
        if not self._bounds or model not in self._models:
            return None
        value = self._random.random()
        return next((fault for upper, fault in self._bounds if value < upper), None)


async def replace_answer(
    request: web.Request, fault: str, settings: MockSettings, stream: bool
) -> web.StreamResponse | None:
    """The answer for a fault that needs none of the normal one; ``None`` for ``huge`` and
    ``trickle``, which shape the normal answer instead."""
    if fault == "reset":
        return _reset(request)
    if fault == "stall":
        await asyncio.sleep(STALL_S)  # cancelled when the client disconnects
        return web.Response(status=504)
    if fault == "wrong_type":
        return web.Response(body=HTML_PAGE, content_type="text/html")
    if fault == "throttle":
        return throttled(settings, "mock rate limit (injected)")
    if fault == "bad_json":
        if not stream:
            return web.Response(body=BAD_JSON, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + BAD_JSON + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response
    return None


def throttled(settings: MockSettings, message: str) -> web.Response:
    payload = {"error": {"message": message, "type": "rate_limit_error", "code": 429}}
    retry_after = str(math.ceil(settings.retry_after_s))
    return web.json_response(payload, status=429, headers={"Retry-After": retry_after})


def _reset(request: web.Request) -> web.StreamResponse:
    """A TCP reset (SO_LINGER 0, then abort) once the request is in: the client sees
    'Connection reset by peer', as when a gateway's worker dies mid-request."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)  # never sent: the connection is gone


def padded(body: bytes, size: int) -> bytes:
    """Still valid JSON (trailing whitespace is), ``size`` bytes long or more."""
    return body + b" " * max(0, size - len(body))


async def trickle(
    request: web.Request, response: web.StreamResponse, body: bytes, seconds: float
) -> web.StreamResponse:
    """Send ``body`` in pieces spread over ``seconds``: every gap is short (no read timeout
    fires), only the whole takes long."""
    response.content_length = len(body)
    await response.prepare(request)
    step = math.ceil(len(body) / TRICKLE_PIECES) or 1
    gap = seconds / TRICKLE_PIECES
    for start in range(0, len(body), step):
        if start:
            await asyncio.sleep(gap)
        await response.write(body[start : start + step])
    await response.write_eof()
    return response
