"""``--observatory-history PATH``: the controller appends every check result as it finishes.

Written check by check (not at session end) so a crash or a kill later in a long session loses
nothing already measured. A database that cannot be written is one line in the summary; it
never fails or hangs the run (contended writes retry for at most a minute).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

import pytest

from ..options import Settings
from ..redact import scrub_data
from ..result import CheckResult, utc_iso
from .sqlite import HistoryDB, HistoryError


class HistoryWriter:
    def __init__(
        self,
        db: HistoryDB,
        label: str | None,
        host: str | None,
        secrets: Sequence[str | None],
    ) -> None:
        self._db = db
        self._label = label
        self._host = host
        self._secrets = secrets
        self.run_id = uuid.uuid4().hex[:12]
        self._written = 0
        self._errors: list[str] = []

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        clean = CheckResult.from_dict(scrub_data(result.to_dict(), self._secrets))
        try:
            self._db.append(
                clean,
                run_id=self.run_id,
                label=self._label,
                deployment_host=self._host,
                recorded_at=utc_iso(),
            )
        except (sqlite3.Error, HistoryError, OSError) as exc:
            self._errors.append(f"{result.nodeid}: {exc}")
        else:
            self._written += 1

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        label = f", label {self._label!r}" if self._label else ""
        if self._written:
            terminalreporter.write_sep(
                "-",
                f"observatory history: {self._written} check(s) appended to {self._db.path} "
                f"(run {self.run_id}{label})",
            )
        for error in self._errors:
            terminalreporter.write_sep("-", f"observatory history NOT written: {error}", red=True)


def deployment_host(settings: Settings) -> str | None:
    """Host and port only: never the user-info, path or query of the URL."""
    if settings.uses_mock:
        return "mock"
    if settings.target is None:
        return None
    return urlsplit(settings.target.api_base).netloc
