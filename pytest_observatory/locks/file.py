"""File locks in a directory shared by every pytest process of a host (filelock: flock on Unix).

A lock file's flock dies with its process, so a SIGKILLed holder never blocks anyone; its JSON
sidecar may stay behind, and is recognised as stale (its lock can be taken) and removed. Lock
files of reusable names stay in place: deleting one while another process opens it would let two
processes hold "the same" lock on different inodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .protocol import LockBackendError, Meta

LOCK_SUFFIX = ".lock"
META_SUFFIX = ".json"


class FileLease:
    problem: str | None = None  # a flock holds as long as its process lives

    def __init__(self, lock: FileLock, sidecar: Path, once: bool) -> None:
        self._lock = lock
        self._sidecar = sidecar
        self._once = once

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        self._sidecar.unlink(missing_ok=True)  # before the lock: a sidecar never outlives it
        self._lock.release()
        if self._once:
            Path(self._lock.lock_file).unlink(missing_ok=True)


class FileBackend:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"file locks in {directory}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LockBackendError(f"cannot create the lock directory {directory}: {exc}") from None

    def try_lock(self, name: str, meta: Meta, *, once: bool = False) -> FileLease | None:
        lock = self._lock(name)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            return None
        sidecar = self._path(name, META_SUFFIX)
        partial = sidecar.with_name(f"{sidecar.name}.{os.getpid()}")
        partial.write_text(json.dumps({"once": once, "meta": meta}), encoding="utf-8")
        os.replace(partial, sidecar)  # readers see the whole sidecar or none
        return FileLease(lock, sidecar, once)

    def holder(self, name: str) -> Meta | None:
        lock = self._lock(name)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            meta = self._read(name).get("meta", {})
            return meta if isinstance(meta, dict) else {}
        try:  # nobody holds it: whatever sidecar is there is stale
            once = self._read(name).get("once", False)
            self._path(name, META_SUFFIX).unlink(missing_ok=True)
        finally:
            lock.release()
        if once:
            self._path(name, LOCK_SUFFIX).unlink(missing_ok=True)
        return None

    def holders(self, prefix: str) -> list[tuple[str, Meta]]:
        found = []
        for sidecar in sorted(self.directory.glob(f"{prefix}*{META_SUFFIX}")):
            name = sidecar.name[: -len(META_SUFFIX)]
            meta = self.holder(name)
            if meta is not None:
                found.append((name, meta))
        return found

    def ticket_number(self) -> int:
        return time.time_ns()  # one host, one clock

    def close(self) -> None:
        pass

    def _lock(self, name: str) -> FileLock:
        # thread_local=False: released by whichever thread ends the check.
        return FileLock(self._path(name, LOCK_SUFFIX), thread_local=False)

    def _path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{name}{suffix}"

    def _read(self, name: str) -> Meta:
        """The sidecar: {"once": bool, "meta": {...}}; {} while it is being written."""
        with contextlib.suppress(OSError, ValueError):
            sidecar = json.loads(self._path(name, META_SUFFIX).read_text(encoding="utf-8"))
            if isinstance(sidecar, dict):
                return sidecar
        return {}
