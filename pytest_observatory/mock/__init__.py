"""The embedded mock gateway: a real OpenAI-compatible HTTP server on 127.0.0.1."""

from .server import MockGateway, MockSettings, MockStats, serve

__all__ = ["MockGateway", "MockSettings", "MockStats", "serve"]
