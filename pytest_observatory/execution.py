"""One check's execution: the engine on the session loop with its recorder and listeners (fail
fast, journal, live progress), under the signal handlers, judged into a CheckResult.

Imported with the first check (runner.py): a repository's plain unit-test run never loads the
engine, asyncio or the verdict's statistics.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import functools
import gc
import inspect
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from .coordination import lock_notes, queued_s
from .engine import CheckRun, Probe
from .history.compare import Comparison
from .journal import Journal
from .live import RUNNING_KEY
from .marker import CheckSpec
from .result import CheckResult, utc_iso
from .runner import FUNCTION_KEY, INTERRUPT_WAIT_S, RESULT_KEY, argnames
from .runtime import DeploymentRuntime
from .sequential import FailFast
from .signals import StopOnSignal
from .stats import CheckRecorder
from .threads import DaemonThreadPool
from .verdict import judge


def run_check(
    item: pytest.Function,
    spec: CheckSpec,
    runtime: DeploymentRuntime,
    journal: Journal | None,
    comparison: Comparison | None,
    publish: Callable[[CheckResult], None] | None,
) -> CheckResult:
    """Run the check to its end, an interrupt or a signal; ``publish`` (on the reporting
    process) gets the result of a check cut short by KeyboardInterrupt, which no test report
    follows."""

    def result_now(skipped: bool = False) -> CheckResult:
        return _result(item, run, spec, fail_fast, comparison, skipped)

    runtime.set_request_timeout(spec.request_timeout_s)
    executor = DaemonThreadPool(spec.concurrency, "observatory-probe")
    probe = _make_probe(item, executor, runtime)
    recorder = CheckRecorder(spec.window_s, spec.duration_s, runtime.redact)
    run = CheckRun(spec, probe, recorder)
    fail_fast = FailFast(spec, lambda: run.elapsed_s, run.stop) if spec.fail_fast else None
    if fail_fast is not None:
        recorder.listen(fail_fast)
    if journal is not None:
        journal.check_started(item.nodeid, spec)
        recorder.on_window_closed = lambda: journal.window_closed(result_now())
        recorder.on_new_error = functools.partial(journal.new_error, item.nodeid)
    running = item.config.stash.get(RUNNING_KEY, None)  # live progress (live.py)
    if running is not None:
        running.add(item.nodeid, run, runtime.loop)
    # Full garbage collections held the probe loop for 200-400 ms at 3,000 probes/s (none with
    # the collector off; bench/README.md). Frozen, the session's objects from before the check
    # (pytest's included) are left out of every collection while it runs.
    gc.freeze()
    future = runtime.loop.submit(run.run())
    signals = StopOnSignal(run.interrupt)
    try:
        with signals:
            future.result()
    except pytest.skip.Exception:
        item.stash[RESULT_KEY] = result_now(skipped=True)
        raise
    except BaseException as exc:
        # Ctrl-C or pytest-timeout in this thread: stop the probes and keep the figures.
        run.interrupt()
        concurrent.futures.wait([future], timeout=INTERRUPT_WAIT_S)
        result = item.stash[RESULT_KEY] = result_now()
        if isinstance(exc, KeyboardInterrupt) and publish is not None:
            publish(result)
        raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        gc.unfreeze()
    result = result_now()
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
    item: pytest.Item,
    run: CheckRun,
    spec: CheckSpec,
    fail_fast: FailFast | None,
    comparison: Comparison | None,
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
    return result if comparison is None else comparison.apply(result)


def _make_probe(
    item: pytest.Function, executor: concurrent.futures.Executor, runtime: DeploymentRuntime
) -> Probe:
    """One call of the test body with its fixtures; `model` changes probe by probe, and so
    does `embedding_model` (the probe's model if the check takes no `model`, else the next of
    the embedding models)."""
    func = item.stash[FUNCTION_KEY]
    names = argnames(item)
    per_probe = ("model", "embedding_model")
    fixed = {name: item.funcargs[name] for name in names if name not in per_probe}
    cycled = next((name for name in per_probe if name in names), None)
    embedding = None
    if cycled == "model" and "embedding_model" in names:
        embedding = itertools.cycle(runtime.settings.embedding_models)

    def kwargs(model: str | None) -> dict[str, Any]:
        if cycled is None:
            return fixed
        args = {**fixed, cycled: model}
        if embedding is not None:
            args["embedding_model"] = next(embedding)
        return args

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
