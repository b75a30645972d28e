"""Worker threads for plain ``def`` probes that never hold up the end of the process.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one sync probe
stuck in ``time.sleep(60)`` kept pytest alive half a minute after the check had been reported hung.
A probe that hangs is a finding, already counted; its thread is abandoned, never waited for.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Work = tuple["concurrent.futures.Future[Any]", Callable[[], Any]]


class DaemonThreadPool(concurrent.futures.Executor):
    """At most ``workers`` daemon threads, started as work arrives; a submission gets an idle
    thread or a new one, so ``concurrency`` lanes never wait for each other's probes."""

    def __init__(self, workers: int, name: str) -> None:
        self._max = workers
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._shutdown = False
        self._ids = itertools.count()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{next(self._ids)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:  # pytest.skip/fail are BaseExceptions: pass them on
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Idle threads end; busy ones end when their probe returns (the runner never waits)."""
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
