"""Redis locks for CI fleets: many runners share one Redis (``pytest-observatory[redis]``).

Each lock is redis-py's own ``Lock`` (``SET NX PX`` to take it, Lua scripts to renew and release
it only while the token matches), with the holder's metadata as the token: one key per lock,
readable by ``--observatory-status``. A daemon thread renews every held lock each third of the
TTL, so a runner that dies, however it dies, frees its locks within one TTL.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .protocol import LockBackendError, Meta

if TYPE_CHECKING:
    import redis as redis_py
    import redis.lock

KEY_PREFIX = "pytest-observatory:"
TICKETS_KEY = KEY_PREFIX + "tickets"
SOCKET_TIMEOUT_S = 5.0


class RedisLease:
    def __init__(self, backend: RedisBackend, lock: redis.lock.Lock) -> None:
        self._backend = backend
        self.lock = lock
        self.problem: str | None = None

    def release(self) -> None:
        if self._backend.forget(self):
            import redis as redis_py

            with contextlib.suppress(redis_py.RedisError):  # lost or unreachable: the TTL ends it
                self.lock.release()


class RedisBackend:
    def __init__(self, url: str, description: str, ttl_s: float) -> None:
        try:
            import redis as redis_py
        except ImportError:
            raise LockBackendError(
                f"{description}: the redis package is missing; "
                "pip install 'pytest-observatory[redis]'"
            ) from None
        self.description = description
        self.ttl_s = ttl_s
        self._client: redis_py.Redis = redis_py.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
        )
        self._leases: set[RedisLease] = set()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        with self._errors():
            self._client.ping()

    def try_lock(self, name: str, meta: Meta, *, once: bool = False) -> RedisLease | None:
        # `once` needs nothing here: a released or expired key leaves no trace.
        lock = self._client.lock(
            KEY_PREFIX + name, timeout=self.ttl_s, blocking=False, thread_local=False
        )
        with self._errors():
            if not lock.acquire(token=json.dumps(meta)):
                return None
        lease = RedisLease(self, lock)
        with self._mutex:
            self._leases.add(lease)
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew, name="observatory-lock-renewal", daemon=True
                )
                self._renewer.start()
        return lease

    def holder(self, name: str) -> Meta | None:
        with self._errors():
            value = self._client.get(KEY_PREFIX + name)
        return None if value is None else _meta(str(value))

    def holders(self, prefix: str) -> list[tuple[str, Meta]]:
        with self._errors():
            keys = sorted(str(k) for k in self._client.scan_iter(KEY_PREFIX + prefix + "*", 500))
            values = self._client.mget(keys) if keys else []
        return [
            (key[len(KEY_PREFIX) :], _meta(str(value)))
            for key, value in zip(keys, values, strict=True)
            if value is not None  # expired between SCAN and MGET
        ]

    def ticket_number(self) -> int:
        with self._errors():
            return int(self._client.incr(TICKETS_KEY))

    def forget(self, lease: RedisLease) -> bool:
        """Stop renewing ``lease``; False if it was already forgotten."""
        with self._mutex:
            if lease not in self._leases:
                return False
            self._leases.discard(lease)
            return True

    def close(self) -> None:
        with self._mutex:
            leases = list(self._leases)
        for lease in leases:
            lease.release()
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(SOCKET_TIMEOUT_S * 2)
        self._client.close()

    def _renew(self) -> None:
        import redis as redis_py

        while not self._stop.wait(self.ttl_s / 3):
            with self._mutex:
                leases = list(self._leases)
            for lease in leases:
                try:
                    lease.lock.reacquire()
                except redis_py.exceptions.LockNotOwnedError:
                    self.forget(lease)
                    lease.problem = (
                        f"lost its lock {lease.lock.name} on {self.description} (it expired or "
                        "was deleted): a duplicate may have started meanwhile"
                    )
                except redis_py.RedisError as exc:
                    # Out of reach for now; the next round may still renew within the TTL.
                    lease.problem = lease.problem or (
                        f"could not renew its lock on {self.description} "
                        f"({type(exc).__name__}); it may have expired meanwhile"
                    )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import redis as redis_py

        try:
            yield
        except redis_py.RedisError as exc:
            raise LockBackendError(
                f"{self.description} unreachable: {type(exc).__name__}: {exc}"
            ) from None


def _meta(value: str) -> Meta:
    with contextlib.suppress(ValueError):
        meta = json.loads(value)
        if isinstance(meta, dict):
            return meta
    return {}
