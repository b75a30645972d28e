"""GitHub Actions: when ``GITHUB_STEP_SUMMARY`` is set, append a Markdown table of the checks
to that file, so the job's summary page shows the figures without opening a log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..durations import format_duration
from ..result import JSON, CheckResult
from . import figures

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
CELL_CHARS = 200
HEADER = (
    "| verdict | check | duration | probes | failure rate | p50 | p95 | onset | top error |\n"
    "|---|---|---:|---:|---:|---:|---:|---|---|\n"
)
ICON = {"passed": "✅", "failed": "❌", "interrupted": "⚠️", "skipped": "⏭️"}


def step_summary_path() -> Path | None:
    value = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    return Path(value) if value else None


class GitHubStepSummary:
    def __init__(self, path: Path, deployment_url: str | None) -> None:
        self._path = path
        self._deployment_url = deployment_url
        self._results: list[CheckResult] = []
        self._error = ""

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        self._results.append(result)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if not self._results:
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            with self._path.open("a", encoding="utf-8") as file:
                file.write(render(self._results, self._deployment_url, interrupted))
        except OSError as exc:
            self._error = f"observatory step summary NOT written to {self._path}: {exc}"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self._error:
            terminalreporter.write_sep("-", self._error, yellow=True)


def render(results: list[CheckResult], deployment_url: str | None, interrupted: bool) -> str:
    verdict = figures.session_verdict(results, interrupted)
    lines = [
        f"### {ICON[verdict]} pytest-observatory: {verdict.upper()}",
        "",
        f"deployment: `{deployment_url or '(none)'}`"
        + (" · run interrupted: figures up to the interruption" if interrupted else ""),
        "",
    ]
    rows = []
    for result in results:
        rows.append(_row(result))
        rows += [_model_row(name, model) for name, model in result.models.items()]
    return "\n".join(lines) + "\n" + HEADER + "".join(rows) + "\n"


def _row(result: CheckResult) -> str:
    icon = f"{ICON[result.verdict]} {result.verdict}"
    check = f"`{result.nodeid}`"
    if result.verdict == "skipped" and not result.probes:
        return _cells(icon, check, "-", "-", "-", "-", "-", "", "")
    top = figures.top_errors(result, 1)
    return _cells(
        icon,
        check,
        format_duration(result.duration_s),
        str(result.probes),
        figures.failure_rate(result),
        figures.ms(result.latency_ms.get("p50")),
        figures.ms(result.latency_ms.get("p95")),
        result.onset["summary"] if result.onset else "",
        f"{top[0][1]} × {top[0][0]}" if top else "",
    )


def _model_row(name: str, model: JSON) -> str:
    return _cells(
        "",
        f"↳ {name}",
        "",
        str(model["probes"]),
        f"{model['failure_rate']:.2%}",
        figures.ms(model["latency_ms"]["p50"]),
        figures.ms(model["latency_ms"]["p95"]),
        "",
        "",
    )


def _cells(*cells: str) -> str:
    # A pipe ends a cell and a newline ends the table: neither may come from an error message.
    safe = (figures.clip(cell, CELL_CHARS).replace("|", "\\|").replace("\n", " ") for cell in cells)
    return "| " + " | ".join(safe) + " |\n"
