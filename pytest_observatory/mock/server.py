"""An OpenAI-compatible gateway that really listens on 127.0.0.1, with fault knobs.

Tests and ``--deployment-url=mock`` need a real HTTP peer (keep-alive, streaming, status codes),
not a patched client: the bugs we hunt live in connection handling, which a fake would skip.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from . import apis
from .apis import StreamEvents
from .chaos import STALL_S, ChaosDraw, padded, replace_answer, throttled, trickle
from .request_log import RequestLog
from .settings import CLIENT_CLOSED, MockSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_MAX_TOKENS = 16
# Health routes and what they answer: vLLM's /health, LiteLLM's (liveliness: a JSON string).
HEALTH_PATHS: dict[str, object] = {
    "/health": {"status": "ok"},
    "/health/liveliness": "I'm alive!",
    "/health/readiness": {"status": "healthy"},
}
SHRUNK_EMBEDDING_DIMENSION = 4  # the dimension after ``embedding_dim_change_after``


class _EveryNth:
    """Deterministic fraction: event n fires iff floor((n+1)·rate) > floor(n·rate), so a rate
    of 0.2 fails exactly the 5th, 10th, … request and tests can predict every count."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._seen = 0

    def fire(self) -> bool:
        n = self._seen
        self._seen += 1
        return math.floor((n + 1) * self._rate) > math.floor(n * self._rate)


@dataclass(frozen=True)
class MockStats:
    requests: int = 0
    connections: int = 0
    failures_injected: int = 0
    chaos: dict[str, int] = field(default_factory=dict)  # chaos fault -> times injected


class _Gateway:
    """Request handlers and counters; lives on the server's event loop."""

    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self.requests = 0
        self.connections = 0
        self.failures_injected = 0
        self.embeddings_answered = 0
        self.chaos: Counter[str] = Counter()
        self._chaos = ChaosDraw(settings)
        self._failures = _EveryNth(settings.failure_rate)
        self._stream_faults = _EveryNth(settings.stream_fault_rate)
        self._burst_model = settings.burst_model or settings.models[0]
        self._capacity = asyncio.Semaphore(settings.capacity) if settings.capacity else None
        self.started_at = time.monotonic()  # reset when the server starts listening
        self.request_log = RequestLog()  # X-Request-ID received, x-litellm-call-id sent

    def stats(self) -> MockStats:
        chaos = dict(sorted(self.chaos.items()))
        return MockStats(self.requests, self.connections, self.failures_injected, chaos)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for prefix in ("/v1", ""):
            app.router.add_get(f"{prefix}/models", self.models)
            app.router.add_post(f"{prefix}/chat/completions", self.chat)
            app.router.add_post(f"{prefix}/embeddings", self.embeddings)
            app.router.add_post(f"{prefix}/responses", self.responses)
            app.router.add_post(f"{prefix}/messages", self.messages)
        for path in HEALTH_PATHS:
            app.router.add_get(path, self.health)
        app.router.add_get("/mock/stats", self.stats_endpoint)
        app.router.add_get("/mock/requests", self.request_log.endpoint)
        app.on_response_prepare.append(self.request_log.on_response_prepare)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/mock/stats":
            return await handler(request)
        self.requests += 1
        expected = self.settings.api_key
        if expected and expected not in (  # Anthropic clients send their key as x-api-key
            request.headers.get("Authorization", "").removeprefix("Bearer "),
            request.headers.get("x-api-key"),
        ):
            return _error(401, "invalid api key", "authentication_error")
        return await handler(request)

    def _since(self, seconds: float) -> bool:
        """A time-triggered fault knob (0: off) has fired: ``seconds`` after the start."""
        return bool(seconds) and time.monotonic() - self.started_at >= seconds

    async def health(self, request: web.Request) -> web.StreamResponse:
        if self._since(self.settings.health_fail_after_s):
            self.failures_injected += 1
            return web.json_response({"status": "unhealthy (injected)"}, status=503)
        return web.json_response(HEALTH_PATHS[request.path])

    async def stats_endpoint(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(asdict(self.stats()))

    async def models(self, request: web.Request) -> web.StreamResponse:
        created = int(time.time())
        listed = self.settings.models
        if self._since(self.settings.model_missing_after_s):  # a deployment dropped from config
            listed = listed[:-1]
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "mock"} for m in listed
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "messages", "max_tokens", apis.chat_answer)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "input", "max_output_tokens", apis.responses_answer)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "messages", "max_tokens", apis.messages_answer)

    async def _generate(
        self, request: web.Request, required: str, limit: str, answer: apis.Answerer
    ) -> web.StreamResponse:
        """Any API's generation: the shared faults first, then its answer, whole or streamed;
        ``limit`` names the request's token limit in that API."""
        body, problem, fault = await self._model_request(request, required)
        if problem is not None:
            return problem
        reply = answer(body, self._words(body.get(limit)), self.requests)
        if isinstance(reply, StreamEvents):
            return await self._stream(request, reply, fault)
        return await self._answer(request, fault, reply)

    async def _answer(
        self, request: web.Request, fault: str | None, payload: dict[str, Any]
    ) -> web.StreamResponse:
        """A JSON answer, padded (``huge``) or trickled (``trickle``) when chaos says so."""
        if fault is None:
            return web.json_response(payload)
        body = json.dumps(payload).encode()
        if fault == "huge":
            body = padded(body, self.settings.huge_size)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        return await trickle(
            request, response, body, self.settings.trickle_time_s if fault == "trickle" else 0.0
        )

    def _words(self, max_tokens: object) -> list[str]:
        """The answer's tokens: ``tokens``, else the request's limit, else 16."""
        count = self.settings.tokens or int(str(max_tokens or DEFAULT_MAX_TOKENS))
        return [f"tok{i}" for i in range(1, count + 1)]

    async def _stream(
        self, request: web.Request, events: StreamEvents, chaos: str | None
    ) -> web.StreamResponse:
        """Any API's stream: the head at once, the deltas paced by ``token_rate`` and cut by a
        stream fault, then the tail; chaos shapes the whole body instead."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        settings = self.settings
        if chaos is not None:  # huge: one huge (valid) event; trickle: the whole body, slowly
            head = list(events.head)
            if chaos == "huge":
                head[0] = padded(head[0][:-2], settings.huge_size) + b"\n\n"
            seconds = settings.trickle_time_s if chaos == "trickle" else 0.0
            body = b"".join([*head, *events.deltas, *events.tail])
            return await trickle(request, response, body, seconds)
        await response.prepare(request)
        fault = settings.stream_fault if self._stream_faults.fire() else ""
        gap_s = 1 / settings.token_rate if settings.token_rate else 0.0
        await response.write(b"".join(events.head))
        for i, line in enumerate(events.deltas):
            if fault and i == settings.stream_fault_after:
                return await self._fault(request, response, fault, events.error)
            if gap_s and i:
                await asyncio.sleep(gap_s)
            await response.write(line)
        await response.write(b"".join(events.tail))
        await response.write_eof()
        return response

    async def _fault(
        self, request: web.Request, response: web.StreamResponse, fault: str, error: bytes
    ) -> web.StreamResponse:
        self.failures_injected += 1
        if fault == "stall":
            await asyncio.sleep(STALL_S)  # cancelled when the client disconnects
        elif fault == "truncate":
            if request.transport is not None:
                request.transport.close()  # mid-body, before the chunked terminator
            return response
        elif fault == "error":  # what LiteLLM sends when its upstream fails mid-stream
            await response.write(error)
        else:
            await response.write(b"data: {not json\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body, problem, fault = await self._model_request(request, required="input")
        if problem is not None:
            return problem
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.embeddings_answered += 1
        dimension = 8
        change_after = self.settings.embedding_dim_change_after
        if change_after and self.embeddings_answered > change_after:  # a redeployed model
            dimension = SHRUNK_EMBEDDING_DIMENSION
        data = [
            {"object": "embedding", "index": i, "embedding": _embedding(str(text), dimension)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(str(text).split()) for text in texts)
        return await self._answer(
            request,
            fault,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    async def _model_request(
        self, request: web.Request, required: str
    ) -> tuple[dict[str, Any], web.StreamResponse | None, str | None]:
        """Validate the body, then apply latency, the deterministic failure schedule, and a
        chaos draw for the requests that schedule leaves alone. Returns the body, the answer
        that replaces the normal one (if any), and a chaos fault that shapes the normal one."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}, _error(400, "request body is not valid JSON", "invalid_request_error"), None
        if not isinstance(body, dict) or "model" not in body or required not in body:
            message = f"request needs 'model' and '{required}'"
            return {}, _error(400, message, "invalid_request_error"), None
        if body["model"] not in self.settings.models:
            message = f"The model '{body['model']}' does not exist"
            return {}, _error(404, message, "model_not_found"), None
        if self._capacity is not None:
            async with self._capacity:
                await asyncio.sleep(self.settings.latency_s)
        elif self.settings.latency_s:
            await asyncio.sleep(self.settings.latency_s)
        if self._in_burst(body["model"]):
            self.failures_injected += 1
            return body, _error(500, CLIENT_CLOSED, "server_error"), None
        if self._failures.fire():
            self.failures_injected += 1
            status = self.settings.failure_status
            message = f"mock failure (injected, status {status})"
            if status == 429:
                return body, throttled(self.settings, message), None
            return body, _error(status, message, "server_error"), None
        fault = self._chaos.draw(body["model"])
        if fault is None:
            return body, None, None
        self.chaos[fault] += 1
        stream = bool(body.get("stream"))
        return body, await replace_answer(request, fault, self.settings, stream), fault

    def _in_burst(self, model: str) -> bool:
        every = self.settings.burst_every_s
        if not every or model != self._burst_model:
            return False
        elapsed = time.monotonic() - self.started_at
        return elapsed >= every and elapsed % every < self.settings.burst_length_s


def _error(status: int, message: str, kind: str) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(payload, status=status)


def _embedding(text: str, dimension: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 6) for byte in digest[:dimension]]


class MockGateway:
    """The mock in a daemon thread with its own loop, for tests and ``--deployment-url=mock``."""

    def __init__(
        self, settings: MockSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._gateway = _Gateway(settings or MockSettings())
        self._host = host
        self._port = port
        self._url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def settings(self) -> MockSettings:
        return self._gateway.settings

    def stats(self) -> MockStats:
        """Counters as of now; the server thread only ever increments them."""
        return self._gateway.stats()

    def requests(self) -> list[dict[str, Any]]:
        """The request log (mock/request_log.py), oldest first."""
        return list(self._gateway.request_log.entries)

    def start(self) -> str:
        if self._thread is not None:
            return self._url
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="observatory-mock", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self._url

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        async with _listening(self._gateway, self._host, self._port) as port:
            self._url = f"http://{self._host}:{port}"
            ready.set()
            await self._stopped.wait()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def __enter__(self) -> MockGateway:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _listening:
    """Serve the app on host:port; counts accepted TCP connections.

    aiohttp has no public hook for accepted connections, so we hand ``loop.create_server`` a
    protocol factory that wraps the runner's public ``server`` factory: one call per accept.
    """

    def __init__(self, gateway: _Gateway, host: str, port: int) -> None:
        self._gateway = gateway
        self._host = host
        self._port = port
        # Cancel a handler when its client disconnects (a stalled stream must not outlive it),
        # and don't wait a minute for open streams on shutdown.
        self._runner = web.AppRunner(
            gateway.application(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> int:
        await self._runner.setup()
        protocol_factory = self._runner.server
        assert protocol_factory is not None

        def accept() -> asyncio.BaseProtocol:
            self._gateway.connections += 1
            return protocol_factory()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, self._host, self._port)
        self._gateway.started_at = time.monotonic()
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        await self._runner.cleanup()


async def serve(settings: MockSettings, host: str = "127.0.0.1", port: int = 4000) -> None:
    """Run the mock in the current loop until cancelled (``python -m pytest_observatory.mock``)."""
    async with _listening(_Gateway(settings), host, port) as bound:
        print(f"mock gateway listening on http://{host}:{bound}", flush=True)
        await asyncio.Event().wait()
