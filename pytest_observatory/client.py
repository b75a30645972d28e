"""The session client and the OpenAI-compatible helpers probes call.

One connection pool serves every probe of every check in the session: client-lifecycle bugs (a
pooled connection or cached client closed under a long-lived caller) only show under prolonged
reuse, which a fresh client per request would hide. The helpers send through that pool directly;
``observatory_client`` is an ``httpx.AsyncClient`` over the same pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
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
from .options import DEFAULT_HEALTH_PATH
from .streams import (
    ChatStream,
    MessagesStream,
    ResponsesStream,
    StreamError,
    StreamReader,
    error_message,
)
from .target import Target
from .tracing import REQUEST_ID_HEADER
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
# The Messages API requires max_tokens; this is the default the helpers send.
DEFAULT_MESSAGES_MAX_TOKENS = 256
_JSON_HEADERS = {"Content-Type": "application/json"}
_ANTHROPIC_HEADERS = {**_JSON_HEADERS, "anthropic-version": "2023-06-01"}

__all__ = ["AsyncDeployment", "StreamError", "SyncDeployment"]


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


class AsyncDeployment:
    """Helpers for ``async def`` checks: ``await deployment.chat(model, "Hello")``."""

    def __init__(
        self,
        pool: SessionPool,
        client: httpx.AsyncClient,
        loop: SessionLoop,
        target: Target,
        api_key: str | None,
        health_path: str = DEFAULT_HEALTH_PATH,
    ) -> None:
        self.client = client
        self.url = target.display
        self._pool = pool
        self._session = pool.session
        self._target = target
        self._base = target.api_base
        self._root = target.api_base.removesuffix("v1/")
        self._health_path = health_path
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
        return await self._answer("chat/completions", body, "chat.completion", "choices", validate)

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
        checker = self._stream_checker(validate, "chat")
        return await self._stream("chat/completions", body, ChatStream, checker=checker)

    async def responses(
        self, model: str, input: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        """POST /v1/responses (the OpenAI Responses API); returns the parsed ``response``."""
        body = {"model": model, "input": _input(input), **params}
        return await self._answer("responses", body, "response", "output", validate)

    async def stream_responses(
        self, model: str, input: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        """POST /v1/responses with ``stream: true``: text deltas timed as they arrive."""
        body = {"model": model, "input": _input(input), "stream": True, **params}
        checker = self._stream_checker(validate, "responses")
        return await self._stream("responses", body, ResponsesStream, checker=checker)

    async def messages(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        """POST /v1/messages (the Anthropic Messages API); ``max_tokens`` defaults to 256."""
        body = {"model": model, "messages": _messages(prompt), **_max_tokens(params)}
        return await self._answer(
            "messages", body, "message", "content", validate, _ANTHROPIC_HEADERS
        )

    async def _answer(
        self,
        path: str,
        body: JSONObject,
        kind: str,
        listed: str,
        validate: bool | None,
        headers: dict[str, str] = _JSON_HEADERS,
    ) -> JSONObject:
        """POST a generation request: the parsed answer, checked against the contract when
        asked, and at least carrying the list (``listed``) every caller reads."""
        reply = await self._request_json("POST", path, body, headers)
        self._check(validate, kind, reply)
        if not isinstance(reply, dict) or not isinstance(reply.get(listed), list):
            raise DeploymentError(f"{kind} answer without a '{listed}' list")
        return reply

    async def stream_messages(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        """POST /v1/messages with ``stream: true``: text deltas timed as they arrive."""
        body = {"model": model, "messages": _messages(prompt), "stream": True}
        body.update(_max_tokens(params))
        checker = self._stream_checker(validate, "messages")
        return await self._stream(
            "messages", body, MessagesStream, _ANTHROPIC_HEADERS, checker=checker
        )

    async def health(self, path: str | None = None) -> Any:
        """GET the gateway's health route (``--deployment-health-path``, at the root, not
        under /v1); returns the parsed JSON, or the text of a non-JSON answer. Non-2xx raises."""
        raw, _ = await self._send("GET", path or self._health_path, None, _JSON_HEADERS)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return raw.decode("utf-8", errors="replace")

    async def _stream(
        self,
        path: str,
        body: JSONObject,
        reader_type: type[StreamReader],
        headers: dict[str, str] = _JSON_HEADERS,
        checker: StreamContract | None = None,
    ) -> StreamResult:
        """POST a streamed request to /v1/``path`` and read it with its API's reader (and
        ``checker``, the API's contract, event by event)."""
        shown = _shown(path)
        self._require_session_loop()
        watch = Stopwatch()
        await self._pool.acquire(watch)
        try:
            with httpx_errors():
                async with self._session.post(
                    self._base + path,
                    params=self._query,
                    data=json.dumps(body),
                    headers={**headers, REQUEST_ID_HEADER: watch.request_id},
                    timeout=self._timeout,
                ) as response:
                    watch.headers_received(response)
                    if response.status >= 300:
                        raw = await response.read()
                        watch.finish(response.status, len(raw))
                        raise DeploymentHTTPError(
                            response.status, shown, _error_detail(raw, response)
                        )
                    if "Content-Type" in response.headers and (
                        response.content_type != EVENT_STREAM
                    ):
                        raw = await response.content.read(80)
                        watch.finish(response.status, len(raw))
                        raise DeploymentError(
                            f"stream from {shown} (HTTP {response.status}) is "
                            f"{response.content_type}, not {EVENT_STREAM}: {raw!r}"
                        )
                    reader = reader_type(watch, self._timeout_s, checker)
                    try:
                        await reader.read(response)
                    finally:
                        watch.finish(response.status, reader.bytes_in)
        finally:
            self._pool.release()
        observer = current_observer.get()
        if observer is not None:
            observer.tokens_used(str(body["model"]), reader.usage)
        result = reader.result()
        if observer is not None:
            observer.stream_done(result)
        return result

    async def models(self, *, validate: bool | None = None) -> list[str]:
        """GET /v1/models; returns the model ids."""
        reply = await self.request_json("GET", "models")
        self._check(validate, "models", reply)
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
        inputs = 1 if isinstance(text, str) else len(text)
        self._check(validate, "embeddings", reply, inputs)
        if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
            raise DeploymentError("embeddings answer without a 'data' list")
        return reply

    async def request_json(self, method: str, path: str, body: JSONObject | None = None) -> Any:
        """Send, require 2xx and valid JSON; anything else raises a classified error."""
        return await self._request_json(method, path, body, _JSON_HEADERS)

    async def _request_json(
        self, method: str, path: str, body: JSONObject | None, headers: dict[str, str]
    ) -> Any:
        raw, response = await self._send(method, path, body, headers)
        reply = _json(raw, path, response)
        observer = current_observer.get()
        if observer is not None and isinstance(reply, dict) and "usage" in reply:
            # Every helper answers through here (and a probe's own request_json): the cost.
            model = body.get("model") if body else None
            observer.tokens_used(None if model is None else str(model), reply["usage"])
        return reply

    async def _send(
        self, method: str, path: str, body: JSONObject | None, headers: dict[str, str]
    ) -> tuple[bytes, aiohttp.ClientResponse]:
        """Send to /v1/``path`` (or, for a path starting with ``/``, to that path at the
        gateway's root); the body of a 2xx answer and its (released) response, else a
        classified error."""
        self._require_session_loop()
        url = self._root + path[1:] if path.startswith("/") else self._base + path
        watch = Stopwatch()
        await self._pool.acquire(watch)
        try:
            with httpx_errors():
                async with self._session.request(
                    method,
                    url,
                    params=self._query,
                    data=None if body is None else json.dumps(body),
                    headers={**headers, REQUEST_ID_HEADER: watch.request_id},
                    timeout=self._deadline,
                ) as response:
                    watch.headers_received(response)
                    raw = await response.read()
        finally:
            self._pool.release()
        watch.finish(response.status, len(raw))
        if response.status >= 300:
            raise DeploymentHTTPError(response.status, _shown(path), _error_detail(raw, response))
        return raw, response

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

    def _check(
        self, validate: bool | None, kind: str, reply: Any, inputs: int | None = None
    ) -> None:
        if self._validate if validate is None else validate:
            check_contract(kind, reply, inputs=inputs)

    def _stream_checker(self, validate: bool | None, api: str) -> StreamContract | None:
        """Made before the request is sent: its schemas' loading is timed as no token."""
        return stream_contract(api) if (self._validate if validate is None else validate) else None

    def _require_session_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop.loop:
            raise RuntimeError(
                "the deployment helpers run on the observatory session loop: use them in "
                "observatory checks (or the blocking helpers a plain 'def' check receives)"
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

    def responses(
        self, model: str, input: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        return self._loop.run(self._async.responses(model, input, validate=validate, **params))

    def stream_responses(
        self, model: str, input: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        call = self._async.stream_responses(model, input, validate=validate, **params)
        return self._loop.run(call)

    def messages(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> JSONObject:
        return self._loop.run(self._async.messages(model, prompt, validate=validate, **params))

    def stream_messages(
        self, model: str, prompt: str | Messages, *, validate: bool | None = None, **params: Any
    ) -> StreamResult:
        call = self._async.stream_messages(model, prompt, validate=validate, **params)
        return self._loop.run(call)

    def health(self, path: str | None = None) -> Any:
        return self._loop.run(self._async.health(path))


def _messages(prompt: str | Messages) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def _input(input: str | Messages) -> str | list[dict[str, Any]]:
    return input if isinstance(input, str) else [dict(item) for item in input]


def _max_tokens(params: dict[str, Any]) -> dict[str, Any]:
    return {"max_tokens": DEFAULT_MESSAGES_MAX_TOKENS, **params}


def _json(raw: bytes, path: str, response: aiohttp.ClientResponse) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DeploymentError(
            f"invalid JSON from {_shown(path)} (HTTP {response.status}, "
            f"{response.content_type}): {raw[:80]!r}"
        ) from None


def _shown(path: str) -> str:
    """A path as messages show it: /v1/``path``, or a root path as it is."""
    return path if path.startswith("/") else "/v1/" + path


def _error_detail(raw: bytes, response: aiohttp.ClientResponse) -> str:
    """The gateway's own error message (OpenAI shape) or the start of the body."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace").strip()[:160] or (response.reason or "")
    error = payload.get("error") if isinstance(payload, dict) else None
    return error_message(error) if error else json.dumps(payload)[:160]
