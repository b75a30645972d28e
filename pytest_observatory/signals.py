"""SIGTERM and SIGINT while a check runs: stop it, keep what it measured, end the session.

Python's default SIGTERM ends the process without running a ``finally`` block, so a CI runner
cancelling a 3-hour job lost the run: no summary, no report. While a check runs, the first
SIGTERM or SIGINT asks the engine to stop; the check ends ``interrupted`` with its figures, its
test report carries them (to the xdist controller too), and the runner then stops the session so
that every reporter still runs and pytest exits non-zero. A second Ctrl-C while stopping is the
impatient user's: it raises KeyboardInterrupt as before. The previous handlers come back as
soon as the check ends.

Under xdist the controller runs no check; for the whole test loop it forwards the signal to its
workers (a CI runner may signal only the process it started) and stops scheduling new tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterable
from types import FrameType
from typing import Any

import pytest

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DUPLICATE_WINDOW_S = 2.0  # the same signal again this soon is the controller's forward: ignore

Handler = Callable[[int, FrameType | None], Any] | int | None


class _Handlers:
    """Install a handler for SIGNALS in the main thread; restore the previous ones on exit."""

    def __init__(self) -> None:
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> _Handlers:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError


class StopOnSignal(_Handlers):
    """Around one check: the first signal calls ``stop``; ``received`` names it afterwards."""

    def __init__(self, stop: Callable[[], None]) -> None:
        super().__init__()
        self._stop = stop
        self.received: str | None = None
        self._first: tuple[int, float] | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._first is None:
            self._first = (signum, time.monotonic())
            self.received = signal.Signals(signum).name
            self._stop()
            return
        first_signum, first_at = self._first
        if signum == first_signum and time.monotonic() - first_at < DUPLICATE_WINDOW_S:
            return  # the same signal from the process group and from the xdist controller
        if signum == signal.SIGINT:
            raise KeyboardInterrupt


class ForwardToWorkers(_Handlers):
    """On the xdist controller: pass the first signal on to the workers and stop scheduling;
    a second one is handled as Python would have (KeyboardInterrupt, or the default action)."""

    def __init__(self, worker_pids: Callable[[], Iterable[int]], stop: Callable[[str], None]):
        super().__init__()
        self._worker_pids = worker_pids
        self._stop = stop
        self._seen = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._seen:
            self.__exit__()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        self._seen = True
        for pid in self._worker_pids():
            try:
                os.kill(pid, signum)
            except OSError:
                pass  # that worker is gone already
        self._stop(f"observatory: {signal.Signals(signum).name} received")


class XdistController:
    """The controller's side under pytest-xdist: knows its workers' PIDs and forwards SIGTERM
    and SIGINT to them while the test loop runs, in a session that has a deployment to check."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._pids: list[int] = []

    def pytest_testnodeready(self, node: Any) -> None:
        # xdist caches the worker's remote info (with its PID) when it sets the node up.
        self._pids.append(node.gateway._rinfo().pid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        with ForwardToWorkers(lambda: list(self._pids), self._stop_scheduling):
            return (yield)

    def _stop_scheduling(self, reason: str) -> None:
        dsession = self._config.pluginmanager.getplugin("dsession")
        if dsession is not None and not dsession.shouldstop:
            dsession.shouldstop = reason
