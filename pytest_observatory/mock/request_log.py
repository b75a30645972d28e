"""The mock's record of the requests it answered, so tests can match what the client says it
sent (failure samples' ``X-Request-ID``) with what the gateway really received.

Each answer carries an ``x-litellm-call-id``, like LiteLLM's proxy, so the client has a
gateway-side id to report too. The log is bounded: a long ``--deployment-url=mock`` run keeps
the latest LOG_SIZE entries.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from aiohttp import web

LOG_SIZE = 10_000
CALL_ID_HEADER = "x-litellm-call-id"


class RequestLog:
    def __init__(self) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._call_ids = itertools.count(1)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Before the headers go out, for every answer: errors and streams alike."""
        if request.path.startswith("/mock/"):
            return
        call_id = f"mock-call-{next(self._call_ids)}"
        response.headers[CALL_ID_HEADER] = call_id
        self.entries.append(
            {
                "request_id": request.headers.get("X-Request-ID"),
                "call_id": call_id,
                "method": request.method,
                "path": request.path,
                "status": response.status,
            }
        )

    async def endpoint(self, request: web.Request) -> web.StreamResponse:
        """GET /mock/requests: the log, oldest first."""
        return web.json_response(list(self.entries))
