"""Keep secrets out of everything we print or store.

The API key lives only in the client's Authorization header; URLs can still carry credentials in
their user-info or query string, and error messages can echo whatever a gateway sent back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def redact_url(url: str) -> str:
    """Drop the password/user-info and mask query values: 'https://***@gw/v1?key=***'."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = "&".join(
            f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else pair for pair in query.split("&")
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of a known secret value in free text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that must never be stored: user-info and query values."""
    if not url:
        return []
    parts = urlsplit(url)
    found = [parts.username, parts.password]
    found += [pair.split("=", 1)[1] for pair in parts.query.split("&") if "=" in pair]
    return [value for value in found if value]


def scrub_data(data: Any, secrets: Sequence[str | None]) -> Any:
    """``scrub`` every string (keys too) of JSON-like data; numbers are left alone."""
    if isinstance(data, str):
        return scrub(data, secrets)
    if isinstance(data, dict):
        return {scrub(str(k), secrets): scrub_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub_data(item, secrets) for item in data]
    return data
