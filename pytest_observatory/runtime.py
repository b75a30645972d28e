"""Session resources, created on first use and closed at session end: the loop thread, the
embedded mock gateway (for ``--deployment-url=mock``), the shared client and the helpers."""

from __future__ import annotations

from functools import cached_property
from urllib.parse import urlsplit

import httpx
import pytest

from .client import AsyncDeployment, SyncDeployment, build_client
from .loop import SessionLoop
from .mock import MockGateway, MockSettings
from .options import Settings
from .redact import redact_url, scrub


class DeploymentRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mock: MockGateway | None = None

    @cached_property
    def loop(self) -> SessionLoop:
        return SessionLoop()

    @cached_property
    def base_url(self) -> str:
        url = self.settings.deployment_url
        if url is None:
            pytest.skip("no --deployment-url")
        if not self.settings.uses_mock:
            return url
        try:
            mock_settings = MockSettings.from_query(urlsplit(url).query)
        except ValueError as exc:
            raise pytest.UsageError(f"--deployment-url={url!r}: {exc}") from None
        self._mock = MockGateway(mock_settings)
        return self._mock.start()

    @property
    def display_url(self) -> str:
        if self.settings.uses_mock:
            return f"mock ({self.base_url})"
        return redact_url(self.base_url)

    @cached_property
    def client(self) -> httpx.AsyncClient:
        return build_client(self.base_url, self.settings.api_key)

    @cached_property
    def async_deployment(self) -> AsyncDeployment:
        return AsyncDeployment(self.client, self.loop.loop, self.display_url)

    @cached_property
    def sync_deployment(self) -> SyncDeployment:
        return SyncDeployment(self.async_deployment, self.loop)

    def redact(self, text: str) -> str:
        return scrub(text, (self.settings.api_key,))

    def close(self) -> None:
        """Close the client on the loop that owns its connections, then the loop and the mock."""
        if "loop" in self.__dict__:
            if "client" in self.__dict__:
                self.loop.run(self.client.aclose())
            self.loop.close()
        if self._mock is not None:
            self._mock.stop()
