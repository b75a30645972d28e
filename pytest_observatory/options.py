"""Command-line options, their ini twins and environment fallbacks, resolved once per session.

Precedence is CLI > environment > ini, as in pytest-timeout: CI systems inject secrets through the
environment, while a repository pins its defaults in its ini file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .durations import parse_duration
from .mock.settings import MockSettings
from .redact import host_only, redact_url

MOCK_URL = "mock"


@dataclass(frozen=True)
class _Option:
    flag: str
    ini: str
    env: str
    help: str
    metavar: str


DEPLOYMENT_URL = _Option(
    "--deployment-url",
    "observatory_deployment_url",
    "OBSERVATORY_DEPLOYMENT_URL",
    "base URL of the OpenAI-compatible deployment under test (root or /v1), or 'mock' for the "
    "embedded mock gateway ('mock?failure_rate=0.05&latency=20ms' sets its knobs). Without it, "
    "observatory tests are skipped.",
    "URL",
)
API_KEY = _Option(
    "--deployment-api-key",
    "observatory_deployment_api_key",
    "OBSERVATORY_DEPLOYMENT_API_KEY",
    "API key sent as 'Authorization: Bearer <key>'; prefer the environment variable in CI. "
    "Never printed or stored.",
    "KEY",
)
MODELS = _Option(
    "--models",
    "observatory_models",
    "OBSERVATORY_MODELS",
    "comma-separated models that checks cycle through when their marker names none",
    "M1,M2",
)
DURATION = _Option(
    "--observatory-duration",
    "observatory_duration",
    "OBSERVATORY_DURATION",
    "override every check's duration, e.g. '20s' for a smoke run of 3-hour suites",
    "DURATION",
)
REPORT = _Option(
    "--observatory-report",
    "observatory_report",
    "OBSERVATORY_REPORT",
    "write a JSON report of every check to PATH",
    "PATH",
)
MAX_CONNECTIONS = _Option(
    "--observatory-max-connections",
    "observatory_max_connections",
    "OBSERVATORY_MAX_CONNECTIONS",
    "cap the session's connection pool, e.g. to mimic a client's pool limits (default: no cap, "
    "the checks' concurrency bounds connections); waits for a connection are reported as "
    "queue_ms, apart from latency",
    "N",
)
SLACK_WEBHOOK_URL = _Option(
    "--slack-webhook-url",
    "observatory_slack_webhook_url",
    "SLACK_WEBHOOK_URL",
    "post a summary of the session's checks to this Slack incoming webhook (the URL is a "
    "secret: prefer the environment variable; only its host is ever printed)",
    "URL",
)
SLACK_ON = _Option(
    "--slack-on",
    "observatory_slack_on",
    "OBSERVATORY_SLACK_ON",
    "when to post to Slack: 'always' (default) or 'failures' (a check failed or the run was "
    "interrupted)",
    "failures|always",
)
PROGRESS = _Option(
    "--observatory-progress",
    "observatory_progress",
    "OBSERVATORY_PROGRESS",
    "interval of the plain progress line of running checks when output is not a terminal "
    "(default 60s; 'off' for none); a terminal gets a live line refreshed every second",
    "INTERVAL",
)
ALL_OPTIONS = (
    DEPLOYMENT_URL,
    API_KEY,
    MODELS,
    DURATION,
    REPORT,
    MAX_CONNECTIONS,
    SLACK_WEBHOOK_URL,
    SLACK_ON,
    PROGRESS,
)
SLACK_ON_CHOICES = ("always", "failures")
DEFAULT_PROGRESS_S = 60.0


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("observatory", "long-running checks against an LLM deployment")
    for option in ALL_OPTIONS:
        group.addoption(
            option.flag,
            dest=_dest(option),
            default=None,
            metavar=option.metavar,
            help=f"{option.help} [env {option.env}, ini {option.ini}]",
        )
        parser.addini(option.ini, help=option.help, default="")


@dataclass(frozen=True)
class Settings:
    """Session-wide settings, validated once so no check trips over a bad value mid-run."""

    deployment_url: str | None
    api_key: str | None = field(default=None, repr=False)
    models: tuple[str, ...] = ()
    duration_override_s: float | None = None
    report_path: Path | None = None
    max_connections: int = 0
    mock: MockSettings | None = None  # the embedded gateway's knobs, with --deployment-url=mock
    slack_webhook_url: str | None = field(default=None, repr=False)
    slack_on: str = "always"
    progress_interval_s: float | None = DEFAULT_PROGRESS_S  # None: no progress lines

    @property
    def uses_mock(self) -> bool:
        return self.mock is not None

    @property
    def display_url(self) -> str | None:
        if self.deployment_url is None or self.uses_mock:
            return self.deployment_url
        return redact_url(self.deployment_url)


def resolve_settings(config: pytest.Config) -> Settings:
    """Read every option with its fallbacks; raise pytest.UsageError naming the bad source."""
    url, source = _raw(config, DEPLOYMENT_URL)
    mock = None if url is None else _check_url(url, source)
    models_text, source = _raw(config, MODELS)
    models: tuple[str, ...] = ()
    if models_text is not None:
        models = tuple(name.strip() for name in models_text.split(",") if name.strip())
        if not models:
            raise pytest.UsageError(f"{source}={models_text!r}: no model names in the list")
    elif mock is not None:
        models = mock.models
    duration_text, source = _raw(config, DURATION)
    override: float | None = None
    if duration_text is not None:
        override = _positive_duration(duration_text, source)
    report, _ = _raw(config, REPORT)
    connections_text, source = _raw(config, MAX_CONNECTIONS)
    max_connections = 0
    if connections_text is not None:
        if not connections_text.isdigit() or int(connections_text) < 1:
            raise pytest.UsageError(f"{source}={connections_text!r}: expected an integer >= 1")
        max_connections = int(connections_text)
    reporting = _reporting_settings(config)
    return Settings(
        deployment_url=url,
        api_key=_raw(config, API_KEY)[0],
        models=models,
        duration_override_s=override,
        report_path=Path(report) if report is not None else None,
        max_connections=max_connections,
        mock=mock,
        **reporting,
    )


def _reporting_settings(config: pytest.Config) -> dict[str, Any]:
    webhook, source = _raw(config, SLACK_WEBHOOK_URL)
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise pytest.UsageError(
                f"{source}={host_only(webhook)!r}: expected an http(s):// webhook URL"
            )
    slack_on, source = _raw(config, SLACK_ON)
    if slack_on is not None and slack_on not in SLACK_ON_CHOICES:
        raise pytest.UsageError(
            f"{source}={slack_on!r}: expected one of {', '.join(SLACK_ON_CHOICES)}"
        )
    progress_text, source = _raw(config, PROGRESS)
    progress: float | None = DEFAULT_PROGRESS_S
    if progress_text == "off":
        progress = None
    elif progress_text is not None:
        progress = _positive_duration(progress_text, source)
    return {
        "slack_webhook_url": webhook,
        "slack_on": slack_on or "always",
        "progress_interval_s": progress,
    }


def _positive_duration(text: str, source: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}={text!r}: {exc}") from None
    if seconds <= 0:
        raise pytest.UsageError(f"{source}={text!r}: must be > 0")
    return seconds


def _dest(option: _Option) -> str:
    return "observatory_" + option.flag.lstrip("-").replace("-", "_")


def _raw(config: pytest.Config, option: _Option) -> tuple[str | None, str]:
    """The value and where it came from (flag, env var or ini key), for error messages."""
    value = config.getoption(_dest(option))
    if isinstance(value, str) and value.strip():
        return value.strip(), option.flag
    value = os.environ.get(option.env, "").strip()
    if value:
        return value, option.env
    value = str(config.getini(option.ini)).strip()
    return (value or None), option.ini


def _check_url(url: str, source: str) -> MockSettings | None:
    """Validate the URL; for ``mock``, return the embedded gateway's knobs from its query."""
    if url.split("?")[0] == MOCK_URL:
        try:
            return MockSettings.from_query(urlsplit(url).query)
        except ValueError as exc:
            raise pytest.UsageError(f"{source}={url!r}: {exc}") from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise pytest.UsageError(
            f"{source}={redact_url(url)!r}: expected an http(s):// URL or 'mock'"
        )
    return None
