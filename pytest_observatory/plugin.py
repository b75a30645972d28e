"""Wiring only: options, hooks, marker, fixtures. Behaviour lives in the modules named here."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest

from . import hookspecs, status
from .catalog import catalog_lines, collect_suites
from .coordination import COORDINATOR_KEY, Coordinator
from .crash import CrashWatch
from .history.compare import COMPARISON_KEY
from .marker import MARKER_HELP
from .options import Settings, add_options, resolve_settings, suite_listing_requested
from .redact import host_only
from .reporting.github import GitHubStepSummary, step_summary_path
from .reporting.json_report import JsonReport
from .reporting.terminal import TerminalSummary
from .runner import FUNCTION_KEY, SPEC_KEY, TIMEOUT_GRACE_S, CheckRunner, is_worker
from .runtime import DeploymentRuntime
from .signals import XdistController

if TYPE_CHECKING:
    import httpx

    from .client import AsyncDeployment, SyncDeployment

SETTINGS_KEY = pytest.StashKey[Settings]()
RUNTIME_KEY = pytest.StashKey[DeploymentRuntime]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("observatory_status"):
        return status.main(config, resolve_settings(config))
    if suite_listing_requested(config):
        print("\n".join(catalog_lines()))
        return 0
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = config.stash[SETTINGS_KEY] = resolve_settings(config)
    if settings.suites:
        collect_suites(config, settings.suites)
    runtime = config.stash[RUNTIME_KEY] = DeploymentRuntime(settings)
    coordinator = config.stash[COORDINATOR_KEY] = Coordinator(config, settings)
    config.add_cleanup(coordinator.close)
    if settings.baseline is not None:
        from .history.configure import load_comparison  # sqlite3 only when configured

        config.stash[COMPARISON_KEY] = load_comparison(settings)
    config.pluginmanager.register(CheckRunner(config, settings, runtime), "observatory-runner")
    # Reporters are imported only when configured: a plain unit-test run loads none of them.
    if getattr(config.option, "xmlpath", None):
        from .reporting.junit import JunitProperties

        config.pluginmanager.register(JunitProperties(), "observatory-junit")
    progress = settings.progress_interval_s
    if settings.deployment_url is not None and progress is not None and config.get_verbosity() >= 0:
        from .reporting.progress import register_progress

        register_progress(config, progress)
    if not is_worker(config):
        if settings.deployment_url is not None and _distributed(config):
            config.pluginmanager.register(XdistController(config), "observatory-xdist")
            config.pluginmanager.register(CrashWatch(config), "observatory-crash")
        config.pluginmanager.register(TerminalSummary(settings.display_url), "observatory-terminal")
        if settings.report_path is not None:
            config.pluginmanager.register(
                JsonReport(settings.report_path, settings.display_url), "observatory-json"
            )
        if settings.html_path is not None:
            from .reporting.html import html_report

            config.pluginmanager.register(html_report(settings), "observatory-html")
        if settings.history_path is not None:
            from .history.configure import history_writer

            config.pluginmanager.register(history_writer(settings), "observatory-history")
        if settings.slack_webhook_url is not None:
            from .reporting.slack import SlackReporter

            config.pluginmanager.register(SlackReporter(settings), "observatory-slack")
        step_summary = step_summary_path()
        if step_summary is not None:
            summary = GitHubStepSummary(step_summary, settings.display_url)
            config.pluginmanager.register(summary, "observatory-github")


def _distributed(config: pytest.Config) -> bool:
    """This process is an xdist controller (xdist registers its session plugin after us)."""
    return config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no"


def pytest_unconfigure(config: pytest.Config) -> None:
    runtime = config.stash.get(RUNTIME_KEY, None)
    if runtime is not None:
        runtime.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS_KEY]
    if settings.deployment_url is None:
        return ["observatory: no --deployment-url, checks will be skipped"]
    parts = [f"deployment={settings.display_url}"]
    if settings.models:
        parts.append("models=" + ",".join(settings.models))
    if settings.suites:
        parts.append("suites=" + ",".join(suite.name for suite in settings.suites))
    if settings.duration_override_s is not None:
        parts.append(f"duration override={settings.duration_override_s:g}s")
    if settings.report_path is not None:
        parts.append(f"report={settings.report_path}")
    if settings.max_connections:
        parts.append(f"max connections={settings.max_connections}")
    if settings.history_path is not None:
        parts.append(f"history={settings.history_path}")
    if settings.baseline is not None:
        limits = ",".join(f"{limit.name}={limit.text}" for limit in settings.max_regression)
        parts.append(f"baseline={settings.baseline}" + (f" (max {limits})" if limits else ""))
    if settings.html_path is not None:
        parts.append(f"html={settings.html_path}")
    if config.pluginmanager.hasplugin("timeout"):
        parts.append(f"check timeout=duration+request_timeout+{TIMEOUT_GRACE_S:g}s (or its marker)")
    if settings.fail_fast:
        parts.append("fail-fast")
    if settings.slack_webhook_url is not None:
        parts.append(f"slack={host_only(settings.slack_webhook_url)} ({settings.slack_on})")
    return ["observatory: " + ", ".join(parts)]


@pytest.fixture(scope="session")
def observatory_client(pytestconfig: pytest.Config) -> httpx.AsyncClient:
    """The one httpx.AsyncClient of the session (base URL, bearer key, timeouts, keep-alive).

    It lives on the plugin's event loop: use it from observatory checks. Closed at session end.
    """
    return pytestconfig.stash[RUNTIME_KEY].client


@pytest.fixture
def deployment(request: pytest.FixtureRequest) -> AsyncDeployment | SyncDeployment:
    """OpenAI-compatible helpers over the session client: awaitable in ``async def`` checks,
    blocking in plain ``def`` ones. The helper objects live for the whole session."""
    runtime = request.config.stash[RUNTIME_KEY]
    function = request.node.stash.get(FUNCTION_KEY, None) or request.function
    if inspect.iscoroutinefunction(function):
        return runtime.async_deployment
    return runtime.sync_deployment


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    """The model of the current probe: observatory checks cycle through their models."""
    spec = request.node.stash.get(SPEC_KEY, None)
    models = spec.models if spec is not None else request.config.stash[SETTINGS_KEY].models
    if not models:
        pytest.fail("no models: pass --models=a,b or observatory(models=[...])", pytrace=False)
    return models[0]


@pytest.fixture
def embedding_model(request: pytest.FixtureRequest) -> str:
    """The embedding model of the current probe: checks cycle through --embedding-models."""
    models = request.config.stash[SETTINGS_KEY].embedding_models
    spec = request.node.stash.get(SPEC_KEY, None)
    if spec is not None and "model" not in request.fixturenames:
        models = spec.models  # the check cycles the embedding models itself (runner.py)
    if not models:
        pytest.fail("no embedding models: pass --embedding-models=a,b", pytrace=False)
    return models[0]
