"""The embedded mock gateway: a real OpenAI-compatible HTTP server on 127.0.0.1.

The server (and aiohttp) is imported on first use, so the plugin costs nothing at collection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import DEFAULT_MODELS, MockSettings

if TYPE_CHECKING:
    from .server import MockGateway, MockStats, serve

__all__ = ["DEFAULT_MODELS", "MockGateway", "MockSettings", "MockStats", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("MockGateway", "MockStats", "serve"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
