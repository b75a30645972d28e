"""Keep secrets out of everything we print or store.

The API key lives only in the client's Authorization header; URLs can still carry credentials in
their user-info or query string, and error messages can echo whatever a gateway sent back.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def host_only(url: str) -> str:
    """'https://hooks.slack.com/services/T0/B0/XXX' -> 'https://hooks.slack.com': for URLs whose
    path is itself the secret (webhooks), and to name a deployment without anything else."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url.split("?", 1)[0].split("/", 1)[0]
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return f"{parts.scheme}://{host}" if parts.scheme else host
