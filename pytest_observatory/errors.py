"""Classify whatever a probe raises into a category and a short, groupable message.

Faults of the deployment are data: every exception becomes one counted line in the report, so
messages are one line, bounded in length, and carry the category so a reader sees at a glance
whether the gateway timed out, refused, answered 5xx or sent nonsense.
"""

from __future__ import annotations

import asyncio
import sys

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
        super().__init__(f"HTTP {status} from {path}: {detail}", http_category(status))
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
    """By what the exception carries, not only by our own types: a probe may use the OpenAI SDK,
    httpx, requests or aiohttp directly, and each has its own HTTP-status, timeout and
    connection-error classes."""
    if isinstance(exc, DeploymentError):
        return exc.category
    status = http_status(exc)
    if status is not None:
        return http_category(status)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, *_loaded(_TIMEOUTS))):
        return "timeout"
    if isinstance(exc, (ConnectionError, *_loaded(_CONNECTION_ERRORS))):
        return "connection_refused" if _is_refused(exc) else "connection_error"
    if type(exc) in _loaded(_STREAM_ERROR_EVENTS):
        return "stream_truncated"
    if isinstance(exc, RuntimeError) and "client has been closed" in str(exc):
        return "client_closed"
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return "assertion"
    return "other"


def http_category(status: int) -> str:
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


# Classes of client libraries a probe may use, looked up only if the library is loaded already
# (an exception of an unloaded library cannot exist), so classifying imports nothing. Order
# within a line does not matter; timeouts are tested before connection errors because the
# libraries derive the one from the other (openai.APITimeoutError, requests.ConnectTimeout).
_TIMEOUTS = (
    ("httpx", "TimeoutException"),
    ("openai", "APITimeoutError"),
    ("requests", "Timeout"),
    ("aiohttp", "ServerTimeoutError"),
)
_CONNECTION_ERRORS = (
    ("httpx", "TransportError"),
    ("openai", "APIConnectionError"),
    ("requests", "ConnectionError"),
    ("aiohttp", "ClientConnectionError"),
)
# The OpenAI SDK raises its bare APIError (the exact class: its subclasses carry a status or
# are connection errors) only for an in-band ``{"error": ...}`` event, which a gateway sends
# when its upstream fails mid-stream: the helpers' StreamError says the same.
_STREAM_ERROR_EVENTS = (("openai", "APIError"),)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    found = (getattr(sys.modules.get(module), attr, None) for module, attr in names)
    return tuple(kind for kind in found if isinstance(kind, type))


def http_status(exc: BaseException) -> int | None:
    """``status_code`` (openai.APIStatusError) or ``response.status_code`` (httpx's and
    requests' HTTP errors); only a real HTTP status counts."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return status
    return None


def _is_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False
