"""How a check's figures read in a message or a table, shared by the Slack and CI reporters."""

from __future__ import annotations

from collections.abc import Iterable

from ..result import CheckResult

# Worst first: a truncated message or table keeps what someone has to act on.
VERDICT_ORDER = ("failed", "interrupted", "passed", "skipped")


def worst_first(results: Iterable[CheckResult]) -> list[CheckResult]:
    return sorted(results, key=lambda result: VERDICT_ORDER.index(result.verdict))


def session_verdict(results: Iterable[CheckResult], interrupted: bool) -> str:
    """failed > interrupted > passed > skipped; an interrupted session is never 'passed'."""
    verdicts = {result.verdict for result in results}
    if "failed" in verdicts:
        return "failed"
    if interrupted or "interrupted" in verdicts:
        return "interrupted"
    return "passed" if "passed" in verdicts else "skipped"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def failure_rate(result: CheckResult) -> str:
    """'5.00% (max 1.00%)': the rate beside the threshold it is judged against."""
    text = f"{result.failure_rate:.2%}"
    if result.max_failure_rate is not None:
        text += f" (max {result.max_failure_rate:.2%})"
    return text


def ttft_p95(result: CheckResult) -> float | None:
    return result.ttft_ms.get("p95") if result.ttft_ms else None


def top_errors(result: CheckResult, limit: int) -> list[tuple[str, int]]:
    return list(result.errors.items())[:limit]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
