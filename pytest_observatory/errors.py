"""Classify whatever a probe raises into a category and a short, groupable message.

Faults of the deployment are data: every exception becomes one counted line in the report, so
messages are one line, bounded in length, and carry the category so a reader sees at a glance
whether the gateway timed out, refused, answered 5xx or sent nonsense.
"""

from __future__ import annotations

import asyncio

import pytest

MAX_MESSAGE_CHARS = 240


class DeploymentError(Exception):
    """A deployment answer that is not what an OpenAI-compatible API promises."""

    def __init__(self, message: str, category: str = "bad_response") -> None:
        super().__init__(message)
        self.category = category


class DeploymentHTTPError(DeploymentError):
    """A non-2xx answer; ``detail`` is the error message the gateway sent, if any."""

    def __init__(self, status: int, path: str, detail: str) -> None:
        if status == 429:
            category = "http_429"
        else:
            category = "http_5xx" if status >= 500 else "http_4xx"
        super().__init__(f"HTTP {status} from {path}: {detail}", category)
        self.status = status
        self.path = path
        self.detail = detail


def classify(exc: BaseException) -> tuple[str, str]:
    """Return (category, one-line message) for a probe's exception."""
    category = _category(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, DeploymentError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return category, f"{category}: {text}"


def _category(exc: BaseException) -> str:
    if isinstance(exc, DeploymentError):
        return exc.category
    import httpx  # already loaded by the client; kept out of plugin import time

    if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, httpx.ConnectError) or isinstance(exc, ConnectionRefusedError):
        return "connection_refused" if _is_refused(exc) else "connection_error"
    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return "connection_error"
    if isinstance(exc, RuntimeError) and "client has been closed" in str(exc):
        return "client_closed"
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return "assertion"
    return "other"


def _is_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False
