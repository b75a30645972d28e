"""The session client and the OpenAI-compatible helpers probes call.

One ``httpx.AsyncClient`` serves every probe of every check in the session: client-lifecycle bugs
(a pooled connection or cached client closed under a long-lived caller) only show under prolonged
reuse, which is exactly what a fresh client per request would hide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx

from .errors import DeploymentError, DeploymentHTTPError
from .loop import SessionLoop

Messages = Sequence[dict[str, Any]]
JSONObject = dict[str, Any]

DEFAULT_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


def api_base_url(url: str) -> str:
    """Accept the gateway root or its /v1 base; helpers then use paths relative to /v1."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def build_client(url: str, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=api_base_url(url) + "/",
        headers=headers,
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        # Concurrency, not the pool, must bound connections: a capped pool turns client-side
        # queueing into "gateway latency"; a small keep-alive cap churns connections.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )


def set_request_timeout(client: httpx.AsyncClient, seconds: float) -> None:
    """Checks run one after another in a process, so each sets the shared client's timeout."""
    client.timeout = httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))


class AsyncDeployment:
    """Helpers for ``async def`` checks: ``await deployment.chat(model, "Hello")``."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, url: str):
        self.client = client
        self.url = url
        self._loop = loop

    async def chat(self, model: str, prompt: str | Messages, **params: Any) -> JSONObject:
        """POST /v1/chat/completions; returns the parsed completion."""
        body = {"model": model, "messages": _messages(prompt), **params}
        reply = await self.request_json("POST", "chat/completions", body)
        if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
            raise DeploymentError("chat completion without a 'choices' list")
        return reply

    async def models(self) -> list[str]:
        """GET /v1/models; returns the model ids."""
        reply = await self.request_json("GET", "models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise DeploymentError("model list without a 'data' list")
        return [str(entry.get("id")) for entry in data if isinstance(entry, dict)]

    async def embeddings(self, model: str, input: str | Sequence[str]) -> JSONObject:
        """POST /v1/embeddings; returns the parsed answer."""
        text = input if isinstance(input, str) else list(input)
        reply = await self.request_json("POST", "embeddings", {"model": model, "input": text})
        if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
            raise DeploymentError("embeddings answer without a 'data' list")
        return reply

    async def request_json(self, method: str, path: str, body: JSONObject | None = None) -> Any:
        """Send, require 2xx and valid JSON; anything else raises a classified DeploymentError."""
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "the deployment helpers run on the observatory session loop: use them in "
                "observatory checks (or the blocking helpers a plain 'def' check receives)"
            )
        response = await self.client.request(method, path, json=body)
        if not response.is_success:
            raise DeploymentHTTPError(response.status_code, "/v1/" + path, _error_detail(response))
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DeploymentError(
                f"invalid JSON from /v1/{path} (HTTP {response.status_code}): "
                f"{response.text[:80]!r}"
            ) from None


class SyncDeployment:
    """The same helpers for plain ``def`` checks, which run in worker threads: calls block
    while the request runs on the session loop, so the client is still the one shared client."""

    def __init__(self, deployment: AsyncDeployment, loop: SessionLoop):
        self._async = deployment
        self._loop = loop
        self.client = deployment.client
        self.url = deployment.url

    def chat(self, model: str, prompt: str | Messages, **params: Any) -> JSONObject:
        return self._loop.run(self._async.chat(model, prompt, **params))

    def models(self) -> list[str]:
        return self._loop.run(self._async.models())

    def embeddings(self, model: str, input: str | Sequence[str]) -> JSONObject:
        return self._loop.run(self._async.embeddings(model, input))

    def request_json(self, method: str, path: str, body: JSONObject | None = None) -> Any:
        return self._loop.run(self._async.request_json(method, path, body))


def _messages(prompt: str | Messages) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def _error_detail(response: httpx.Response) -> str:
    """The gateway's own error message (OpenAI shape) or the start of the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:160] or response.reason_phrase
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return json.dumps(payload)[:160]
