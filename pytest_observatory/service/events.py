"""Live progress of a run as server-sent events, read from the child's journal.

The journal is the plugin's documented, flushed record of a running check: one JSON line each
time a time window closes (every 10 s or more). Parsing the progress line meant for people would
break on any change of its wording; the journal's lines are data. Events:

- ``status``: the run's record, first and whenever its status changes;
- ``progress``: per closed window, the check's figures so far (probes, failure rate, p95);
- ``end``: the record once the run ended, with each check's verdict and final figures; the
  stream closes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from ..result import JSON
from .runs import ACTIVE, Run

KEEPALIVE_TICKS = 15  # a comment line now and then keeps proxies from closing a quiet stream


def sse(event: str, data: JSON) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def figures(result: JSON) -> JSON:
    """The few figures a live view shows, of a check so far (a journal line) or finished."""
    return {
        "probes": result.get("probes"),
        "failures": result.get("failures"),
        "failure_rate": result.get("failure_rate"),
        "p95_ms": (result.get("latency_ms") or {}).get("p95"),
    }


def progress(line: JSON) -> JSON:
    result = line["result"]
    windows = result.get("windows") or [{}]
    return {"nodeid": line["nodeid"], "elapsed_s": windows[-1].get("end_s"), **figures(result)}


class JournalTail:
    """New complete lines of a file that may not exist yet and is removed when the run ends."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def lines(self) -> list[JSON]:
        try:
            with self._path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        found = []
        for text in complete.splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(text))
        return found


async def run_events(run: Run, interval_s: float) -> AsyncIterator[str]:
    tail = JournalTail(run.journal_path)
    status = run.status
    yield sse("status", run.public())
    ticks = 0
    while True:
        for line in tail.lines():
            if line.get("type") == "window":
                yield sse("progress", progress(line))
        if run.status != status:
            status = run.status
            yield sse("status", run.public())
        if run.status not in ACTIVE:
            checks = (run.report() or {}).get("checks", [])
            verdicts = {c.get("nodeid"): c.get("verdict") for c in checks}
            final = {c.get("nodeid"): {"verdict": c.get("verdict"), **figures(c)} for c in checks}
            yield sse("end", {**run.public(), "verdicts": verdicts, "checks": final})
            return
        ticks += 1
        if ticks % KEEPALIVE_TICKS == 0:
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval_s)
