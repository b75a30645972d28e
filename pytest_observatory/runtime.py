"""Session resources, created on first use and closed at session end: the loop thread, the
embedded mock gateway (for ``--deployment-url=mock``), the shared client and the helpers.

httpx, aiohttp and the mock server are imported here on first use, not when pytest loads the
plugin: a repository's plain unit-test run must not pay for them.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

import pytest

from .options import Settings
from .redact import scrub
from .target import Target, parse_target

if TYPE_CHECKING:
    import httpx

    from .client import AsyncDeployment, SyncDeployment
    from .loop import SessionLoop
    from .mock.server import MockGateway
    from .transport import SessionPool


class DeploymentRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._secrets = settings.secrets  # derived once, not for every failure
        self._mock: MockGateway | None = None

    @cached_property
    def loop(self) -> SessionLoop:
        from .loop import SessionLoop  # asyncio loads with the first check, not with pytest

        return SessionLoop()

    @cached_property
    def target(self) -> Target:
        """The deployment's parts; for ``mock``, the embedded gateway is started here."""
        settings = self.settings
        if settings.deployment_url is None:
            pytest.skip("no --deployment-url")
        if settings.target is not None:
            return settings.target
        assert settings.mock is not None
        from .mock.server import MockGateway

        self._mock = MockGateway(settings.mock)
        url = self._mock.start()
        return replace(parse_target(url), display=f"mock ({url})")

    @cached_property
    def pool(self) -> SessionPool:
        """The one connection pool; created on the session loop, which it belongs to."""
        from .client import DEFAULT_TIMEOUT_S
        from .transport import open_pool

        auth = self.target.auth_header(self.settings.api_key)
        headers = {"Authorization": auth} if auth else {}

        async def opened() -> SessionPool:
            return open_pool(headers, DEFAULT_TIMEOUT_S, self.settings.max_connections)

        return self.loop.run(opened())

    @cached_property
    def client(self) -> httpx.AsyncClient:
        from .client import build_httpx_client

        return build_httpx_client(self.target, self.pool)

    @cached_property
    def async_deployment(self) -> AsyncDeployment:
        from .client import AsyncDeployment

        settings = self.settings
        return AsyncDeployment(
            self.pool, self.client, self.loop, self.target, settings.api_key, settings.health_path
        )

    @cached_property
    def sync_deployment(self) -> SyncDeployment:
        from .client import SyncDeployment

        return SyncDeployment(self.async_deployment, self.loop, self.pool)

    def set_request_timeout(self, seconds: float) -> None:
        """Checks run one after another in a process, so each sets the shared timeout."""
        if "async_deployment" in self.__dict__:
            self.async_deployment.set_request_timeout(seconds)
        elif "client" in self.__dict__:
            from .client import set_request_timeout

            set_request_timeout(self.client, seconds)

    def redact(self, text: str) -> str:
        """Every error message a check stores passes here, whatever raised it."""
        return scrub(text, self._secrets)

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
