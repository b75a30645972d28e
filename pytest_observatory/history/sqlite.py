"""The history database: one SQLite file, one row per check result, safe for concurrent writers.

WAL mode lets readers work while a writer appends; each append is one short ``BEGIN IMMEDIATE``
transaction, and a writer that finds the file locked (xdist, parallel CI jobs on one host) waits
on SQLite's busy timeout and then retries with backoff, so no row is lost while the lock is
merely contended. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..result import CheckResult
from .compare import FIGURES, LAST, BaselineRun, figures, models_key

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0
WRITE_DEADLINE_S = 60.0  # retries of a contended write stop after this
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    label TEXT,
    nodeid TEXT NOT NULL,
    models TEXT NOT NULL,
    deployment_host TEXT,
    verdict TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    recorded_at TEXT NOT NULL,
    duration_s REAL,
    probes INTEGER,
    failures INTEGER,
    failure_rate REAL,
    p50_ms REAL,
    p95_ms REAL,
    p99_ms REAL,
    ttft_p95_ms REAL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_by_check ON checks (nodeid, models, id);
CREATE INDEX IF NOT EXISTS checks_by_time ON checks (started_at);
CREATE INDEX IF NOT EXISTS checks_by_label ON checks (label);
"""
# The columns a listing or a CSV export shows, in order (`result` holds everything else).
COLUMNS = (
    "id",
    "run_id",
    "label",
    "nodeid",
    "models",
    "deployment_host",
    "verdict",
    "started_at",
    "ended_at",
    "recorded_at",
    "duration_s",
    "probes",
    "failures",
    "failure_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p95_ms",
)


class HistoryError(Exception):
    """The file is not a history database this version can use."""


@dataclass(frozen=True)
class Filters:
    nodeid: str | None = None  # a substring of the node id
    label: str | None = None
    verdict: str | None = None
    run_id: str | None = None


class HistoryDB:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(
        self,
        result: CheckResult,
        *,
        run_id: str,
        label: str | None,
        deployment_host: str | None,
        recorded_at: str,
    ) -> int:
        """Append one check result (the file and schema are created on first use); returns the
        row id. The caller scrubs secrets from the result first."""
        row: dict[str, Any] = {
            "run_id": run_id,
            "label": label,
            "nodeid": result.nodeid,
            "models": models_key(result),
            "deployment_host": deployment_host,
            "verdict": result.verdict,
            "started_at": result.started_at,
            "ended_at": result.ended_at,
            "recorded_at": recorded_at,
            "duration_s": result.duration_s,
            "probes": result.probes,
            "failures": result.failures,
            **figures(result),
            "result": json.dumps(result.to_dict(), sort_keys=True),
        }
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)

        def insert(conn: sqlite3.Connection) -> int:
            self._create(conn)
            cursor = conn.execute(f"INSERT INTO checks ({names}) VALUES ({marks})", row)
            return int(cursor.lastrowid or 0)

        return _retry(lambda: self._transaction(insert, write=True))

    def baselines(self, ref: str) -> dict[tuple[str, str], BaselineRun]:
        """Per (node id, models): the latest run labelled ``ref``, or the latest passed run."""
        if not self.path.exists():
            return {}
        args: tuple[str, ...] = ()
        if ref == LAST:
            where = "verdict = 'passed'"
        else:
            where, args = "label = ?", (ref,)
        query = (
            "SELECT * FROM checks WHERE id IN "
            f"(SELECT MAX(id) FROM checks WHERE {where} GROUP BY nodeid, models)"
        )
        rows = _retry(lambda: self._transaction(lambda conn: self._select(conn, query, args)))
        return {
            (row["nodeid"], row["models"]): BaselineRun(
                run_id=row["run_id"],
                label=row["label"],
                started_at=row["started_at"],
                verdict=row["verdict"],
                figures={name: row[name] for name in FIGURES},
            )
            for row in rows
        }

    def rows(self, filters: Filters = Filters(), limit: int | None = None) -> list[sqlite3.Row]:
        """Check rows, oldest first (the newest ``limit`` of them when given)."""
        if not self.path.exists():
            raise HistoryError(f"{self.path}: no such file")
        clauses, args = [], []
        for column, value in (
            ("label", filters.label),
            ("verdict", filters.verdict),
            ("run_id", filters.run_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if filters.nodeid is not None:
            clauses.append("instr(nodeid, ?) > 0")
            args.append(filters.nodeid)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM checks {where} ORDER BY id DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        rows = _retry(lambda: self._transaction(lambda conn: self._select(conn, query, args)))
        return rows[::-1]

    def _select(
        self, conn: sqlite3.Connection, query: str, args: Sequence[Any]
    ) -> list[sqlite3.Row]:
        if self._version(conn) == 0:
            return []  # created by a writer that has not committed its schema yet
        return list(conn.execute(query, args))

    def _transaction(self, work: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                value = work(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return value

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _contended(exc):
                raise
            raise HistoryError(
                f"{self.path}: not an observatory history database ({exc})"
            ) from None
        if mode != "wal":
            conn.close()
            raise HistoryError(f"{self.path}: cannot use WAL mode (journal mode {mode!r})")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path}: history schema version {version} is newer than this "
                f"pytest-observatory's ({SCHEMA_VERSION}); upgrade it"
            )
        if version and not _has_checks(conn):
            raise HistoryError(f"{self.path}: not an observatory history database")
        return version

    def _create(self, conn: sqlite3.Connection) -> None:
        if self._version(conn) == SCHEMA_VERSION:
            return
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if tables - {"sqlite_sequence"}:
            raise HistoryError(f"{self.path}: not an observatory history database")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _has_checks(conn: sqlite3.Connection) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checks'"
    return conn.execute(query).fetchone() is not None


def _contended(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _retry(work: Callable[[], T], deadline_s: float = WRITE_DEADLINE_S) -> T:
    """Run ``work`` again while the database is locked by another writer, with jittered
    backoff, until ``deadline_s``; any other error (or the deadline) propagates."""
    give_up = time.monotonic() + deadline_s
    delay = 0.02
    while True:
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if not _contended(exc) or time.monotonic() > give_up:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)


def row_dict(row: sqlite3.Row, with_result: bool = False) -> dict[str, Any]:
    """A row as plain data: the listed columns, plus the parsed full result if asked."""
    data = {name: row[name] for name in COLUMNS}
    if with_result:
        data["result"] = json.loads(row["result"])
    return data
