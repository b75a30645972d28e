"""The ``observatory`` section of pytest's terminal summary: one row per check, one per model."""

from __future__ import annotations

import pytest

from ..durations import format_duration
from ..result import JSON, CheckResult
from ..sequential import StopDecision
from ..usage import sum_tokens, tokens_line
from .failure_text import onset_lines
from .load_table import load_lines

QUIETEST_SHOWN = -1  # shown with -q, like pytest's own summaries; -qq hides it
HEADER = (
    f"{'verdict':<12} {'duration':>9} {'probes':>8} {'fail rate':>9} "
    f"{'p50 ms':>9} {'p95 ms':>9}  check"
)


class TerminalSummary:
    def __init__(self, deployment_url: str | None) -> None:
        self._deployment_url = deployment_url
        self._results: list[CheckResult] = []

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        self._results.append(result)

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, config: pytest.Config
    ) -> None:
        if not self._results or config.get_verbosity() < QUIETEST_SHOWN:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "observatory")
        write(f"deployment: {self._deployment_url or '(none)'}")
        write(HEADER)
        for result in self._results:
            write(_row(result), **_markup(result))
            if result.stopped_early:
                write(f"{'':<12} {StopDecision(**result.stopped_early).headline()}")
            for name, model in result.models.items():
                label = "  " + name
                write(
                    _cells(
                        "", None, model["probes"], model["failure_rate"], model["latency_ms"], label
                    )
                )
            for line in load_lines(result):
                write(line)
            if result.onset:
                for line in onset_lines(result.onset):
                    write(f"{'':<12} {line}")
            if result.baseline:
                write(f"{'':<12} baseline: {result.baseline['summary']}")
            if result.tokens:
                write(f"{'':<12} {tokens_line(result.tokens)}")
            for note in result.notes:
                write(f"{'':<12} note: {note}", yellow=True)
        session_tokens = sum_tokens(result.tokens for result in self._results)
        if session_tokens and len(self._results) > 1:
            write(f"session {tokens_line(session_tokens)}")


def _row(result: CheckResult) -> str:
    if result.verdict in ("skipped", "crashed") and not result.probes:
        dashes = f"{'-':>9} {'-':>8} {'-':>9} {'-':>9} {'-':>9}"
        return f"{result.verdict.upper():<12} {dashes}  {result.nodeid}"
    return _cells(
        result.verdict.upper() + (" early" if result.stopped_early else ""),
        result.duration_s,
        result.probes,
        result.failure_rate,
        result.latency_ms,
        result.nodeid,
    )


def _cells(
    verdict: str,
    duration_s: float | None,
    probes: int,
    failure_rate: float,
    latency: JSON,
    label: str,
) -> str:
    duration = format_duration(duration_s) if duration_s is not None else ""
    return (
        f"{verdict:<12} {duration:>9} {probes:>8} {failure_rate:>9.2%} "
        f"{_ms(latency['p50']):>9} {_ms(latency['p95']):>9}  {label}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _markup(result: CheckResult) -> dict[str, bool]:
    return {
        "passed": {"green": True},
        "failed": {"red": True, "bold": True},
        "crashed": {"red": True, "bold": True},
        "interrupted": {"yellow": True},
    }.get(result.verdict, {})
