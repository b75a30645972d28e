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
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .settings import MockSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True)
class MockStats:
    requests: int = 0
    connections: int = 0
    failures_injected: int = 0


class _Gateway:
    """Request handlers and counters; lives on the server's event loop."""

    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self.stats = MockStats()
        self._faultable = 0  # chat + embeddings requests seen, for deterministic failures

    def count(self, **increments: int) -> None:
        current = asdict(self.stats)
        self.stats = MockStats(**{k: current[k] + increments.get(k, 0) for k in current})

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for prefix in ("/v1", ""):
            app.router.add_get(f"{prefix}/models", self.models)
            app.router.add_post(f"{prefix}/chat/completions", self.chat)
            app.router.add_post(f"{prefix}/embeddings", self.embeddings)
        app.router.add_get("/health", self.health)
        app.router.add_get("/mock/stats", self.stats_endpoint)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/mock/stats":
            return await handler(request)
        self.count(requests=1)
        expected = self.settings.api_key
        if expected and request.headers.get("Authorization") != f"Bearer {expected}":
            return _error(401, "invalid api key", "authentication_error")
        return await handler(request)

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def stats_endpoint(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(asdict(self.stats))

    async def models(self, request: web.Request) -> web.StreamResponse:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "mock"}
            for m in self.settings.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, problem = await self._model_request(request, required="messages")
        if problem is not None:
            return problem
        max_tokens = int(body.get("max_tokens") or DEFAULT_MAX_TOKENS)
        words = [f"tok{i}" for i in range(1, max_tokens + 1)]
        completion_id = f"chatcmpl-mock-{self.stats.requests}"
        usage = {
            "prompt_tokens": _prompt_tokens(body["messages"]),
            "completion_tokens": len(words),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(
                request, completion_id, body["model"], words, usage, include_usage
            )
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "length",
                    }
                ],
                "usage": usage,
            }
        )

    async def _stream(
        self,
        request: web.Request,
        completion_id: str,
        model: str,
        words: list[str],
        usage: dict[str, int],
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": (" " if i else "") + w}) for i, w in enumerate(words)]
        events.append(chunk({}, "length"))
        if include_usage:
            events.append({**chunk({}), "choices": [], "usage": usage})
        for event in events:
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body, problem = await self._model_request(request, required="input")
        if problem is not None:
            return problem
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": _embedding(str(text))}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(str(text).split()) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _model_request(
        self, request: web.Request, required: str
    ) -> tuple[dict[str, Any], web.StreamResponse | None]:
        """Validate the body, then apply latency and the deterministic failure schedule."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}, _error(400, "request body is not valid JSON", "invalid_request_error")
        if not isinstance(body, dict) or "model" not in body or required not in body:
            return {}, _error(
                400, f"request needs 'model' and '{required}'", "invalid_request_error"
            )
        if body["model"] not in self.settings.models:
            return {}, _error(404, f"The model '{body['model']}' does not exist", "model_not_found")
        if self.settings.latency_s:
            await asyncio.sleep(self.settings.latency_s)
        n, rate = self._faultable, self.settings.failure_rate
        self._faultable += 1
        if math.floor((n + 1) * rate) > math.floor(n * rate):
            self.count(failures_injected=1)
            status = self.settings.failure_status
            return body, _error(
                status,
                f"mock failure (injected, status {status})",
                "rate_limit_error" if status == 429 else "server_error",
                headers={"Retry-After": "1"} if status == 429 else None,
            )
        return body, None


def _error(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(payload, status=status, headers=headers)


def _prompt_tokens(messages: object) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))


def _embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 6) for byte in digest[:8]]


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
        return self._gateway.stats  # an immutable snapshot, replaced atomically

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
        self._runner = web.AppRunner(gateway.application(), access_log=None)
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> int:
        await self._runner.setup()
        protocol_factory = self._runner.server
        assert protocol_factory is not None

        def accept() -> asyncio.BaseProtocol:
            self._gateway.count(connections=1)
            return protocol_factory()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, self._host, self._port)
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
