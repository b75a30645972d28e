"""``--observatory-report PATH``: every check of the session as JSON (schema version 1)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ..result import CheckResult
from ..usage import sum_tokens

SCHEMA_VERSION = 1


class JsonReport:
    """Collects the session's results and writes them to one file at session end; the HTML
    report is the same with another ``render``."""

    kind = "observatory report"

    def __init__(self, path: Path, deployment_url: str | None) -> None:
        self._path = path
        self._deployment_url = deployment_url
        self._checks: list[dict[str, Any]] = []
        self._outcome = ""

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        self._checks.append(result.to_dict())

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Written even for an interrupted session: what was measured must not be lost. The
        path was proven writable at start; if writing still fails, the run must not look green
        (CI would pass with no report), and no half-written file is left behind."""
        partial = self._path.with_name(self._path.name + ".partial")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(self.render(), encoding="utf-8")
            os.replace(partial, self._path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            self._outcome = f"{self.kind} NOT written to {self._path}: {exc}"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        else:
            self._outcome = f"{self.kind}: {self._path}"

    def render(self) -> str:
        document = {
            "version": SCHEMA_VERSION,
            "deployment_url": self._deployment_url,
            "checks": self._checks,
            "tokens": sum_tokens(check["tokens"] for check in self._checks),
        }
        return json.dumps(document, indent=2) + "\n"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self._outcome:
            terminalreporter.write_sep("-", self._outcome)
