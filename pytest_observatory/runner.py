"""Turns observatory items into checks: parse at collection, validate at setup, take over the
call, and hand each CheckResult to the reporters.

pytest 9 fails an async test nobody claims, and pytest-asyncio swaps ``item.obj`` for a sync
wrapper while it runs; so the original function is kept from collection time and observatory
items are claimed in a ``tryfirst`` pytest_pyfunc_call, whatever async plugin is installed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import Any

import pytest

from .coordination import COORDINATOR_KEY, running_meta
from .crash import STARTED_ATTR
from .history.compare import COMPARISON_KEY
from .journal import Journal, journal_path
from .marker import MARKER_NAME, CheckSpec, MarkerError, parse_marker
from .options import Settings
from .reporting.failure_text import explain
from .result import CheckResult
from .runtime import DeploymentRuntime

FUNCTION_KEY = pytest.StashKey[Callable[..., Any]]()
SPEC_KEY = pytest.StashKey[CheckSpec]()
SPEC_ERROR_KEY = pytest.StashKey[str]()
RESULT_KEY = pytest.StashKey[CheckResult]()
REPORT_ATTR = "observatory_check"
TIMEOUT_GRACE_S = 30.0
INTERRUPT_WAIT_S = 10.0


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class CheckRunner:
    def __init__(self, config: pytest.Config, settings: Settings, runtime: DeploymentRuntime):
        self._config = config
        self._settings = settings
        self._runtime = runtime
        self._journal: Journal | None = None

    def _journal_for_checks(self) -> Journal | None:
        """Opened with the first check of the process, so plain test runs write nothing."""
        if self._journal is None:
            path = journal_path(self._config, self._settings.report_path)
            if path is not None:
                self._journal = Journal(path, self._settings.display_url)
        return self._journal

    def pytest_sessionfinish(self) -> None:
        if self._journal is not None:
            self._journal.close()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        has_timeout = self._config.pluginmanager.hasplugin("timeout")
        for item in items:
            mark = item.get_closest_marker(MARKER_NAME)
            if mark is None or not isinstance(item, pytest.Function):
                continue
            item.stash[FUNCTION_KEY] = item.obj
            try:
                spec = parse_marker(mark, self._settings)
            except MarkerError as exc:
                item.stash[SPEC_ERROR_KEY] = f"{item.nodeid}: observatory marker: {exc}"
                continue
            item.stash[SPEC_KEY] = spec = _embedding_check(spec, mark, self._settings, item)
            if self._settings.deployment_url is None:
                item.add_marker(pytest.mark.skip(reason="no --deployment-url"))
            elif has_timeout and item.get_closest_marker("timeout") is None:
                # pytest-timeout reads the marker at run time; a global --timeout must not cut
                # a 3-hour check short, and a hung one must still end.
                # func_only: a wait for a slot in setup is not part of the check's time.
                item.add_marker(pytest.mark.timeout(_time_limit(spec), func_only=True))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        error = item.stash.get(SPEC_ERROR_KEY, None)
        if error is not None:
            pytest.fail(error, pytrace=False)
        spec = item.stash.get(SPEC_KEY, None)
        if spec is None or self._settings.deployment_url is None:
            return  # not a check, or one that will be skipped
        if not spec.models and "model" in argnames(item):
            pytest.fail(
                f"{item.nodeid}: the check takes `model` but no models are set: "
                "pass --models=a,b (or OBSERVATORY_MODELS) or observatory(models=[...])",
                pytrace=False,
            )
        if "embedding_model" in argnames(item) and not (
            self._settings.embedding_models if "model" in argnames(item) else spec.models
        ):
            pytest.fail(
                f"{item.nodeid}: the check takes `embedding_model` but no embedding models are "
                "set: pass --embedding-models=a,b (or OBSERVATORY_EMBEDDING_MODELS)",
                pytrace=False,
            )
        # Coordination: the check's identity lock and a host slot (skip, fail or wait here).
        self._config.stash[COORDINATOR_KEY].admit(item, spec, _time_limit(spec))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self._config.stash[COORDINATOR_KEY].leave(item)  # coordination: free slot and identity

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        spec = pyfuncitem.stash.get(SPEC_KEY, None)
        if spec is None:
            return None
        result = self._run_check(pyfuncitem, spec)
        if result.verdict == "failed":
            pytest.fail(explain(result), pytrace=False)
        if result.verdict == "interrupted":  # by a signal: end the session, reporters still run
            pyfuncitem.session.shouldstop = f"observatory: {result.notes[-1]}"
            pytest.fail(explain(result), pytrace=False)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        result = item.stash.get(RESULT_KEY, None) if call.when == "call" else None
        spec = item.stash.get(SPEC_KEY, None)
        if result is None and spec is not None and call.when == "setup" and report.skipped:
            result = CheckResult(item.nodeid, "skipped", max_failure_rate=spec.max_failure_rate)
        if result is not None:
            setattr(report, REPORT_ATTR, result.to_dict())
        elif call.when == "setup" and report.passed and running_meta(item):
            setattr(report, STARTED_ATTR, running_meta(item))  # for crash.py on the controller
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the controller (or a run without xdist): publish results carried by reports."""
        data = getattr(report, REPORT_ATTR, None)
        if data is not None and not is_worker(self._config):
            self._publish(CheckResult.from_dict(data))

    def _publish(self, result: CheckResult) -> None:
        self._config.hook.pytest_observatory_check_finished(config=self._config, result=result)

    def _run_check(self, item: pytest.Function, spec: CheckSpec) -> CheckResult:
        # The engine (and asyncio) load with the first check: a repository's plain unit-test
        # run must not pay for them.
        from .execution import run_check

        return run_check(
            item,
            spec,
            self._runtime,
            self._journal_for_checks(),
            self._config.stash.get(COMPARISON_KEY, None),
            publish=None if is_worker(self._config) else self._publish,
        )


def _embedding_check(
    spec: CheckSpec, mark: pytest.Mark, settings: Settings, item: pytest.Item
) -> CheckSpec:
    """A check that takes ``embedding_model`` and not ``model`` cycles the embedding models
    (unless its marker names models): its per-model figures are theirs."""
    names = argnames(item)
    if "embedding_model" not in names or "model" in names or mark.kwargs.get("models"):
        return spec
    return dataclasses.replace(spec, models=settings.embedding_models)


def _time_limit(spec: CheckSpec) -> float:
    return spec.duration_s + spec.request_timeout_s + TIMEOUT_GRACE_S


def argnames(item: pytest.Item) -> tuple[str, ...]:
    # The names pytest itself passes to the test function (pytest_pyfunc_call does the same).
    return tuple(item._fixtureinfo.argnames)  # type: ignore[attr-defined]
