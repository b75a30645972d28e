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
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx

from .loop import SessionLoop
from .observe import RequestTiming, current_observer
from .tracing import REQUEST_ID_HEADER, new_request_id

CONNECT_TIMEOUT_S = 10.0
EVENT_STREAM = "text/event-stream"


class Stopwatch:
    """Times one request and names it. ``queue_ns`` is the wait for a connection of a capped
    pool (``None`` when the pool is not capped, so nothing can wait); it is kept out of both
    latencies. ``request_id`` goes out as ``X-Request-ID`` (a fresh one per request, or the one
    the caller set); the probe's observer keeps the latest stopwatch, so a failure can be traced
    to the request it ended on (tracing.py)."""

    __slots__ = (
        "started",
        "queue_ns",
        "headers_ns",
        "stream_ttft_ns",
        "request_id",
        "status",
        "response_headers",
    )

    def __init__(self, request_id: str | None = None) -> None:
        self.started = time.perf_counter_ns()
        self.queue_ns: int | None = None
        self.headers_ns = 0
        self.stream_ttft_ns: int | None = None
        self.request_id = request_id or new_request_id()
        self.status: int | None = None
        self.response_headers: Mapping[str, str] | None = None
        observer = current_observer.get()
        if observer is not None:
            observer.request_sent(self)

    @property
    def sent_ns(self) -> int:
        """When the request really left: its start plus any wait for a connection."""
        return self.started + (self.queue_ns or 0)

    def headers_received(self, response: aiohttp.ClientResponse) -> None:
        self.headers_ns = time.perf_counter_ns() - self.sent_ns
        self.status = response.status
        self.response_headers = response.headers

    def first_chunk(self) -> None:
        """A server-sent event stream's first body bytes: its time to first token, as far as a
        transport that does not parse the events can tell."""
        self.stream_ttft_ns = time.perf_counter_ns() - self.sent_ns

    def finish(self, status: int, bytes_in: int) -> None:
        observer = current_observer.get()
        if observer is not None:
            total = time.perf_counter_ns() - self.sent_ns
            observer.request_done(
                RequestTiming(
                    status, self.queue_ns, self.headers_ns, total, bytes_in, self.stream_ttft_ns
                )
            )


class ConnectionGate:
    """At most ``limit`` requests hold a connection at once; waiters get one in arrival order.

    aiohttp's own connector limit hands a freed connection to whichever task asks next, so with
    one connection and four lanes the lane that just finished kept it (39 probes to the others'
    one each). Here a freed slot goes straight to the longest waiter.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, watch: Stopwatch) -> None:
        watch.queue_ns = 0
        if self._free and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        queued_at = time.perf_counter_ns()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            raise
        watch.queue_ns = time.perf_counter_ns() - queued_at

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class SessionPool:
    """The session's one aiohttp connection pool, with the FIFO gate when it is capped."""

    def __init__(self, session: aiohttp.ClientSession, max_connections: int) -> None:
        self.session = session
        self._gate = ConnectionGate(max_connections) if max_connections else None

    async def acquire(self, watch: Stopwatch) -> None:
        if self._gate is not None:
            await self._gate.acquire(watch)

    def release(self) -> None:
        if self._gate is not None:
            self._gate.release()

    async def close(self) -> None:
        await self.session.close()


def aiohttp_timeout(seconds: float, whole_request: bool = False) -> aiohttp.ClientTimeout:
    """A read timeout per socket read (so a stalled stream times out). ``whole_request`` also
    caps the whole request, for answers read in one go: a body trickled in just faster than
    the read timeout would otherwise hold its lane for as long as the server likes. Streams
    keep the per-read timeout only: a long answer streamed steadily is not a fault."""
    return aiohttp.ClientTimeout(
        total=seconds if whole_request else None,
        sock_connect=min(seconds, CONNECT_TIMEOUT_S),
        sock_read=seconds,
    )


def open_pool(
    headers: Mapping[str, str], timeout_s: float, max_connections: int = 0
) -> SessionPool:
    """Unbounded by default: the checks' concurrency bounds the connections, so no request
    waits for one. A cap (to mimic a client's limits) goes through the FIFO gate, which also
    measures each request's wait; the connector keeps the same limit as a backstop."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
        headers=dict(headers),
        timeout=aiohttp_timeout(timeout_s),
        auto_decompress=True,
    )
    return SessionPool(session, max_connections)


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
    except asyncio.TimeoutError as exc:  # aiohttp's read and total timeouts; not builtin on 3.10
        raise httpx.ReadTimeout(str(exc) or "request timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except aiohttp.ClientConnectionError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.InvalidURL(str(exc)) from exc
    except aiohttp.ClientResponseError as exc:  # an answer that is not HTTP at all
        raise httpx.RemoteProtocolError(
            f"invalid HTTP response: {exc.message or type(exc).__name__}", request=request
        ) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Lets an ``httpx.AsyncClient`` send through the shared aiohttp pool, timed."""

    def __init__(self, pool: SessionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read = timeouts.get("read")
        timeout = aiohttp_timeout(read) if read is not None else aiohttp.ClientTimeout(total=None)
        watch = Stopwatch(request.headers.get(REQUEST_ID_HEADER))
        headers = request.headers.multi_items()
        if REQUEST_ID_HEADER not in request.headers:
            headers.append((REQUEST_ID_HEADER, watch.request_id))
        await self._pool.acquire(watch)
        try:
            with httpx_errors(request):
                response = await self._pool.session.request(
                    request.method,
                    str(request.url),
                    headers=headers,
                    data=await request.aread() or None,
                    allow_redirects=False,
                    auto_decompress=False,
                    timeout=timeout,
                )
        except BaseException:
            self._pool.release()
            raise
        watch.headers_received(response)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_TimedBody(response, watch, request, self._pool),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """The pool belongs to the runtime, which closes it after the client."""


class _TimedBody(httpx.AsyncByteStream):
    def __init__(
        self,
        response: aiohttp.ClientResponse,
        watch: Stopwatch,
        request: httpx.Request,
        pool: SessionPool,
    ) -> None:
        self._response = response
        self._watch = watch
        self._request = request
        self._pool = pool
        self._bytes = 0
        self._closed = False
        self._event_stream = response.status < 300 and response.content_type == EVENT_STREAM

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                if self._event_stream and not self._bytes:
                    self._watch.first_chunk()
                self._bytes += len(chunk)
                yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._response.release()
        self._pool.release()
        self._watch.finish(self._response.status, self._bytes)


class SyncTransport(httpx.BaseTransport):
    """A blocking ``httpx.Client`` over the same pool, for ``def`` checks (the OpenAI SDK's
    sync client): each request and each body chunk runs on the session loop."""

    def __init__(self, transport: AiohttpTransport, loop: SessionLoop) -> None:
        self._transport = transport
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the async transport then reuses the buffered body
        response = self._loop.run(self._transport.handle_async_request(request))
        body = response.stream
        assert isinstance(body, _TimedBody)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_SyncBody(body, self._loop),
            request=request,
            extensions=response.extensions,
        )


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, body: _TimedBody, loop: SessionLoop) -> None:
        self._body = body
        self._loop = loop

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._body.__aiter__()
        while True:
            try:
                yield self._loop.run(_next(chunks))
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.run(self._body.aclose())


async def _next(chunks: AsyncIterator[bytes]) -> bytes:
    return await chunks.__anext__()
