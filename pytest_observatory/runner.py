"""Turns observatory items into checks: parse at collection, validate at setup, take over the
call, and hand each CheckResult to the reporters.

pytest 9 fails an async test nobody claims, and pytest-asyncio swaps ``item.obj`` for a sync
wrapper while it runs; so the original function is kept from collection time and observatory
items are claimed in a ``tryfirst`` pytest_pyfunc_call, whatever async plugin is installed.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import functools
import inspect
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from .coordination import COORDINATOR_KEY, lock_notes, queued_s, running_meta
from .crash import STARTED_ATTR
from .engine import CheckRun, Probe
from .history.compare import COMPARISON_KEY
from .journal import Journal, journal_path
from .live import RUNNING_KEY
from .marker import MARKER_NAME, CheckSpec, MarkerError, parse_marker
from .options import Settings
from .reporting.failure_text import explain
from .result import CheckResult, utc_iso
from .runtime import DeploymentRuntime
from .sequential import FailFast
from .signals import StopOnSignal
from .stats import CheckRecorder
from .threads import DaemonThreadPool
from .verdict import judge

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
            item.stash[SPEC_KEY] = spec
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
        if not spec.models and "model" in _argnames(item):
            pytest.fail(
                f"{item.nodeid}: the check takes `model` but no models are set: "
                "pass --models=a,b (or OBSERVATORY_MODELS) or observatory(models=[...])",
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
        runtime = self._runtime
        runtime.set_request_timeout(spec.request_timeout_s)
        executor = DaemonThreadPool(spec.concurrency, "observatory-probe")
        probe = _make_probe(item, executor, runtime)
        recorder = CheckRecorder(spec.window_s, spec.duration_s, runtime.redact)
        run = CheckRun(spec, probe, recorder)
        fail_fast = FailFast(spec, lambda: run.elapsed_s, run.stop) if spec.fail_fast else None
        if fail_fast is not None:
            recorder.listen(fail_fast)
        journal = self._journal_for_checks()
        if journal is not None:
            journal.check_started(item.nodeid, spec)
            recorder.on_window_closed = lambda: journal.window_closed(
                self._result(item, run, spec, fail_fast)
            )
            recorder.on_new_error = functools.partial(journal.new_error, item.nodeid)
        running = self._config.stash.get(RUNNING_KEY, None)  # live progress (live.py)
        if running is not None:
            running.add(item.nodeid, run, runtime.loop)
        future = runtime.loop.submit(run.run())
        signals = StopOnSignal(run.interrupt)
        try:
            with signals:
                future.result()
        except pytest.skip.Exception:
            item.stash[RESULT_KEY] = self._result(item, run, spec, fail_fast, skipped=True)
            raise
        except BaseException as exc:
            # Ctrl-C or pytest-timeout in this thread: stop the probes and keep the figures.
            run.interrupt()
            concurrent.futures.wait([future], timeout=INTERRUPT_WAIT_S)
            result = item.stash[RESULT_KEY] = self._result(item, run, spec, fail_fast)
            if isinstance(exc, KeyboardInterrupt) and not is_worker(self._config):
                self._publish(result)  # no test report follows a KeyboardInterrupt
            raise
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        result = self._result(item, run, spec, fail_fast)
        if signals.received is not None:
            result = dataclasses.replace(
                result, notes=[*result.notes, f"stopped by {signals.received}"]
            )
        if journal is not None:
            journal.check_finished(result)
            if journal.error is not None:
                result = dataclasses.replace(result, notes=[*result.notes, journal.error])
        item.stash[RESULT_KEY] = result
        return result

    def _result(
        self,
        item: pytest.Item,
        run: CheckRun,
        spec: CheckSpec,
        fail_fast: FailFast | None,
        skipped: bool = False,
    ) -> CheckResult:
        result = judge(
            item.nodeid,
            spec,
            run.recorder,
            run.elapsed_s,
            interrupted=run.interrupted,
            load=run.load_summary(),
            notes=run.notes(),
            stopped_early=None if fail_fast is None else fail_fast.decision,
        )
        if skipped:
            result = dataclasses.replace(result, verdict="skipped", reasons=[])
        ended = time.time()
        result = dataclasses.replace(
            result,
            started_at=utc_iso(ended - run.elapsed_s),
            ended_at=utc_iso(ended),
            queued_s=queued_s(item),
            notes=result.notes + lock_notes(item),
        )
        comparison = self._config.stash.get(COMPARISON_KEY, None)
        return result if comparison is None else comparison.apply(result)


def _time_limit(spec: CheckSpec) -> float:
    return spec.duration_s + spec.request_timeout_s + TIMEOUT_GRACE_S


def _argnames(item: pytest.Item) -> tuple[str, ...]:
    # The names pytest itself passes to the test function (pytest_pyfunc_call does the same).
    return tuple(item._fixtureinfo.argnames)  # type: ignore[attr-defined]


def _make_probe(
    item: pytest.Function, executor: concurrent.futures.Executor, runtime: DeploymentRuntime
) -> Probe:
    """One call of the test body with its fixtures; `model` changes probe by probe."""
    func = item.stash[FUNCTION_KEY]
    argnames = _argnames(item)
    fixed = {name: item.funcargs[name] for name in argnames if name != "model"}
    takes_model = "model" in argnames

    def kwargs(model: str | None) -> dict[str, Any]:
        return {**fixed, "model": model} if takes_model else fixed

    if inspect.iscoroutinefunction(func):

        async def async_probe(model: str | None) -> None:
            await func(**kwargs(model))

        return async_probe

    loop = runtime.loop.loop

    async def sync_probe(model: str | None) -> None:
        # The copied context carries the probe's observer into the worker thread.
        call = functools.partial(contextvars.copy_context().run, func, **kwargs(model))
        await loop.run_in_executor(executor, call)

    return sync_probe
