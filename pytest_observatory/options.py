"""Command-line options, their ini twins and environment fallbacks, resolved once per session.

Precedence is CLI > environment > ini, as in pytest-timeout: CI systems inject secrets through the
environment, while a repository pins its defaults in its ini file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .catalog import LIST, Suite, SuiteNotFound, find_suites
from .durations import parse_duration
from .history.compare import RegressionLimit, parse_max_regression
from .locks import parse_lock_url
from .mock.settings import PUBLIC_KNOBS, MockSettings
from .redact import host_only, redact_url
from .target import Target, parse_target

MOCK_URL = "mock"
DEFAULT_MAX_CONCURRENT = 5
ON_DUPLICATE_CHOICES = ("skip", "fail", "wait")
DEFAULT_LOCK_DIR = Path(tempfile.gettempdir(), "pytest-observatory")
DEFAULT_HEALTH_PATH = "/health/liveliness"  # LiteLLM's; vLLM's is /health


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
EMBEDDING_MODELS = _Option(
    "--embedding-models",
    "observatory_embedding_models",
    "OBSERVATORY_EMBEDDING_MODELS",
    "comma-separated embedding models that checks taking `embedding_model` cycle through "
    "(against 'mock': its models)",
    "M1,M2",
)
HEALTH_PATH = _Option(
    "--deployment-health-path",
    "observatory_deployment_health_path",
    "OBSERVATORY_DEPLOYMENT_HEALTH_PATH",
    f"the gateway's health route, at its root, that deployment.health() asks (default "
    f"{DEFAULT_HEALTH_PATH}, LiteLLM's; vLLM's is /health)",
    "PATH",
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
HISTORY = _Option(
    "--observatory-history",
    "observatory_history",
    "OBSERVATORY_HISTORY",
    "append every check result to the SQLite history database at PATH (created if absent)",
    "PATH",
)
LABEL = _Option(
    "--observatory-label",
    "observatory_label",
    "OBSERVATORY_LABEL",
    "free-form label stored with this run's history rows, e.g. the gateway version under test",
    "LABEL",
)
BASELINE = _Option(
    "--observatory-baseline",
    "observatory_baseline",
    "OBSERVATORY_BASELINE",
    "compare each check with the history run labelled LABEL, or with the last passed run "
    "('last'), of the same node id and models; needs --observatory-history",
    "LABEL|last",
)
MAX_REGRESSION = _Option(
    "--observatory-max-regression",
    "observatory_max_regression",
    "OBSERVATORY_MAX_REGRESSION",
    "fail a check that regressed beyond these limits against the baseline, e.g. "
    "'p95=20%,failure_rate=+0.5pp' (metrics p50, p95, p99, ttft_p95: N% or +DURATION; "
    "failure_rate: +Npp); needs --observatory-baseline",
    "LIMITS",
)
HTML = _Option(
    "--observatory-html",
    "observatory_html",
    "OBSERVATORY_HTML",
    "write a self-contained HTML report with plots over time of every check to PATH",
    "PATH",
)
FAIL_FAST = _Option(
    "--observatory-fail-fast",
    "observatory_fail_fast",
    "OBSERVATORY_FAIL_FAST",
    "fail every check as soon as its verdict is settled or statistically conclusive instead of "
    "running its full duration (a check never passes early); a marker's fail_fast= wins. "
    "Env and ini take true/false",
    "",
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
LOCK_DIR = _Option(
    "--observatory-lock-dir",
    "observatory_lock_dir",
    "OBSERVATORY_LOCK_DIR",
    "directory of the file locks that every pytest process of this host shares for dedup and "
    "slots (default: pytest-observatory in the system temp directory)",
    "DIR",
)
LOCK_URL = _Option(
    "--observatory-lock-url",
    "observatory_lock_url",
    "OBSERVATORY_LOCK_URL",
    "share dedup and slots through Redis instead of local files, e.g. "
    "redis://host:6379/0?ttl=30s (needs pytest-observatory[redis])",
    "URL",
)
MAX_CONCURRENT = _Option(
    "--observatory-max-concurrent",
    "observatory_max_concurrent",
    "OBSERVATORY_MAX_CONCURRENT",
    f"at most N checks run at once across all processes sharing the locks; the others queue "
    f"in arrival order (default {DEFAULT_MAX_CONCURRENT})",
    "N",
)
ON_DUPLICATE = _Option(
    "--observatory-on-duplicate",
    "observatory_on_duplicate",
    "OBSERVATORY_ON_DUPLICATE",
    "what a check does when the same check already runs: skip (default), fail, or wait for it",
    "skip|fail|wait",
)
SUITE = _Option(
    "--observatory-suite",
    "observatory_suite",
    "OBSERVATORY_SUITE",
    "collect the named bundled suite(s), from any directory without paths: a name such as "
    "oai_azure_release or its alias TestOAIAzureRelease, a comma list, or 'all'; repeatable; "
    "'list' prints the catalog",
    "NAME",
)
ALL_OPTIONS = (
    DEPLOYMENT_URL,
    API_KEY,
    MODELS,
    DURATION,
    REPORT,
    MAX_CONNECTIONS,
    HISTORY,
    LABEL,
    BASELINE,
    MAX_REGRESSION,
    HTML,
    FAIL_FAST,
    SLACK_WEBHOOK_URL,
    SLACK_ON,
    PROGRESS,
    LOCK_DIR,
    LOCK_URL,
    MAX_CONCURRENT,
    ON_DUPLICATE,
    EMBEDDING_MODELS,
    HEALTH_PATH,
    SUITE,
)
BOOLEAN_OPTIONS = frozenset({FAIL_FAST})
REPEATABLE_OPTIONS = frozenset({SUITE})
TRUE_TEXTS = ("1", "true", "yes", "on")
FALSE_TEXTS = ("0", "false", "no", "off")
SLACK_ON_CHOICES = ("always", "failures")
DEFAULT_PROGRESS_S = 60.0


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("observatory", "long-running checks against an LLM deployment")
    for option in ALL_OPTIONS:
        value: dict[str, str] = (
            {"action": "store_true"} if option in BOOLEAN_OPTIONS else {"metavar": option.metavar}
        )
        if option in REPEATABLE_OPTIONS:
            value["action"] = "append"
        group.addoption(
            option.flag,
            dest=_dest(option),
            default=None,
            help=f"{option.help} [env {option.env}, ini {option.ini}]",
            **value,
        )
        parser.addini(option.ini, help=option.help, default="")
    group.addoption(
        "--observatory-status",
        action="store_true",
        help="print the checks that run and wait on this host (or the Redis of "
        "--observatory-lock-url) and exit without running tests",
    )
    group.addoption("--json", action="store_true", help="with --observatory-status: print JSON")


@dataclass(frozen=True)
class Settings:
    """Session-wide settings, validated once so no check trips over a bad value mid-run."""

    deployment_url: str | None
    api_key: str | None = field(default=None, repr=False)
    models: tuple[str, ...] = ()
    duration_override_s: float | None = None
    report_path: Path | None = None
    max_connections: int = 0
    fail_fast: bool = False
    mock: MockSettings | None = None  # the embedded gateway's knobs, with --deployment-url=mock
    target: Target | None = None  # a real deployment's URL, taken apart
    history_path: Path | None = None
    label: str | None = None
    baseline: str | None = None  # a label, or "last"
    max_regression: tuple[RegressionLimit, ...] = ()
    html_path: Path | None = None
    slack_webhook_url: str | None = field(default=None, repr=False)
    slack_on: str = "always"
    progress_interval_s: float | None = DEFAULT_PROGRESS_S  # None: no progress lines
    lock_dir: Path = field(default_factory=lambda: DEFAULT_LOCK_DIR)
    lock_url: str | None = field(default=None, repr=False)  # may carry a Redis password
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    on_duplicate: str = "skip"
    embedding_models: tuple[str, ...] = ()
    health_path: str = DEFAULT_HEALTH_PATH
    suites: tuple[Suite, ...] = ()  # bundled suites to collect (--observatory-suite)

    @property
    def uses_mock(self) -> bool:
        return self.mock is not None

    @property
    def display_url(self) -> str | None:
        """The URL as every reporter shows it: credentials and secret query values masked."""
        if self.deployment_url is None:
            return None
        if self.target is not None:
            return self.target.display
        return redact_url(self.deployment_url, public=PUBLIC_KNOBS)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every value that must never be printed or stored: the API key (also the mock's),
        the URL's credentials and query values, the Slack webhook, the Redis password."""
        target_secrets = self.target.secrets if self.target else ()
        mock_key = self.mock.api_key if self.mock else None
        lock_password = urlsplit(self.lock_url).password if self.lock_url else None
        return (
            self.api_key,
            mock_key,
            *target_secrets,
            self.slack_webhook_url,
            lock_password,
        )


def resolve_settings(config: pytest.Config) -> Settings:
    """Read every option with its fallbacks; raise pytest.UsageError naming the bad source."""
    api_key = _raw(config, API_KEY)[0]
    url, source = _raw(config, DEPLOYMENT_URL)
    mock, target = (None, None) if url is None else _check_url(url, source, api_key)
    models = _model_list(config, MODELS, mock)
    duration_text, source = _raw(config, DURATION)
    override: float | None = None
    if duration_text is not None:
        override = _positive_duration(duration_text, source)
    report, source = _raw(config, REPORT)
    report_path = None if report is None else _writable_report(report, source)
    max_connections = _count(config, MAX_CONNECTIONS)
    fail_fast = _boolean(*_raw(config, FAIL_FAST))
    reporting = _reporting_settings(config)
    suites_text, source = _raw(config, SUITE)
    suites: tuple[Suite, ...] = ()
    if suites_text is not None:
        names = [name for name in suites_text.split(",") if name.strip()]
        if not names:
            raise pytest.UsageError(f"{source}={suites_text!r}: no suite names in the list")
        try:
            suites = find_suites(names)
        except SuiteNotFound as exc:
            raise pytest.UsageError(f"{source}={suites_text!r}: {exc}, 'all' or 'list'") from None
    return Settings(
        deployment_url=url,
        api_key=api_key,
        models=models,
        duration_override_s=override,
        report_path=report_path,
        max_connections=max_connections,
        fail_fast=fail_fast,
        suites=suites,
        mock=mock,
        target=target,
        **_history_settings(config),
        **reporting,
        **_coordination_settings(config),
        **_api_settings(config, mock),
    )


def _model_list(
    config: pytest.Config, option: _Option, mock: MockSettings | None
) -> tuple[str, ...]:
    """A comma list of models; unset against the mock, its models."""
    text, source = _raw(config, option)
    if text is None:
        return mock.models if mock is not None else ()
    models = tuple(name.strip() for name in text.split(",") if name.strip())
    if not models:
        raise pytest.UsageError(f"{source}={text!r}: no model names in the list")
    return models


def _api_settings(config: pytest.Config, mock: MockSettings | None) -> dict[str, Any]:
    """The embedding models and the health route the API helpers and suites use."""
    path, source = _raw(config, HEALTH_PATH)
    if path is not None and (not path.startswith("/") or "://" in path or "?" in path):
        raise pytest.UsageError(
            f"{source}={path!r}: expected a path at the gateway's root, e.g. /health"
        )
    return {
        "embedding_models": _model_list(config, EMBEDDING_MODELS, mock),
        "health_path": path or DEFAULT_HEALTH_PATH,
    }


def suite_listing_requested(config: pytest.Config) -> bool:
    """`--observatory-suite=list` (or its env/ini twin): print the catalog, run nothing."""
    text = _raw(config, SUITE)[0]
    return text is not None and text.lower() == LIST


def _history_settings(config: pytest.Config) -> dict[str, Any]:
    """History, baseline and HTML options; a baseline needs a history, limits need a baseline."""
    history, _ = _raw(config, HISTORY)
    baseline, baseline_source = _raw(config, BASELINE)
    if baseline is not None and history is None:
        raise pytest.UsageError(
            f"{baseline_source}={baseline!r}: needs a history database (--observatory-history)"
        )
    limits_text, source = _raw(config, MAX_REGRESSION)
    limits: tuple[RegressionLimit, ...] = ()
    if limits_text is not None:
        try:
            limits = parse_max_regression(limits_text)
        except ValueError as exc:
            raise pytest.UsageError(f"{source}={limits_text!r}: {exc}") from None
        if baseline is None:
            raise pytest.UsageError(
                f"{source}={limits_text!r}: needs a baseline (--observatory-baseline)"
            )
    html, source = _raw(config, HTML)
    return {
        "history_path": Path(history) if history is not None else None,
        "label": _raw(config, LABEL)[0],
        "baseline": baseline,
        "max_regression": limits,
        "html_path": None if html is None else _writable_report(html, source),
    }


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


def _coordination_settings(config: pytest.Config) -> dict[str, Any]:
    """Dedup and slots: the lock back-end, the host's limit and the duplicate policy."""
    lock_dir, _ = _raw(config, LOCK_DIR)
    lock_url, source = _raw(config, LOCK_URL)
    if lock_url is not None:
        try:
            parse_lock_url(lock_url)
        except ValueError as exc:
            raise pytest.UsageError(f"{source}={redact_url(lock_url)!r}: {exc}") from None
    on_duplicate, source = _raw(config, ON_DUPLICATE)
    if on_duplicate is not None and on_duplicate not in ON_DUPLICATE_CHOICES:
        raise pytest.UsageError(
            f"{source}={on_duplicate!r}: expected one of {', '.join(ON_DUPLICATE_CHOICES)}"
        )
    return {
        "lock_dir": DEFAULT_LOCK_DIR if lock_dir is None else Path(lock_dir),
        "lock_url": lock_url,
        "max_concurrent": _count(config, MAX_CONCURRENT) or DEFAULT_MAX_CONCURRENT,
        "on_duplicate": on_duplicate or "skip",
    }


def _count(config: pytest.Config, option: _Option) -> int:
    """A whole number >= 1, or 0 when the option is not set."""
    text, source = _raw(config, option)
    if text is None:
        return 0
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"{source}={text!r}: expected an integer >= 1")
    return int(text)


def _dest(option: _Option) -> str:
    return "observatory_" + option.flag.lstrip("-").replace("-", "_")


def _raw(config: pytest.Config, option: _Option) -> tuple[str | None, str]:
    """The value and where it came from (flag, env var or ini key), for error messages."""
    value = config.getoption(_dest(option))
    if isinstance(value, list):  # a repeatable option: its values as one comma list
        value = ",".join(value)
    if value is True:  # a boolean flag given on the command line
        return "true", option.flag
    if isinstance(value, str) and value.strip():
        return value.strip(), option.flag
    value = os.environ.get(option.env, "").strip()
    if value:
        return value, option.env
    value = str(config.getini(option.ini)).strip()
    return (value or None), option.ini


def _boolean(text: str | None, source: str) -> bool:
    if text is None:
        return False
    if text.lower() in TRUE_TEXTS:
        return True
    if text.lower() in FALSE_TEXTS:
        return False
    raise pytest.UsageError(f"{source}={text!r}: expected true or false")


def _check_url(
    url: str, source: str, api_key: str | None
) -> tuple[MockSettings | None, Target | None]:
    """Validate the URL: the embedded gateway's knobs for ``mock``, else the taken-apart URL."""
    if url.split("?")[0] == MOCK_URL:
        try:
            return MockSettings.from_query(urlsplit(url).query), None
        except ValueError as exc:
            shown = redact_url(url, public=PUBLIC_KNOBS)
            raise pytest.UsageError(f"{source}={shown!r}: {exc}") from None
    try:
        target = parse_target(url)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}={redact_url(url)!r}: {exc}") from None
    if target.basic_auth is not None and api_key:
        raise pytest.UsageError(
            f"{source}={target.display!r}: has credentials in the URL and an API key is set "
            f"too ({API_KEY.flag} / {API_KEY.env}); use one of them"
        )
    return None, target


def _writable_report(text: str, source: str) -> Path:
    """Prove the report can be written before any check runs: a 3-hour run that ends without
    its report must not be found out at the end."""
    path = Path(text)
    if path.is_dir():
        raise pytest.UsageError(f"{source}={text!r}: is a directory; give a file path")
    probe = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise pytest.UsageError(f"{source}={text!r}: cannot write there ({reason})") from None
    return path
