"""The session client and the OpenAI-compatible helpers probes call.

One connection pool serves every probe of every check in the session: client-lifecycle bugs (a
pooled connection or cached client closed under a long-lived caller) only show under prolonged
reuse, which a fresh client per request would hide. The helpers send through that pool directly;
``observatory_client`` is an ``httpx.AsyncClient`` over the same pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncGenerator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx

# Names, not ``from . import contract``: that reads the package's attribute, which outlives a
# re-import of the module (pytester's in-process runs drop the modules they imported).
from .contract import StreamContract, stream_contract
from .contract import validate as check_contract
from .errors import DeploymentError, DeploymentHTTPError
from .loop import SessionLoop
from .observe import StreamResult, current_observer
from .stats import NS_PER_MS
from .target import Target
from .transport import (
    CONNECT_TIMEOUT_S,
    EVENT_STREAM,
    AiohttpTransport,
    SessionPool,
    Stopwatch,
    SyncTransport,
    aiohttp_timeout,
    httpx_errors,
)

if TYPE_CHECKING:
    import openai

Messages = Sequence[dict[str, Any]]
JSONObject = dict[str, Any]

DEFAULT_TIMEOUT_S = 60.0
_JSON_HEADERS = {"Content-Type": "application/json"}


def build_httpx_client(target: Target, pool: SessionPool) -> httpx.AsyncClient:
    """The user-facing client; the session's credentials live only in the pool's default
    headers, and the URL's query goes with every request."""
    return httpx.AsyncClient(
        base_url=target.api_base,
        params=target.query,
        transport=AiohttpTransport(pool),
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_S),
    )


def set_request_timeout(client: httpx.AsyncClient, seconds: float) -> None:
    client.timeout = httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))


class StreamError(DeploymentError):
    """A stream that stalled, ended early or carried malformed data."""


class AsyncDeployment:
    """Helpers for ``async def`` checks: ``await deployment.chat(model, "Hello")``."""

    def __init__(
        self,
        pool: SessionPool,
        client: httpx.AsyncClient,
        loop: SessionLoop,
        target: Target,
        api_key: str | None,
    ) -> None:
        self.client = client
        self.url = target.display
        self._pool = pool
        self._session = pool.session
        self._target = target
        self._base = target.api_base
        self._query = target.query or None
        self._api_key = api_key
        self._loop = loop
        self._timeout_s = DEFAULT_TIMEOUT_S
        self._timeout = aiohttp_timeout(DEFAULT_TIMEOUT_S)
        self._deadline = aiohttp_timeout(DEFAULT_TIMEOUT_S, whole_request=True)
        self._validate = False

    def set_validation(self, on: bool) -> None:
        """The check's ``validate`` marker argument: the helpers' default while it runs."""
        self._validate = on

    def set_request_timeout(self, seconds: float) -> None:
        """Checks run one after another in a process, so each sets the shared timeout."""
        self._timeout_s = seconds
        self._timeout = aiohttp_timeout(seconds)
        self._deadline = aiohttp_timeout(seconds, whole_request=True)
        set_request_timeout(self.client, seconds)

    async def chat(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        """POST /v1/chat/completions; returns the parsed completion. ``validate``: check it
        against the API's contract (None: the check's ``validate`` marker argument)."""
        body = {"model": model, "messages": _messages(prompt), **params}
        reply = await self.request_json("POST", "chat/completions", body)
        if self._validating(validate):
            check_contract("chat.completion", reply)
        if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
            raise DeploymentError("chat completion without a 'choices' list")
        return reply

    async def stream_chat(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        """POST /v1/chat/completions with ``stream: true``, parsed as the chunks arrive (and
        each checked against the contract as it arrives, with ``validate``)."""
        body = {
            "model": model,
            "messages": _messages(prompt),
            "stream": True,
            "stream_options": {"include_usage": True},
            **params,
        }
        self._require_session_loop()
        checker = stream_contract("chat") if self._validating(validate) else None
        watch = Stopwatch()
        await self._pool.acquire(watch)
        try:
            with httpx_errors():
                async with self._session.post(
                    self._base + "chat/completions",
                    params=self._query,
                    data=json.dumps(body),
                    headers=_JSON_HEADERS,
                    timeout=self._timeout,
                ) as response:
                    watch.headers_received()
                    if response.status >= 300:
                        raw = await response.read()
                        watch.finish(response.status, len(raw))
                        raise DeploymentHTTPError(
                            response.status, "/v1/chat/completions", _error_detail(raw, response)
                        )
                    if "Content-Type" in response.headers and (
                        response.content_type != EVENT_STREAM
                    ):
                        raw = await response.content.read(80)
                        watch.finish(response.status, len(raw))
                        raise DeploymentError(
                            f"stream from /v1/chat/completions (HTTP {response.status}) is "
                            f"{response.content_type}, not {EVENT_STREAM}: {raw!r}"
                        )
                    reader = _StreamReader(watch, self._timeout_s, checker)
                    try:
                        await reader.read(response)
                    finally:
                        watch.finish(response.status, reader.bytes_in)
        finally:
            self._pool.release()
        result = reader.result()
        observer = current_observer.get()
        if observer is not None:
            observer.stream_done(result)
        return result

    async def models(self, *, validate: bool | None = None) -> list[str]:
        """GET /v1/models; returns the model ids."""
        reply = await self.request_json("GET", "models")
        if self._validating(validate):
            check_contract("models", reply)
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise DeploymentError("model list without a 'data' list")
        return [str(entry.get("id")) for entry in data if isinstance(entry, dict)]

    async def embeddings(
        self, model: str, input: str | Sequence[str], *, validate: bool | None = None
    ) -> JSONObject:
        """POST /v1/embeddings; returns the parsed answer."""
        text = input if isinstance(input, str) else list(input)
        reply = await self.request_json("POST", "embeddings", {"model": model, "input": text})
        if self._validating(validate):
            check_contract("embeddings", reply, inputs=1 if isinstance(text, str) else len(text))
        if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
            raise DeploymentError("embeddings answer without a 'data' list")
        return reply

    async def request_json(self, method: str, path: str, body: JSONObject | None = None) -> Any:
        """Send, require 2xx and valid JSON; anything else raises a classified error."""
        self._require_session_loop()
        watch = Stopwatch()
        await self._pool.acquire(watch)
        try:
            with httpx_errors():
                async with self._session.request(
                    method,
                    self._base + path,
                    params=self._query,
                    data=None if body is None else json.dumps(body),
                    headers=_JSON_HEADERS,
                    timeout=self._deadline,
                ) as response:
                    watch.headers_received()
                    raw = await response.read()
        finally:
            self._pool.release()
        watch.finish(response.status, len(raw))
        if response.status >= 300:
            raise DeploymentHTTPError(response.status, "/v1/" + path, _error_detail(raw, response))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DeploymentError(
                f"invalid JSON from /v1/{path} (HTTP {response.status}, "
                f"{response.content_type}): {raw[:80]!r}"
            ) from None

    def openai(self, **options: Any) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` on the session pool: the deployment's /v1 base, its key
        (or the URL's basic auth), its query, and ``max_retries=0``: the SDK's retries would hide
        the very failures a check counts. ``options`` go to the constructor and win."""
        import openai

        return openai.AsyncOpenAI(**self._openai_options(self.client, options))

    def _openai_options(self, http_client: object, options: dict[str, Any]) -> dict[str, Any]:
        auth = self._target.auth_header(self._api_key)
        return {
            "base_url": self._base,
            # The SDK insists on a key; with none it sends this placeholder, which the pool's
            # own Authorization header (basic auth) replaces below.
            "api_key": self._api_key or "no-key",
            "default_headers": {"Authorization": auth} if auth and not self._api_key else None,
            "max_retries": 0,
            "timeout": self.client.timeout,  # the check's request_timeout, not the SDK's 10 min
            "http_client": http_client,
            **options,
        }

    def _validating(self, validate: bool | None) -> bool:
        return self._validate if validate is None else validate

    def _require_session_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop.loop:
            raise RuntimeError(
                "the deployment helpers run on the observatory session loop: use them in "
                "observatory checks (or the blocking helpers a plain 'def' check receives)"
            )


class _StreamReader:
    """Incremental SSE parsing of a chat completion stream, timing each content chunk."""

    def __init__(
        self, watch: Stopwatch, timeout_s: float, checker: StreamContract | None = None
    ) -> None:
        self._watch = watch
        self._timeout_s = timeout_s
        self._contract = checker
        self._text: list[str] = []
        self._content_times: list[int] = []
        self._data: list[str] = []
        self.bytes_in = 0
        self.chunks = 0
        self.done = False
        self.finish_reason: str | None = None
        self.usage: JSONObject | None = None
        self.ended_ns = 0

    async def read(self, response: aiohttp.ClientResponse) -> None:
        """Lines are split here rather than by aiohttp's line iterator, which gives up on a line
        over 512 KiB (``LineTooLong``): one event may legitimately carry a whole answer."""
        try:
            async with contextlib.aclosing(self._lines(response)) as lines:
                async for line in lines:
                    if self._feed(line):
                        break
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):  # not builtin on 3.10
            raise StreamError(
                f"stream stalled: no data for {self._timeout_s:g}s after {self.chunks} chunks",
                "stream_stalled",
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise StreamError(
                f"stream cut off after {self.chunks} chunks: {type(exc).__name__}",
                "stream_truncated",
            ) from None
        if self._contract is not None:
            self._contract.end(self.done)  # a clean end without [DONE] breaks the contract
        if not self.done:
            raise StreamError(
                f"stream ended without [DONE] after {self.chunks} chunks", "stream_truncated"
            )
        self.ended_ns = time.perf_counter_ns()

    async def _lines(self, response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
        partial: list[bytes] = []  # pieces of a line not ended yet: joined once, not re-copied
        async for chunk in response.content.iter_any():
            self.bytes_in += len(chunk)
            *ended, rest = chunk.split(b"\n")
            for piece in ended:
                partial.append(piece)
                line, partial = b"".join(partial), []
                yield line.decode("utf-8", errors="replace").rstrip("\r")
            if rest:
                partial.append(rest)

    def _feed(self, line: str) -> bool:
        """One SSE line; True once ``[DONE]`` arrived."""
        if line:
            if line.startswith(":"):
                return False  # comment / keep-alive
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value[1:] if value.startswith(" ") else value)
            elif field not in ("event", "id", "retry"):
                raise StreamError(f"bad SSE line: {line[:60]!r}", "bad_sse")
            return False
        if not self._data:
            return False
        data, self._data = "\n".join(self._data), []
        if data == "[DONE]":
            self.done = True
            return True
        self._chunk(data)
        return False

    def _chunk(self, data: str) -> None:
        try:
            chunk = json.loads(data)
            choices = chunk.get("choices") or []
        except (json.JSONDecodeError, AttributeError):
            raise StreamError(f"bad SSE data: {data[:60]!r}", "bad_sse") from None
        self.chunks += 1
        if chunk.get("error") and not choices:
            # A gateway whose upstream failed mid-stream says so in-band (LiteLLM, vLLM), then
            # ends the stream: without this, a [DONE] after it would pass for a good answer.
            raise StreamError(
                f"stream ended by an error event after {self.chunks - 1} chunks: "
                f"{_error_message(chunk['error'])}",
                "stream_truncated",
            )
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self._text.append(content)
                self._content_times.append(time.perf_counter_ns())
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if self._contract is not None:  # after the timing: checking costs no token its time
            self._contract.event(chunk)

    def result(self) -> StreamResult:
        times = self._content_times
        if not times:
            raise StreamError("stream carried no content", "bad_response")
        started = self._watch.sent_ns  # queueing is the client's
        ttft_ns = times[0] - started
        total_ns = self.ended_ns - started
        gaps = tuple((b - a) / NS_PER_MS for a, b in itertools.pairwise(times))
        usage_tokens = (self.usage or {}).get("completion_tokens")
        if isinstance(usage_tokens, int) and usage_tokens > 0:
            tokens, source = usage_tokens, "usage"
        else:
            tokens, source = len(times), "chunks"
        return StreamResult(
            text="".join(self._text),
            finish_reason=self.finish_reason,
            usage=self.usage,
            ttft_ms=ttft_ns / NS_PER_MS,
            itl_ms=gaps,
            tpot_ms=(total_ns - ttft_ns) / NS_PER_MS / (tokens - 1) if tokens > 1 else None,
            output_tokens=tokens,
            tokens_source=source,
            tokens_per_s=tokens / (total_ns / 1e9) if total_ns > 0 else 0.0,
            total_ms=total_ns / NS_PER_MS,
        )


class SyncDeployment:
    """The same helpers for plain ``def`` checks, which run in worker threads: calls block
    while the request runs on the session loop, so the pool is still the one shared pool."""

    def __init__(self, deployment: AsyncDeployment, loop: SessionLoop, pool: SessionPool):
        self._async = deployment
        self._loop = loop
        self._pool = pool
        self.client = deployment.client
        self.url = deployment.url

    def openai(self, **options: Any) -> openai.OpenAI:
        """A blocking ``openai.OpenAI`` on the session pool (see ``AsyncDeployment.openai``)."""
        import openai

        client = self._sync_client
        return openai.OpenAI(**self._async._openai_options(client, options))

    @cached_property
    def _sync_client(self) -> httpx.Client:
        client = self.client
        return httpx.Client(
            base_url=client.base_url,
            params=client.params,
            timeout=client.timeout,
            transport=SyncTransport(AiohttpTransport(self._pool), self._loop),
        )

    def chat(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        return self._loop.run(self._async.chat(model, prompt, validate=validate, **params))

    def stream_chat(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        return self._loop.run(self._async.stream_chat(model, prompt, validate=validate, **params))

    def models(self, *, validate: bool | None = None) -> list[str]:
        return self._loop.run(self._async.models(validate=validate))

    def embeddings(
        self, model: str, input: str | Sequence[str], *, validate: bool | None = None
    ) -> JSONObject:
        return self._loop.run(self._async.embeddings(model, input, validate=validate))

    def request_json(self, method: str, path: str, body: JSONObject | None = None) -> Any:
        return self._loop.run(self._async.request_json(method, path, body))


def _messages(prompt: str | Messages) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def _error_detail(raw: bytes, response: aiohttp.ClientResponse) -> str:
    """The gateway's own error message (OpenAI shape) or the start of the body."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace").strip()[:160] or (response.reason or "")
    error = payload.get("error") if isinstance(payload, dict) else None
    return _error_message(error) if error else json.dumps(payload)[:160]


def _error_message(error: object) -> str:
    """The message of an OpenAI-shaped ``error`` member (an object or a plain string)."""
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return error if isinstance(error, str) else json.dumps(error)[:160]
