"""The plugin's own event loop, running in a daemon thread for the whole session.

An httpx.AsyncClient's connections belong to the loop that opened them, while pytest-asyncio's
test loops live for one test: a session client driven from per-test loops breaks at the second
test. Every probe of every check therefore runs here, and the main thread only waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .observe import RequestObserver, current_observer

T = TypeVar("T")


class SessionLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.loop.call_soon(started.set)
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="observatory-loop", daemon=True
        )
        self._thread.start()
        started.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run on the session loop and block the calling (non-loop) thread until it is done.

        The caller's probe observer travels along, so a blocking helper called from a sync
        probe's thread is still timed into that probe's check.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "blocking call on the observatory loop from inside it; use the async helpers"
            )
        return self.submit(_observed(coro, current_observer.get())).result()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel what is left, stop the loop and join its thread (bounded)."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            try:
                self.submit(self._cancel_pending()).result(timeout_s)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.loop.close()

    async def _cancel_pending(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()


async def _observed(coro: Coroutine[Any, Any, T], observer: RequestObserver | None) -> T:
    current_observer.set(observer)  # this task's own context copy
    return await coro
