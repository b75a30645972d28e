"""``pytest --observatory-status [--json]``: what runs and what waits, read from the locks.

It reads the same back-end the checks use (the lock directory or the Redis of
``--observatory-lock-url``), so a second terminal, or another CI runner, sees the same picture.
"""

from __future__ import annotations

import json
import sys

import pytest

from .coordination import SLOT_PREFIX, TICKET_PREFIX, WAIT_PREFIX
from .locks import LockBackend, LockBackendError, Meta, open_backend
from .options import Settings

COLUMNS = ("state", "started", "expected end", "pid", "host", "deployment", "models", "check")


def snapshot(backend: LockBackend, max_concurrent: int) -> Meta:
    """What runs and what waits, as ``--observatory-status --json`` prints it."""
    running = sorted(
        (meta for _, meta in backend.holders(SLOT_PREFIX)),
        key=lambda meta: str(meta.get("started")),
    )
    queued = [meta for _, meta in backend.holders(TICKET_PREFIX)]
    # The limit the checks run under, which a status call's own options need not repeat.
    limits = {meta["max_concurrent"] for meta in running + queued if "max_concurrent" in meta}
    return {
        "locks": backend.description,
        "max_concurrent": max(limits) if limits else max_concurrent,
        "running": running,
        "queued": queued,
        "waiting_for_duplicate": [meta for _, meta in backend.holders(WAIT_PREFIX)],
    }


def main(config: pytest.Config, settings: Settings) -> int:
    try:
        backend = open_backend(settings.lock_url, settings.lock_dir)
        try:
            state = snapshot(backend, settings.max_concurrent)
        finally:
            backend.close()
    except LockBackendError as exc:
        print(f"observatory status: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    if config.getoption("json"):
        print(json.dumps(state, indent=2))
        return 0
    running, queued = state["running"], state["queued"]
    waiting = state["waiting_for_duplicate"]
    print(
        f"observatory status ({state['locks']}, max-concurrent {state['max_concurrent']}): "
        f"{len(running)} running, {len(queued)} queued, {len(waiting)} waiting for a duplicate"
    )
    rows = [_row("running", m, m.get("started"), m.get("expected_end")) for m in running]
    rows += [
        _row(f"queued {n}", meta, f"(since {meta.get('since')})", "")
        for n, meta in enumerate(queued, 1)
    ]
    rows += [_row("duplicate", meta, f"(since {meta.get('since')})", "") for meta in waiting]
    if rows:
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        for row in [COLUMNS, *rows]:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            print("  ".join(cells).rstrip())
    return 0


def _row(state: str, meta: Meta, started: object, end: object) -> tuple[str, ...]:
    return (
        state,
        str(started or "?"),
        str(end or ""),
        str(meta.get("pid", "?")),
        str(meta.get("host", "?")),
        str(meta.get("deployment", "")),
        ",".join(meta.get("models", [])),
        str(meta.get("nodeid", "?")),
    )
