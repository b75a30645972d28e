"""``--slack-webhook-url``: one Slack message per session, posted by the controller at the
terminal-summary stage (so an interrupted run posts too, marked so).

The message is Block Kit (a header with the session's verdict, a context line, one section per
check, worst first) plus a plain-text ``text`` fallback for notifications, both kept inside
Slack's limits: 50 blocks, 150 characters of header, 3000 per section text; what does not fit is
cut with "…and N more". A conftest may replace the body (``pytest_observatory_slack_payload``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..durations import format_duration
from ..options import Settings
from ..redact import host_only, scrub
from ..result import CheckResult
from . import figures
from .post import post_json

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
TEXT_CHARS = 3000
ERROR_CHARS = 300
TOP_ERRORS = 5
QUIETEST_SHOWN = -1  # the outcome line shows with -q, like pytest's own summary; -qq hides it
EMOJI = {
    "passed": ":white_check_mark:",
    "failed": ":x:",
    "interrupted": ":warning:",
    "skipped": ":fast_forward:",
}


class SlackReporter:
    def __init__(self, settings: Settings) -> None:
        assert settings.slack_webhook_url is not None
        self._url = settings.slack_webhook_url
        self._post_when = settings.slack_on
        self._deployment = host_only(settings.deployment_url) if settings.deployment_url else None
        self._secrets = (settings.api_key, self._url, _path(self._url))
        self._results: list[CheckResult] = []
        self._interrupted = False

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        self._results.append(result)

    @pytest.hookimpl(trylast=True)
    def pytest_observatory_slack_payload(self, results: list[CheckResult]) -> dict[str, Any]:
        return build_message(results, self._deployment, self._interrupted)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
    ) -> None:
        if not self._results:
            return
        self._interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        target = host_only(self._url)
        verdict = figures.session_verdict(self._results, self._interrupted)
        if self._post_when == "failures" and verdict in ("passed", "skipped"):
            if config.get_verbosity() >= QUIETEST_SHOWN:
                terminalreporter.write_sep("-", "observatory Slack: nothing to post (no failures)")
            return
        payload = config.hook.pytest_observatory_slack_payload(
            config=config, results=list(self._results)
        )
        body = scrub(json.dumps(payload, ensure_ascii=False), self._secrets).encode("utf-8")
        outcome = post_json(self._url, body, self._secrets)
        tries = f"{outcome.attempts} attempt{'s' if outcome.attempts > 1 else ''}"
        if outcome.ok:
            if config.get_verbosity() >= QUIETEST_SHOWN:
                terminalreporter.write_sep(
                    "-", f"observatory Slack: posted to {target} ({outcome.detail}, {tries})"
                )
        else:
            terminalreporter.write_sep(
                "-",
                f"observatory Slack: NOT posted to {target}: {outcome.detail} "
                f"({tries} in {outcome.elapsed_s:.1f}s)",
                yellow=True,
            )


def build_message(
    results: list[CheckResult], deployment: str | None, interrupted: bool
) -> dict[str, Any]:
    """The built-in message: Block Kit blocks and the plain-text fallback."""
    ordered = figures.worst_first(results)
    verdict = figures.session_verdict(results, interrupted)
    counts = ", ".join(
        f"{sum(r.verdict == name for r in results)} {name}"
        for name in figures.VERDICT_ORDER
        if any(r.verdict == name for r in results)
    )
    title = f"{EMOJI[verdict]} pytest-observatory: {verdict.upper()} ({counts})"
    where = f"deployment: {deployment or '(none)'}"
    if interrupted:
        where += " · run interrupted: figures up to the interruption"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(figures.clip(title, HEADER_CHARS))},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(where)}]},
    ]
    room = MAX_BLOCKS - len(blocks)
    shown = ordered if len(ordered) <= room else ordered[: room - 1]
    blocks += [_section(_check_text(result)) for result in shown]
    if len(shown) < len(ordered):
        blocks.append(_section(f"…and {len(ordered) - len(shown)} more checks"))
    lines = [_escape(_check_line(result)) for result in ordered]
    fallback = _fit([title, _escape(where)], TEXT_CHARS, "checks", lines)
    return {"text": fallback, "blocks": blocks}


def _check_text(result: CheckResult) -> str:
    head = [f"{EMOJI[result.verdict]} *{result.verdict.upper()}* `{_escape(result.nodeid)}`"]
    if result.verdict == "skipped" and not result.probes:
        return head[0]
    models = ", ".join(result.models) or "-"
    latency = result.latency_ms
    head.append(
        f"models: {_escape(models)} · duration {format_duration(result.duration_s)} · "
        f"probes {result.probes}"
    )
    figures_line = (
        f"failure rate {figures.failure_rate(result)} · p50 {figures.ms(latency.get('p50'))} · "
        f"p95 {figures.ms(latency.get('p95'))} · p99 {figures.ms(latency.get('p99'))}"
    )
    if result.ttft_ms:
        figures_line += f" · TTFT p95 {figures.ms(figures.ttft_p95(result))}"
    head.append(figures_line)
    head += [f"reason: {_escape(reason)}" for reason in result.reasons]
    if result.onset:
        head.append(f"onset: {_escape(result.onset['summary'])}")
    details: list[str] = []
    if result.verdict != "passed" and result.errors:
        details.append("top errors:")
        details += [
            f"• {count} × {_escape(figures.clip(message, ERROR_CHARS))}"
            for message, count in figures.top_errors(result, TOP_ERRORS)
        ]
        if len(result.errors) > TOP_ERRORS:
            details.append(f"…and {len(result.errors) - TOP_ERRORS} more error messages")
        first = result.first_failure
        if first:
            on_model = f" on {_escape(first['model'])}" if first["model"] else ""
            details.append(
                f"first failure: {format_duration(first['t_s'])} after start{on_model}: "
                f"{_escape(figures.clip(first['error'], ERROR_CHARS))}"
            )
    return _fit(head, SECTION_CHARS, "lines", details)


def _check_line(result: CheckResult) -> str:
    line = f"{result.verdict.upper()} {result.nodeid}"
    if result.probes:
        line += (
            f": {result.probes} probes, failure rate {figures.failure_rate(result)}, "
            f"p95 {figures.ms(result.latency_ms.get('p95'))}"
        )
    if result.verdict != "passed" and result.errors:
        message, count = figures.top_errors(result, 1)[0]
        line += f"; top error: {count} × {figures.clip(message, ERROR_CHARS)}"
    return line


def _fit(head: list[str], limit: int, what: str, rest: list[str]) -> str:
    """Join lines up to ``limit`` characters; what is cut becomes "…and N more <what>"."""
    lines = [figures.clip(line, limit // 2) for line in head]
    length = len("\n".join(lines))
    for index, line in enumerate(rest):
        left_after = len(rest) - index - 1
        reserve = len(f"\n…and {left_after} more {what}") if left_after else 0
        if length + 1 + len(line) + reserve > limit:
            lines.append(f"…and {len(rest) - index} more {what}")
            break
        lines.append(line)
        length += 1 + len(line)
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _escape(text: str) -> str:
    """Slack mrkdwn gives &, < and > a meaning (links, mentions): show them as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _path(url: str) -> str:
    # The path of an incoming webhook (/services/T.../B.../secret) is its credential.
    path = urlsplit(url).path
    return path if len(path.strip("/")) >= 8 else ""
