"""The deployment URL, taken apart once: where requests go, what rides on every request, what is
shown.

A gateway URL may carry more than a location: a query that must go with every request (Azure
OpenAI's ``?api-version=...``) and credentials (``https://user:pass@gw``). Gluing ``/v1/`` onto
the raw string sends requests to the wrong place, and showing it leaks the credentials; so the URL
is split here into the API base, the query pairs and the basic-auth pair, and every consumer (the
session pool, the httpx client, the OpenAI SDK recipe, the reporters) reads those parts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .redact import redact_url

QueryPairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Target:
    """``api_base`` ends in ``/v1/`` and has neither credentials nor query; ``query`` is sent on
    every request; ``basic_auth`` is used when no API key is given."""

    api_base: str
    query: QueryPairs = ()
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    display: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in output: the URL's password, user and query values."""
        values = [value for _, value in self.query]
        if self.basic_auth is not None:
            values.extend(self.basic_auth)
        return tuple(values)

    def auth_header(self, api_key: str | None) -> str | None:
        """The session's Authorization header: the bearer key, else the URL's basic auth."""
        if api_key:
            return f"Bearer {api_key}"
        if self.basic_auth is not None:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            return f"Basic {token}"
        return None


def parse_target(url: str) -> Target:
    """Split an http(s) URL (the gateway root or its /v1 base); ValueError says what is wrong.

    A #fragment is refused: browsers keep it, HTTP clients never send it, so a token placed
    there would silently not reach the gateway.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s):// URL or 'mock'")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.fragment or url.endswith("#"):
        raise ValueError("a #fragment is never sent to the server; put it in the query or drop it")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    basic_auth = None
    if "@" in parts.netloc:
        basic_auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return Target(
        api_base=urlunsplit((parts.scheme, netloc, path + "/", "", "")),
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        basic_auth=basic_auth,
        display=redact_url(url),
    )
