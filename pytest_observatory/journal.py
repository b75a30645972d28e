"""A journal of running checks, so that a run killed with SIGKILL (or a power cut) still leaves
its figures on disk.

Signals can be caught (``signals.py``); SIGKILL cannot. While a check runs, the process appends
JSON lines and flushes them to disk: the spec when the check starts, the check's figures each
time a time window closes (with only the windows closed since the line before, so the file grows
with the run, not with its square), each new distinct error as it is first seen, and the final
result when the check ends. ``python -m pytest_observatory journal PATH`` turns a journal into
the JSON report a finished run writes; checks that never ended come out ``interrupted`` with the
figures of their last closed window. The journal is removed when its session ends normally.

Lines hold ``CheckResult`` data and already-redacted error messages: no secret goes in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from .commands import CommandError
from .marker import CheckSpec
from .result import JSON, CheckResult

JOURNAL_SUFFIX = ".journal.jsonl"
WRITER_JOIN_S = 10.0


def journal_path(config: pytest.Config, report_path: Path | None) -> Path | None:
    """Next to the JSON report (``r.json.journal.jsonl``; ``r.json.gw0.journal.jsonl`` for xdist
    worker gw0), else in pytest's cache folder (``.pytest_cache/d/observatory/``)."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    suffix = (f".{worker}" if worker else "") + JOURNAL_SUFFIX
    if report_path is not None:
        return report_path.with_name(report_path.name + suffix)
    cache = getattr(config, "cache", None)
    if cache is None:
        return None  # -p no:cacheprovider and no report: nowhere documented to write
    return Path(cache.mkdir("observatory")) / ("journal" + suffix)


class Journal:
    """One process's journal. Lines are written, flushed and synced by a thread of its own: a
    slow disk must never stall the event loop the probes (and their timing) run on."""

    def __init__(self, path: Path, deployment_url: str | None) -> None:
        self.path = path
        self._deployment_url = deployment_url
        self._windows_written: dict[str, float] = {}
        self._lines: queue.SimpleQueue[JSON | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self.error: str | None = None  # why writing stopped: a full disk must not stop a check

    def check_started(self, nodeid: str, spec: CheckSpec) -> None:
        self._windows_written[nodeid] = -1.0
        self._write(
            {
                "type": "check",
                "nodeid": nodeid,
                "deployment_url": self._deployment_url,
                "started_at": round(time.time(), 3),
                "spec": asdict(spec),
            }
        )

    def window_closed(self, result: CheckResult) -> None:
        """The figures so far; of the windows, only those not written before."""
        since = self._windows_written.get(result.nodeid, -1.0)
        data = result.to_dict()
        data["windows"] = [w for w in result.windows if w["start_s"] > since]
        if data["windows"]:
            self._windows_written[result.nodeid] = data["windows"][-1]["start_s"]
        self._write({"type": "window", "nodeid": result.nodeid, "result": data})

    def new_error(self, nodeid: str, t_s: float, model: str | None, error: str) -> None:
        line = {"type": "error", "nodeid": nodeid, "t_s": round(t_s, 3), "model": model}
        self._write({**line, "error": error})

    def check_finished(self, result: CheckResult) -> None:
        self._write({"type": "end", "nodeid": result.nodeid, "result": result.to_dict()})

    def close(self) -> None:
        """The session ended normally: its figures are in the summary and the report."""
        if self._writer is None:
            return
        self._lines.put(None)
        self._writer.join(WRITER_JOIN_S)
        self._writer = None
        if self.error is None:
            with contextlib.suppress(OSError):  # moved or removed under us: nothing to clean
                self.path.unlink(missing_ok=True)

    def _write(self, line: JSON) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_lines, name="observatory-journal", daemon=True
            )
            self._writer.start()
        self._lines.put(line)

    def _write_lines(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", encoding="utf-8") as file:
                while (line := self._lines.get()) is not None:
                    file.write(json.dumps(line) + "\n")
                    file.flush()
                    os.fsync(file.fileno())
        except OSError as exc:
            self.error = f"journal {self.path} not written: {exc.strerror or exc}"


def rebuild(lines: list[JSON]) -> JSON:
    """The JSON report a finished run would have written, from a journal's lines."""
    from .reporting.json_report import SCHEMA_VERSION

    deployment_url: str | None = None
    checks: dict[str, JSON] = {}
    windows: dict[str, dict[float, JSON]] = {}
    late_errors: dict[str, list[JSON]] = {}
    for line in lines:
        nodeid = line["nodeid"]
        kind = line["type"]
        if kind == "check":
            deployment_url = line.get("deployment_url")
            spec = line["spec"]
            checks[nodeid] = CheckResult(
                nodeid,
                "interrupted",
                max_failure_rate=spec["max_failure_rate"],
                notes=["rebuilt from the journal: no time window had closed yet"],
            ).to_dict()
            windows[nodeid], late_errors[nodeid] = {}, []
        elif kind == "window":
            result = dict(line["result"])
            for window in result.pop("windows"):
                windows[nodeid][window["start_s"]] = window
            checks[nodeid] = result
            late_errors[nodeid] = []
        elif kind == "error":
            late_errors[nodeid].append(line)
        elif kind == "end":
            checks[nodeid] = {**line["result"], "ended": True}
    report = []
    for nodeid, check in checks.items():
        if check.pop("ended", False):
            report.append(check)
            continue
        check["windows"] = [windows[nodeid][start] for start in sorted(windows[nodeid])]
        check["verdict"] = "interrupted"
        notes = list(check.get("notes") or [])
        if check["windows"]:
            notes.append(
                "rebuilt from the journal: figures up to the last closed window "
                f"(ended {check['windows'][-1]['end_s']:g}s after the start)"
            )
        notes += [
            f"after that, first seen at {error['t_s']:g}s: {error['error']}"
            for error in late_errors[nodeid]
        ]
        check["notes"] = notes
        report.append(check)
    return {"version": SCHEMA_VERSION, "deployment_url": deployment_url, "checks": report}


def read_lines(path: Path) -> list[JSON]:
    """Every complete line; a last line cut off by the kill is dropped."""
    lines: list[JSON] = []
    with path.open(encoding="utf-8") as file:
        for number, text in enumerate(file, 1):
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                if text.endswith("\n"):
                    raise ValueError(f"{path}:{number}: not a journal line") from None
                break  # the line being written when the process died
            if not isinstance(line, dict) or "type" not in line or "nodeid" not in line:
                raise ValueError(f"{path}:{number}: not a journal line")
            lines.append(line)
    return lines


def register(commands: Any) -> None:
    """The ``journal`` command of ``python -m pytest_observatory``."""
    parser = commands.add_parser(
        "journal",
        help="turn the journal of a killed run into its JSON report",
        description="Turn the journal of a killed run into the JSON report a finished run "
        "writes; checks that never ended are 'interrupted'.",
    )
    parser.add_argument("path", type=Path, help="the journal (*.journal.jsonl)")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write the report here (default: stdout)"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    try:
        document = rebuild(read_lines(args.path))
    except OSError as exc:
        raise CommandError(f"cannot read {args.path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"{args.path}: not a journal ({exc})") from None
    text = json.dumps(document, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
