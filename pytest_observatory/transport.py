"""HTTP under the session client: one aiohttp connection pool, every request timed where it
happens.

httpx's default transport collapses under concurrency (encode/httpx#3215: ~210 req/s at 32 in
flight on one core), so an engine built on it reports its own queueing as the gateway's latency.
Here one ``aiohttp.ClientSession`` carries every request of the session: the user-facing
``httpx.AsyncClient`` reaches it through :class:`AiohttpTransport`, and the deployment helpers
call it directly (no httpx object churn on the hot path). Both time the request the same way and
map aiohttp's faults to httpx's exception types, so probes see one consistent interface.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx

from .observe import RequestTiming, current_observer

CONNECT_TIMEOUT_S = 10.0


class Stopwatch:
    """Times one request; aiohttp's tracing adds the time spent queued for a connection."""

    __slots__ = ("started", "queued_at", "queue_ns", "headers_ns")

    def __init__(self) -> None:
        self.started = time.perf_counter_ns()
        self.queued_at = 0
        self.queue_ns = 0
        self.headers_ns = 0

    def headers_received(self) -> None:
        self.headers_ns = time.perf_counter_ns() - self.started - self.queue_ns

    def finish(self, status: int, bytes_in: int) -> None:
        observer = current_observer.get()
        if observer is not None:
            total = time.perf_counter_ns() - self.started - self.queue_ns
            observer.request_done(
                RequestTiming(status, self.queue_ns, self.headers_ns, total, bytes_in)
            )


async def _queued_start(_session: object, context: SimpleNamespace, _params: object) -> None:
    watch = context.trace_request_ctx
    if isinstance(watch, Stopwatch):
        watch.queued_at = time.perf_counter_ns()


async def _queued_end(_session: object, context: SimpleNamespace, _params: object) -> None:
    watch = context.trace_request_ctx
    if isinstance(watch, Stopwatch) and watch.queued_at:
        watch.queue_ns += time.perf_counter_ns() - watch.queued_at


def aiohttp_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A read timeout per socket read (so a stalled stream times out), no overall cap."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=min(seconds, CONNECT_TIMEOUT_S), sock_read=seconds
    )


def open_session(
    headers: Mapping[str, str], timeout_s: float, max_connections: int = 0
) -> aiohttp.ClientSession:
    """The session's one pool. Unbounded by default: the checks' concurrency bounds the
    connections, so no request waits for one. A bounded pool (to mimic a client's limits) is
    traced to report that wait as queue time; tracing costs ~1 ms at p50 and more at p99 under
    load (bench/README.md), so an unbounded pool, which cannot queue, goes without."""
    tracing = []
    if max_connections:
        trace = aiohttp.TraceConfig()
        trace.on_connection_queued_start.append(_queued_start)
        trace.on_connection_queued_end.append(_queued_end)
        tracing.append(trace)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
        headers=dict(headers),
        timeout=aiohttp_timeout(timeout_s),
        trace_configs=tracing,
        auto_decompress=True,
    )


@contextmanager
def httpx_errors(request: httpx.Request | None = None) -> Iterator[None]:
    """Re-raise aiohttp's faults as the httpx exceptions users of an httpx client expect.

    Order matters: aiohttp's timeouts are also connection errors, and a refused connect is also
    an OSError. The original stays attached as ``__cause__``.
    """
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except asyncio.TimeoutError as exc:  # aiohttp's read timeouts; not builtin on 3.10
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except aiohttp.ClientConnectionError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.InvalidURL(str(exc)) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Lets an ``httpx.AsyncClient`` send through the shared aiohttp pool, timed."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read = timeouts.get("read")
        timeout = aiohttp_timeout(read) if read is not None else aiohttp.ClientTimeout(total=None)
        watch = Stopwatch()
        with httpx_errors(request):
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=await request.aread() or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=timeout,
                trace_request_ctx=watch,
            )
        watch.headers_received()
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_TimedBody(response, watch, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """The pool belongs to the runtime, which closes it after the client."""


class _TimedBody(httpx.AsyncByteStream):
    def __init__(
        self, response: aiohttp.ClientResponse, watch: Stopwatch, request: httpx.Request
    ) -> None:
        self._response = response
        self._watch = watch
        self._request = request
        self._bytes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                self._bytes += len(chunk)
                yield chunk

    async def aclose(self) -> None:
        self._response.release()
        self._watch.finish(self._response.status, self._bytes)
