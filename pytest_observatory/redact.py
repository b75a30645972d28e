"""Keep secrets out of everything we print or store.

The API key lives only in the session pool's Authorization header; URLs can still carry
credentials in their user-info or query string, and error messages can echo whatever a gateway
or a library put in them (a URL, a header). Every URL shown and every error message stored goes
through this module.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words in messages

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+[^\s'\",;]+", re.IGNORECASE)


def redact_url(url: str, public: Collection[str] = ()) -> str:
    """Drop the user-info and mask query values: 'https://***@gw/v1?key=***'.

    ``public`` names query keys whose values are known not to be secret (the mock gateway's
    knobs), so a reader still sees ``mock?failure_rate=0.05``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced '[' in the host: show nothing of it
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = "&".join(_mask_pair(pair, public) for pair in query.split("&"))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_pair(pair: str, public: Collection[str]) -> str:
    key, equals, _ = pair.partition("=")
    if not equals or key in public:
        return pair
    return f"{key}={MASK}"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """One redaction step for free text (an error message, whatever raised it): URLs inside it
    lose credentials and query values, ``Bearer``/``Basic`` tokens are masked, and every known
    secret value is replaced."""
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    text = _AUTH_SCHEME.sub(lambda match: f"{match.group(1)} {MASK}", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
    return text


def scrub_data(data: Any, secrets: Sequence[str | None]) -> Any:
    """``scrub`` every string (keys too) of JSON-like data: a whole result before it is stored
    or rendered. Numbers are left alone."""
    if isinstance(data, str):
        return scrub(data, secrets)
    if isinstance(data, dict):
        return {scrub(str(k), secrets): scrub_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub_data(item, secrets) for item in data]
    return data
