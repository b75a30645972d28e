"""Session resources, created on first use and closed at session end: the loop thread, the
embedded mock gateway (for ``--deployment-url=mock``), the shared client and the helpers.

httpx, aiohttp and the mock server are imported here on first use, not when pytest loads the
plugin: a repository's plain unit-test run must not pay for them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import pytest

from .loop import SessionLoop
from .options import Settings
from .redact import redact_url, scrub

if TYPE_CHECKING:
    import aiohttp
    import httpx

    from .client import AsyncDeployment, SyncDeployment
    from .mock.server import MockGateway


class DeploymentRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mock: MockGateway | None = None

    @cached_property
    def loop(self) -> SessionLoop:
        return SessionLoop()

    @cached_property
    def base_url(self) -> str:
        url, mock = self.settings.deployment_url, self.settings.mock
        if url is None:
            pytest.skip("no --deployment-url")
        if mock is None:
            return url
        from .mock.server import MockGateway

        self._mock = MockGateway(mock)
        return self._mock.start()

    @property
    def display_url(self) -> str:
        if self.settings.uses_mock:
            return f"mock ({self.base_url})"
        return redact_url(self.base_url)

    @cached_property
    def pool(self) -> aiohttp.ClientSession:
        """The one connection pool; created on the session loop, which it belongs to."""
        from .client import DEFAULT_TIMEOUT_S
        from .transport import open_session

        key = self.settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}

        async def open_pool() -> aiohttp.ClientSession:
            return open_session(headers, DEFAULT_TIMEOUT_S, self.settings.max_connections)

        return self.loop.run(open_pool())

    @cached_property
    def client(self) -> httpx.AsyncClient:
        from .client import build_httpx_client

        return build_httpx_client(self.base_url, self.pool)

    @cached_property
    def async_deployment(self) -> AsyncDeployment:
        from .client import AsyncDeployment

        return AsyncDeployment(
            self.pool, self.client, self.loop.loop, self.base_url, self.display_url
        )

    @cached_property
    def sync_deployment(self) -> SyncDeployment:
        from .client import SyncDeployment

        return SyncDeployment(self.async_deployment, self.loop)

    def set_request_timeout(self, seconds: float) -> None:
        """Checks run one after another in a process, so each sets the shared timeout."""
        if "async_deployment" in self.__dict__:
            self.async_deployment.set_request_timeout(seconds)
        elif "client" in self.__dict__:
            from .client import set_request_timeout

            set_request_timeout(self.client, seconds)

    def redact(self, text: str) -> str:
        return scrub(text, (self.settings.api_key,))

    def close(self) -> None:
        """Close the client on the loop that owns its connections, then the loop and the mock."""
        if "loop" in self.__dict__:
            if "client" in self.__dict__:
                self.loop.run(self.client.aclose())
            if "pool" in self.__dict__:
                self.loop.run(self.pool.close())
            self.loop.close()
        if self._mock is not None:
            self._mock.stop()
