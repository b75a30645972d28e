"""Live progress: a 3-hour check must never look hung.

In a terminal, one line per running check under pytest's current line, redrawn every second
and erased before pytest writes again; elsewhere (CI logs), a plain line per running check every
``--observatory-progress`` interval. Quiet under ``-q``.

The lines come from snapshots read on a timer (``live.RunningChecks``), never pushed by the
engine. Under xdist each worker writes its snapshots to a small JSON file every second in a
directory the controller hands it, and the controller shows them labelled with the worker id.
Lines go to a duplicate of the terminal's file descriptor taken at start-up: while a test runs,
pytest's capture redirects descriptor 1 into the test's captured output.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

import pytest

from ..durations import format_duration
from ..live import RUNNING_KEY, Progress, RunningChecks
from .figures import clip, ms

REDRAW_S = 1.0
STALE_S = 5.0
INBOX_KEY = "observatory_progress_dir"
ERASE_LINE = "\r\x1b[K"
UP = "\x1b[1A"


def register_progress(config: pytest.Config, interval_s: float) -> None:
    """Controller: the reporter (plus, under xdist, the inbox its workers write to).
    Worker: a publisher into the controller's inbox."""
    running = config.stash[RUNNING_KEY] = RunningChecks()
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        inbox = workerinput.get(INBOX_KEY)
        if inbox:
            publisher = ProgressPublisher(running, Path(inbox), workerinput["workerid"])
            config.pluginmanager.register(publisher, "observatory-progress")
        return
    inbox_dir: Path | None = None
    if config.pluginmanager.hasplugin("xdist"):
        inbox_dir = Path(tempfile.mkdtemp(prefix="observatory-progress-"))
        config.add_cleanup(lambda: shutil.rmtree(inbox_dir, ignore_errors=True))
        config.pluginmanager.register(_XdistInbox(inbox_dir), "observatory-progress-xdist")
    reporter = ProgressReporter(config, interval_s, running, inbox_dir)
    config.pluginmanager.register(reporter, "observatory-progress")


def progress_line(progress: Progress, rate: float) -> str:
    label = f"[{progress.worker}] " if progress.worker else ""
    left = max(0.0, progress.duration_s - progress.elapsed_s)
    failed = progress.failures / progress.probes if progress.probes else 0.0
    phase = f"{progress.phase}, " if progress.phase else ""
    return (
        f"{label}{progress.nodeid}: {format_duration(progress.elapsed_s)} of "
        f"{format_duration(progress.duration_s)} ({format_duration(left)} left), {phase}"
        f"{progress.probes} probes, {rate:.1f}/s, {failed:.2%} failed, "
        f"p95 {ms(progress.p95_ms)}, last error: {progress.last_error or '-'}"
    )


class _Ticker:
    """A daemon thread calling ``tick`` every ``period_s`` until stopped."""

    def __init__(self, name: str, period_s: float, tick: Any) -> None:
        self._stop = threading.Event()
        self._period_s = period_s
        self._tick = tick
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(REDRAW_S * 5)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self._tick()


class ProgressReporter:
    def __init__(
        self,
        config: pytest.Config,
        interval_s: float,
        running: RunningChecks,
        inbox: Path | None,
    ) -> None:
        self._config = config
        self._interval_s = interval_s
        self._running = running
        self._inbox = inbox
        self._lock = threading.Lock()
        self._paused = 0
        self._shown = 0  # status lines on screen (live mode)
        self._column = 0  # where pytest's line ended before them
        self._needs_newline = True
        self._rates: dict[tuple[str, str], tuple[int, float]] = {}
        self._ticker: _Ticker | None = None
        self._out: IO[str] | None = None
        self._live = False

    def pytest_sessionstart(self) -> None:
        terminal = self._config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        writer = self._config.get_terminal_writer()
        self._live = bool(terminal.isatty) and writer.hasmarkup
        self._out = _terminal_file()
        period_s = REDRAW_S if self._live else self._interval_s
        self._ticker = _Ticker("observatory-progress", period_s, self._tick)
        self._ticker.start()

    # pytest writes to the terminal in these hooks: the status lines make way meanwhile.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self) -> Generator[None, None, None]:
        return (yield from self._paused_while())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self) -> Generator[None, None, None]:
        return (yield from self._paused_while())

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        with self._lock:
            self._paused += 1
            self._clear()
        if self._out is not None and self._out is not sys.stdout:
            self._out.close()
        self._out = None

    def _paused_while(self) -> Generator[None, None, None]:
        with self._lock:
            self._paused += 1
            self._clear()
        try:
            return (yield)
        finally:
            # pytest's own buffered output first, so lines on the duplicate stay in order.
            self._config.get_terminal_writer().flush()
            with self._lock:
                self._paused -= 1
                self._needs_newline = True

    def _tick(self) -> None:
        snapshots = self._running.snapshots() + self._read_inbox()
        now = time.monotonic()
        lines = [progress_line(snapshot, self._rate(snapshot, now)) for snapshot in snapshots]
        with self._lock:
            if self._paused or self._out is None:
                return
            try:
                if self._live:
                    self._draw(lines)
                else:
                    self._print(lines)
                self._out.flush()
            except (OSError, ValueError):
                pass  # the terminal went away: progress is best effort, the run goes on

    def _rate(self, snapshot: Progress, now: float) -> float:
        """Probes per second since the previous line of this check (its average at first)."""
        key = (snapshot.worker, snapshot.nodeid)
        before = self._rates.get(key)
        self._rates[key] = (snapshot.probes, now)
        if before is None or now <= before[1]:
            return snapshot.probes / snapshot.elapsed_s if snapshot.elapsed_s else 0.0
        return (snapshot.probes - before[0]) / (now - before[1])

    def _print(self, lines: list[str]) -> None:
        assert self._out is not None
        if not lines:
            return
        writer = self._config.get_terminal_writer()
        start = "\n" if self._needs_newline and writer.width_of_current_line else ""
        self._out.write(start + "".join(f"observatory progress: {line}\n" for line in lines))
        self._needs_newline = False

    def _draw(self, lines: list[str]) -> None:
        assert self._out is not None
        if not lines:
            self._clear()
            return
        writer = self._config.get_terminal_writer()
        width = max(writer.fullwidth - 1, 20)
        if self._shown:
            self._out.write(self._erase())
        else:
            self._column = writer.width_of_current_line
            self._out.write("\n" if self._column else "\r")
        self._out.write("\n".join(clip(line, width) for line in lines))
        self._shown = len(lines)

    def _erase(self) -> str:
        """From the end of the last status line to the start of the first, erasing them."""
        return ERASE_LINE + (UP + ERASE_LINE) * (self._shown - 1)

    def _clear(self) -> None:
        """Erase the status lines and put the cursor back where pytest left it."""
        if not self._shown or self._out is None:
            return
        back = self._erase()
        if self._column:
            back += UP + "\r" + f"\x1b[{self._column}C"
        try:
            self._out.write(back)
            self._out.flush()
        except (OSError, ValueError):
            pass
        self._shown = 0

    def _read_inbox(self) -> list[Progress]:
        if self._inbox is None:
            return []
        found = []
        now = time.time()
        for path in sorted(self._inbox.glob("*.json")):
            try:
                if now - path.stat().st_mtime > STALE_S:
                    continue  # a worker that crashed or finished: its checks are not running
                found += [Progress(**item) for item in json.loads(path.read_text("utf-8"))]
            except (OSError, ValueError, TypeError):
                continue
        return found


class ProgressPublisher:
    """xdist worker side: its running checks, written every second for the controller."""

    def __init__(self, running: RunningChecks, inbox: Path, worker: str) -> None:
        self._running = running
        self._path = inbox / f"{worker}.json"
        self._worker = worker
        self._published = False  # whether the file lists checks: no writes while none run
        self._ticker = _Ticker("observatory-progress", REDRAW_S, self._publish)

    def pytest_sessionstart(self) -> None:
        self._ticker.start()

    def pytest_sessionfinish(self) -> None:
        self._ticker.stop()
        self._path.unlink(missing_ok=True)

    def _publish(self) -> None:
        snapshots = [
            dataclasses.asdict(dataclasses.replace(snapshot, worker=self._worker))
            for snapshot in self._running.snapshots()
        ]
        if not snapshots and not self._published:
            return
        self._published = bool(snapshots)
        partial = self._path.with_suffix(".partial")
        try:
            partial.write_text(json.dumps(snapshots), "utf-8")
            os.replace(partial, self._path)
        except OSError:
            pass  # the controller's directory is gone: the session is ending


class _XdistInbox:
    """Controller side under xdist: tell each worker where to write its progress."""

    def __init__(self, inbox: Path) -> None:
        self._inbox = inbox

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[INBOX_KEY] = str(self._inbox)


def _terminal_file() -> IO[str]:
    """A duplicate of stdout's descriptor, taken while pytest's capture is suspended; in-process
    runs (pytester) whose stdout has no descriptor get stdout itself."""
    try:
        return os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", errors="replace")
    except (AttributeError, OSError, ValueError):
        return sys.stdout
