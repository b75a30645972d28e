"""The lock back-end interface: named locks that carry metadata, and a ticket counter.

Dedup (one lock per check identity), host slots (N slot locks) and the arrival queue (one lock
per waiting ticket) are all built from these few calls, so a back-end only has to get named
locks right: held until released or until the holder dies, readable by anyone.
"""

from __future__ import annotations

from typing import Any, Protocol

Meta = dict[str, Any]


class Lease(Protocol):
    """A held lock; ``release`` is idempotent."""

    #: Set when the back-end could not keep the lock held (safe to print); None while it holds.
    problem: str | None

    def release(self) -> None: ...


class LockBackend(Protocol):
    #: Where the locks live, safe to print (no credentials).
    description: str

    def try_lock(self, name: str, meta: Meta, *, once: bool = False) -> Lease | None:
        """Take ``name`` without waiting and publish ``meta`` beside it; None when it is held.

        ``once``: the name is never reused (a queue ticket), so its traces go on release."""

    def holder(self, name: str) -> Meta | None:
        """The metadata of ``name``'s live holder ({} while it is being written); None if free."""

    def holders(self, prefix: str) -> list[tuple[str, Meta]]:
        """Live holders of every lock whose name starts with ``prefix``, sorted by name; traces
        of dead holders found on the way are removed."""

    def ticket_number(self) -> int:
        """A number that grows with each call, across every process sharing the back-end."""

    def close(self) -> None: ...


class LockBackendError(Exception):
    """The back-end cannot be reached or used; the message is safe to print."""
