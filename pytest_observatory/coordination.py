"""Coordination between checks, on whatever lock back-end is configured: one run per check
identity at a time (dedup) and at most N checks at once (slots, claimed in arrival order).

The runner calls ``admit`` before a check's run starts (setup) and ``leave`` after it (teardown);
the engine never knows. Every wait is bounded or visible: a duplicate waits at most the check's
own time limit, a check queued for a slot prints its position, and ``--observatory-status``
lists what runs and what waits. Names of locks on the back-end:

- ``check-<identity>``: held by the one run of that check (dedup);
- ``slot-<i>``, i < max-concurrent: held while a check runs;
- ``ticket-<n>``: held by a check queued for a slot; the smallest n goes first;
- ``wait-<n>``: held by a check waiting for its duplicate to end (shown by the status command).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
from urllib.parse import urlsplit

import pytest

from .locks import Lease, LockBackend, LockBackendError, Meta, open_backend
from .marker import CheckSpec
from .options import Settings
from .redact import redact_url
from .result import utc_iso

CHECK_PREFIX = "check-"
SLOT_PREFIX = "slot-"
TICKET_PREFIX = "ticket-"
WAIT_PREFIX = "wait-"
POLL_S = 0.2
PUBLISH_WAIT_S = 2.0  # how long a new holder may take to publish who it is


def check_identity(nodeid: str, settings: Settings, spec: CheckSpec) -> str:
    """Same node, deployment, credentials, models and effective settings: the same check.

    Secrets count only through a hash: the key, and the URL's user-info and query values."""
    fields = dataclasses.asdict(spec)
    del fields["on_duplicate"]  # how to meet a duplicate is not part of what the check is
    fields["models"] = sorted(spec.models)
    url = settings.deployment_url or ""
    secrets = f"{settings.api_key or ''}\n{url}"
    document = {
        "nodeid": nodeid,
        "deployment": redact_url(url),
        "secrets_sha256": hashlib.sha256(secrets.encode()).hexdigest(),
        "spec": fields,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def deployment_host(settings: Settings) -> str:
    """Host and port only: never a path, query or credentials."""
    if settings.uses_mock or not settings.deployment_url:
        return settings.deployment_url.split("?")[0] if settings.deployment_url else ""
    parts = urlsplit(settings.deployment_url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class Admission:
    """What a check holds while it runs, and how long it waited for it."""

    def __init__(self) -> None:
        self.leases: list[Lease] = []
        self.queued_s = 0.0
        self.meta: Meta = {}

    def release(self) -> None:
        for lease in reversed(self.leases):  # the slot first, then the identity
            lease.release()
        self.leases.clear()


ADMISSION_KEY = pytest.StashKey[Admission]()


def queued_s(item: pytest.Item) -> float:
    admission = item.stash.get(ADMISSION_KEY, None)
    return admission.queued_s if admission is not None else 0.0


def lock_notes(item: pytest.Item) -> list[str]:
    """What went wrong with the check's locks while it ran, for the result's notes."""
    admission = item.stash.get(ADMISSION_KEY, None)
    if admission is None:
        return []
    return [lease.problem for lease in admission.leases if lease.problem]


def running_meta(item: pytest.Item) -> Meta | None:
    """The admitted check's slot metadata and wait, as it rides on its setup report."""
    admission = item.stash.get(ADMISSION_KEY, None)
    if admission is None or not admission.meta:
        return None
    return {**admission.meta, "queued_s": admission.queued_s}


class Coordinator:
    """One per session (in config.stash), shared by every check of the process."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self._config = config
        self._settings = settings
        self._backend: LockBackend | None = None

    def admit(self, item: pytest.Item, spec: CheckSpec, wait_limit_s: float) -> None:
        """Take the check's identity lock, then a slot; skip, fail or wait as configured."""
        admission = item.stash[ADMISSION_KEY] = Admission()
        started = time.monotonic()
        try:
            backend = self.backend()
            meta = self._meta(item, spec)
            admission.leases.append(
                self._claim_identity(backend, item.nodeid, meta, spec, wait_limit_s)
            )
            admission.meta, slot = self._claim_slot(backend, item.nodeid, meta, spec)
            admission.leases.append(slot)
        except LockBackendError as exc:
            error = str(exc)
        except BaseException:  # skip, fail, Ctrl-C: give back what was taken
            admission.release()
            raise
        else:
            admission.queued_s = round(time.monotonic() - started, 3)
            return
        admission.release()
        # Outside the handler, so pytest shows one line, not the chained exception.
        pytest.fail(f"{item.nodeid}: observatory locks: {error}", pytrace=False)

    def leave(self, item: pytest.Item) -> None:
        admission = item.stash.get(ADMISSION_KEY, None)
        if admission is not None:
            admission.release()

    def backend(self) -> LockBackend:
        """Opened on the first check: a plain test run never touches the lock directory."""
        if self._backend is None:
            self._backend = open_backend(self._settings.lock_url, self._settings.lock_dir)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    def _meta(self, item: pytest.Item, spec: CheckSpec) -> Meta:
        workerinput = getattr(self._config, "workerinput", None)
        return {
            "nodeid": item.nodeid,
            "deployment": deployment_host(self._settings),
            "models": sorted(spec.models),
            "identity": check_identity(item.nodeid, self._settings, spec),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "worker": workerinput["workerid"] if workerinput else None,
            "since": utc_iso(),
            "duration_s": spec.duration_s,
            "max_concurrent": self._settings.max_concurrent,
        }

    def _claim_identity(
        self, backend: LockBackend, nodeid: str, meta: Meta, spec: CheckSpec, limit_s: float
    ) -> Lease:
        name = CHECK_PREFIX + meta["identity"]
        policy = spec.on_duplicate or self._settings.on_duplicate
        now = time.monotonic()
        deadline, published_by = now + limit_s, now + PUBLISH_WAIT_S
        waiting: Lease | None = None
        try:
            while True:
                lease = backend.try_lock(name, meta)
                if lease is not None:
                    return lease
                current = backend.holder(name)
                if current is None or (not current and time.monotonic() < published_by):
                    time.sleep(POLL_S)  # freed meanwhile, or its holder is still writing its name
                    continue
                holder = describe_holder(backend, meta["identity"], current)
                if policy == "skip":
                    # Shown at the test's location, as a skip marker's reason is.
                    raise pytest.skip.Exception(
                        f"duplicate of a running check: {holder}", _use_item_location=True
                    )
                if policy == "fail":
                    pytest.fail(f"{nodeid}: duplicate of a running check: {holder}", pytrace=False)
                if time.monotonic() >= deadline:
                    pytest.fail(
                        f"{nodeid}: gave up after waiting {limit_s:g}s (the check's time limit) "
                        f"for a duplicate to end: {holder}",
                        pytrace=False,
                    )
                if waiting is None:
                    self._announce(f"{nodeid}: waiting for a duplicate to end: {holder}")
                    waiting = backend.try_lock(_numbered(backend, WAIT_PREFIX), meta, once=True)
                time.sleep(POLL_S)
        finally:
            if waiting is not None:
                waiting.release()

    def _claim_slot(
        self, backend: LockBackend, nodeid: str, meta: Meta, spec: CheckSpec
    ) -> tuple[Meta, Lease]:
        limit = self._settings.max_concurrent
        ticket_name = _numbered(backend, TICKET_PREFIX)
        ticket = backend.try_lock(ticket_name, meta, once=True)
        shown = 0
        try:
            while True:
                queue = [name for name, _ in backend.holders(TICKET_PREFIX)]
                position = queue.index(ticket_name) + 1 if ticket_name in queue else 1
                if position == 1:
                    now = time.time()
                    running = {
                        **meta,
                        "started": utc_iso(now),
                        "expected_end": utc_iso(now + spec.duration_s),
                    }
                    for slot in range(limit):
                        lease = backend.try_lock(f"{SLOT_PREFIX}{slot}", running)
                        if lease is not None:
                            return running, lease
                if position != shown:
                    shown = position
                    self._announce(
                        f"{nodeid}: queued for a slot, position {position} of "
                        f"{max(len(queue), 1)} (max-concurrent {limit})"
                    )
                time.sleep(POLL_S)
        finally:
            if ticket is not None:
                ticket.release()

    def _announce(self, text: str) -> None:
        """A line on the terminal while the check waits, even from an xdist worker."""
        if self._config.get_verbosity() < 0:
            return
        capman = self._config.pluginmanager.getplugin("capturemanager")
        disabled = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with disabled:
            print(f"\nobservatory: {text}", file=sys.stderr, flush=True)


COORDINATOR_KEY = pytest.StashKey[Coordinator]()


def describe_holder(backend: LockBackend, identity: str, holder: Meta | None) -> str:
    """'pid 12 on host ci-7, started 05:10:02Z, expected end 08:10:02Z' for skip reasons."""
    if not holder:
        return "its holder is just starting"
    who = f"pid {holder.get('pid')} on host {holder.get('host')}"
    for _, running in backend.holders(SLOT_PREFIX):
        if running.get("identity") == identity:
            return (
                f"{who}, started {running.get('started')}, "
                f"expected end {running.get('expected_end')}"
            )
    return f"{who}, queued for a slot since {holder.get('since')}"


def _numbered(backend: LockBackend, prefix: str) -> str:
    # Zero-padded, so sorting names sorts arrivals; the pid breaks ties between processes.
    return f"{prefix}{backend.ticket_number():020d}-{os.getpid()}"
