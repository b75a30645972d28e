"""Lock back-ends, picked by URL: none (file locks in the lock directory) or ``redis://``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..durations import parse_duration
from .protocol import Lease, LockBackend, LockBackendError, Meta

__all__ = [
    "Lease",
    "LockBackend",
    "LockBackendError",
    "Meta",
    "REDIS_SCHEMES",
    "open_backend",
    "parse_lock_url",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_TTL_S = 30.0
TTL_PARAM = "ttl"


def parse_lock_url(url: str) -> tuple[str, str, float]:
    """(URL for the client, printable description, TTL) of a lock URL; ValueError if bad.

    The TTL rides in the URL (``?ttl=10s``) so a fleet's runners share it with the address."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(f"expected a redis:// URL (schemes: {', '.join(REDIS_SCHEMES)})")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("no host")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ttl_s = DEFAULT_TTL_S
    for key, value in query:
        if key == TTL_PARAM:
            ttl_s = parse_duration(value)
            if ttl_s < 1:
                raise ValueError(f"ttl={value!r}: must be at least 1s")
    rest = urlencode([(k, v) for k, v in query if k != TTL_PARAM])
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    description = f"redis {parts.scheme}://{host}{parts.path} (ttl {ttl_s:g}s)"
    return client_url, description, ttl_s


def open_backend(url: str | None, directory: Path) -> LockBackend:
    """Raises LockBackendError, with a printable message, when the back-end is unusable."""
    if url is None:
        from .file import FileBackend

        return FileBackend(directory)
    from .redis import RedisBackend

    client_url, description, ttl_s = parse_lock_url(url)
    return RedisBackend(client_url, description, ttl_s)
