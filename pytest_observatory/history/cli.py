"""``python -m pytest_observatory history``: list the runs in a history database, or export
them as CSV or JSON.

``history [list] PATH [filters]`` lists check runs (newest last); ``history export PATH
--format csv|json [--output FILE] [filters]`` writes every matching row. The database is only
read: a missing file is an error, never a new empty database.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from ..commands import CommandError
from ..result import Verdict
from .sqlite import COLUMNS, Filters, HistoryDB, HistoryError, row_dict

SUBCOMMANDS = ("list", "export")
VERDICTS: tuple[Verdict, ...] = ("passed", "failed", "interrupted", "skipped", "crashed")
EXPORT_VERSION = 1


def default_subcommand(argv: list[str]) -> list[str]:
    """``history PATH`` means ``history list PATH``."""
    if len(argv) >= 2 and argv[0] == "history" and argv[1] not in (*SUBCOMMANDS, "-h", "--help"):
        return ["history", "list", *argv[1:]]
    return argv


def register(commands: Any) -> None:
    history = commands.add_parser(
        "history",
        help="list or export the runs in a history database (--observatory-history)",
        description="List or export the check runs in a history database.",
    )
    actions = history.add_subparsers(dest="action", required=True, metavar="{list,export}")
    listing = actions.add_parser("list", help="list runs, newest last (the default)")
    _common(listing)
    listing.add_argument(
        "--limit", type=_positive, default=50, help="show the newest N rows (default 50)"
    )
    listing.set_defaults(run=_list)
    export = actions.add_parser("export", help="write the rows as CSV or JSON")
    _common(export)
    export.add_argument("--format", required=True, choices=("csv", "json"))
    export.add_argument("--output", type=Path, help="write to FILE (default: standard output)")
    export.set_defaults(run=_export)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="the history database")
    parser.add_argument("--nodeid", help="only checks whose node id contains this text")
    parser.add_argument("--label", help="only runs with this label")
    parser.add_argument("--verdict", choices=VERDICTS)
    parser.add_argument("--run", dest="run_id", metavar="RUN_ID", help="only this run")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _rows(args: argparse.Namespace, limit: int | None = None) -> list[sqlite3.Row]:
    filters = Filters(args.nodeid, args.label, args.verdict, args.run_id)
    try:
        return HistoryDB(args.path).rows(filters, limit)
    except HistoryError as exc:
        raise CommandError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CommandError(f"{args.path}: {exc}") from None


def _list(args: argparse.Namespace) -> None:
    rows = _rows(args, args.limit)
    print(
        f"{'id':>5}  {'run':<12}  {'label':<12}  {'started (UTC)':<19}  {'verdict':<11} "
        f"{'probes':>8} {'fail rate':>9} {'p95 ms':>9}  check [models]"
    )
    for row in rows:
        started = (row["started_at"] or "-")[:19].replace("T", " ")
        rate = "-" if row["failure_rate"] is None else f"{row['failure_rate']:.2%}"
        p95 = "-" if row["p95_ms"] is None else f"{row['p95_ms']:.1f}"
        models = f" [{row['models']}]" if row["models"] else ""
        print(
            f"{row['id']:>5}  {row['run_id']:<12}  {(row['label'] or '-'):<12}  {started:<19}  "
            f"{row['verdict']:<11} {row['probes'] or 0:>8} {rate:>9} {p95:>9}  "
            f"{row['nodeid']}{models}"
        )
    if not rows:
        print("(no runs match)")


def _export(args: argparse.Namespace) -> None:
    rows = _rows(args)
    buffer = io.StringIO(newline="")
    if args.format == "csv":
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row_dict(row) for row in rows)
    else:
        document = {
            "version": EXPORT_VERSION,
            "checks": [row_dict(row, with_result=True) for row in rows],
        }
        buffer.write(json.dumps(document, indent=2) + "\n")
    if args.output is None:
        sys.stdout.write(buffer.getvalue())
        return
    try:
        args.output.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc}") from None
    print(f"{len(rows)} row(s) written to {args.output}", file=sys.stderr)
