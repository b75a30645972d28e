"""Runs: every accepted request becomes a ``python -m pytest`` process of its suite.

A crash in a run never takes the service down, and the run's own process takes the coordination
locks (dedup, host slots), so runs started here and from CI on the same host respect each other.
The service counts its own running and queued runs only to answer ``started`` or ``queued`` and
to start the next run when one ends.

Each run has a directory: ``run.json`` (what ``GET /runs/{id}`` shows, rewritten at every
change), the child's ``report.json``, its journal while it runs, ``report.html`` and
``output.log``. The deployment's key never goes there, nor on the child's command line: it reaches
the child through its environment and is forgotten when the run ends. Queued runs cannot survive
a restart for the same reason (their key was never written down): they come back
``interrupted``, like the runs that were running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from ..coordination import CHECK_PREFIX, check_identity, describe_holder
from ..durations import parse_duration
from ..journal import JOURNAL_SUFFIX, read_lines, rebuild
from ..locks import LockBackend, open_backend
from ..marker import MARKER_NAME, parse_marker
from ..mock.settings import PUBLIC_KNOBS
from ..options import API_KEY, DEPLOYMENT_URL, MOCK_URL, Settings
from ..redact import redact_url, scrub
from ..result import JSON, utc_iso
from .checks import SuiteCheck, SuiteChecks, child_environ, pytest_args, suite_file
from .child import OVERRIDES_ENV
from .config import ServiceSettings

Status = Literal["queued", "running", "passed", "failed", "interrupted", "error"]
ACTIVE: tuple[Status, ...] = ("queued", "running")
REPORT = "report.json"
HTML = "report.html"
LOG = "output.log"
RECORD = "run.json"
STOP_WAIT_S = 30.0  # on shutdown, how long running children get to report after SIGTERM
PROGRESS_INTERVAL = "10s"  # the child's plain progress line in output.log
REQUEST_FIELDS = (
    "test_suite",
    "deployment_url",
    "models",
    "duration_hours",
    "max_failure_rate",
    "request_interval_seconds",
)


def display_url(url: str) -> str:
    """As the plugin shows it: credentials and query values masked, the mock's knobs kept."""
    public = PUBLIC_KNOBS if url.split("?")[0] == MOCK_URL else ()
    return redact_url(url, public=public)


@dataclass(frozen=True)
class RunRequest:
    """The original Observatory's ``POST /run-test`` body, validated."""

    test_suite: str
    deployment_url: str
    api_key: str = field(repr=False)
    models: tuple[str, ...]
    duration_hours: float | None = None
    max_failure_rate: float | None = None
    request_interval_seconds: float | None = None

    @property
    def duration_text(self) -> str | None:
        """``--observatory-duration`` of the run, and what its identity is computed from."""
        return None if self.duration_hours is None else f"{self.duration_hours * 3600:.3f}s"

    def identify(self, checks: Sequence[SuiteCheck]) -> tuple[tuple[str, ...], float]:
        """Each check's coordination identity, computed as the run's own process will (same
        node id, settings and spec), and the run's duration (its checks run one after another).
        Raises MarkerError for a marker the run would refuse."""
        text = self.duration_text
        settings = Settings(
            deployment_url=self.deployment_url,
            api_key=self.api_key or None,
            models=self.models,
            duration_override_s=None if text is None else parse_duration(text),
        )
        identities, duration_s = [], 0.0
        overrides = self.marker_overrides()
        for check in checks:
            marker = getattr(pytest.mark, MARKER_NAME)(**{**check.marker, **overrides})
            spec = parse_marker(marker.mark, settings)
            identities.append(check_identity(check.nodeid, settings, spec))
            duration_s += spec.duration_s
        return tuple(identities), duration_s

    def marker_overrides(self) -> JSON:
        overrides: JSON = {}
        if self.max_failure_rate is not None:
            overrides["max_failure_rate"] = self.max_failure_rate
        if self.request_interval_seconds is not None:
            overrides["interval"] = f"{self.request_interval_seconds:g}s"
        return overrides

    def public(self) -> JSON:
        """As answers and files show it: no key, the URL without credentials or query values."""
        return {
            "test_suite": self.test_suite,
            "deployment_url": display_url(self.deployment_url),
            "models": list(self.models),
            "duration_hours": self.duration_hours,
            "max_failure_rate": self.max_failure_rate,
            "request_interval_seconds": self.request_interval_seconds,
        }


@dataclass
class Run:
    """One run's state in the service (the event loop's thread alone changes it)."""

    id: str
    directory: Path
    fields: JSON  # RunRequest.public(), or what a previous service wrote
    identities: tuple[str, ...]  # coordination's, one per check of the suite
    status: Status = "queued"
    created_at: str = field(default_factory=utc_iso)
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: int | None = None
    error: str | None = None
    stop_requested: bool = False
    estimated_duration_hours: float | None = None
    request: RunRequest | None = field(default=None, repr=False)  # dropped when it ends
    suite: Path | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def report_path(self) -> Path:
        return self.directory / REPORT

    @property
    def journal_path(self) -> Path:
        return self.directory / (REPORT + JOURNAL_SUFFIX)

    @property
    def html_path(self) -> Path:
        return self.directory / HTML

    def public(self) -> JSON:
        return {
            "run_id": self.id,
            **self.fields,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "exit_code": self.exit_code,
            "error": self.error,
            "estimated_duration_hours": self.estimated_duration_hours,
            "stop_requested": self.stop_requested,
            "html_report": self.html_path.is_file(),
        }

    def save(self) -> None:
        record = {**self.public(), "identities": list(self.identities)}
        (self.directory / RECORD).write_text(json.dumps(record, indent=2) + "\n", "utf-8")

    def report(self) -> JSON | None:
        """The child's JSON report; while it runs (or after a kill), rebuilt from its journal."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.report_path.read_text("utf-8")))
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return rebuild(read_lines(self.journal_path))
        return None


class Duplicate(Exception):
    """The same check is already running or queued: in this service (``run``) or in another
    process sharing the locks (``holder`` describes it)."""

    def __init__(self, run: Run | None, holder: str) -> None:
        super().__init__(holder)
        self.run = run
        self.holder = holder


class QueueFull(Exception):
    pass


class RunManager:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._watchers: set[asyncio.Task[None]] = set()
        self._backend: LockBackend | None = None
        settings.runs_dir.mkdir(parents=True, exist_ok=True)
        self._ini = settings.runs_dir / "pytest.ini"  # an empty one: no ini file of ours applies
        self._ini.write_text("[pytest]\n", "utf-8")
        self.suites = SuiteChecks(self._ini)
        self._recover()

    @property
    def running(self) -> list[Run]:
        return [run for run in self.runs.values() if run.status == "running"]

    @property
    def queued(self) -> list[Run]:
        return list(self._queue)

    async def submit(self, request: RunRequest) -> Run:
        """Start the run now or queue it. Raises SuiteNotFound, SuiteError, MarkerError,
        LockBackendError, Duplicate or QueueFull."""
        path = suite_file(request.test_suite, self.settings.suites_dir)
        identities, duration_s = request.identify(await self.suites.of(path))
        if self._backend is None:
            self._backend = open_backend(self.settings.lock_url, self.settings.effective_lock_dir)
        holder = await asyncio.to_thread(_held_elsewhere, self._backend, identities)
        # No await from here until the run is registered: two identical requests arriving
        # together cannot both pass the check.
        for run in self.runs.values():
            if run.status in ACTIVE and set(run.identities) & set(identities):
                since = run.started_at or run.created_at
                raise Duplicate(run, f"run {run.id}, {run.status} since {since}")
        if holder is not None:
            raise Duplicate(None, holder)
        start_now = len(self.running) < self.settings.max_concurrent
        if not start_now and len(self._queue) >= self.settings.max_queue:
            raise QueueFull()
        run_id = uuid.uuid4().hex[:12]
        directory = self.settings.runs_dir / run_id
        directory.mkdir(parents=True)
        run = Run(run_id, directory, request.public(), identities, request=request, suite=path)
        run.estimated_duration_hours = round(duration_s / 3600, 4)
        self.runs[run_id] = run
        if start_now:
            await self._start(run)
        else:
            self._queue.append(run)
            run.save()
        return run

    async def stop(self, run: Run) -> None:
        """A queued run leaves the queue; a running one gets SIGTERM and ends ``interrupted``
        with its figures, its report and its Slack post (the plugin handles the signal)."""
        if run.status == "queued":
            self._queue.remove(run)
            self._end(run, "interrupted", error="stopped before it started")
        elif run.status == "running" and run.process is not None:
            run.stop_requested = True
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGTERM)

    async def close(self) -> None:
        """The service stops: queued runs end here, running ones are stopped and awaited."""
        for run in list(self._queue):
            await self.stop(run)
        for run in self.running:
            await self.stop(run)
        if self._watchers:
            await asyncio.wait(self._watchers, timeout=STOP_WAIT_S)
        if self._backend is not None:
            self._backend.close()

    async def _start(self, run: Run) -> None:
        request, path = run.request, run.suite
        assert request is not None and path is not None
        run.status, run.started_at = "running", utc_iso()  # counted before the await below
        argv = [
            sys.executable, "-m", "pytest", *pytest_args([path], self._ini),
            "--models", ",".join(request.models),
            "--observatory-report", REPORT, "--observatory-html", HTML,
            "--observatory-on-duplicate", "fail", "--observatory-progress", PROGRESS_INTERVAL,
        ]  # fmt: skip
        if request.duration_text is not None:
            argv += ["--observatory-duration", request.duration_text]
        env = {**child_environ(), **self.settings.child_env()}
        env[DEPLOYMENT_URL.env] = request.deployment_url  # may carry credentials: not argv
        env[API_KEY.env] = request.api_key
        env[OVERRIDES_ENV] = json.dumps(request.marker_overrides())
        try:
            with (run.directory / LOG).open("wb") as log:
                run.process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=run.directory,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C meant for the service is not for it
                )
        except OSError as exc:
            self._end(run, "error", error=f"could not start: {exc.strerror or exc}")
            return
        run.save()
        watcher = asyncio.create_task(self._watch(run))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, run: Run) -> None:
        assert run.process is not None
        code = await run.process.wait()
        run.exit_code = code
        report = run.report()
        verdicts = [check.get("verdict") for check in (report or {}).get("checks", [])]
        if "interrupted" in verdicts or (run.stop_requested and not verdicts):
            self._end(run, "interrupted")
        elif verdicts and code == 0:
            self._end(run, "passed")
        elif verdicts:
            self._end(run, "failed")
        else:
            self._end(run, "error", error=self._last_line(run))
        await self._start_next()

    async def _start_next(self) -> None:
        while self._queue and len(self.running) < self.settings.max_concurrent:
            await self._start(self._queue.popleft())

    def _end(self, run: Run, status: Status, error: str | None = None) -> None:
        run.status, run.ended_at, run.error = status, utc_iso(), error
        run.request, run.process = None, None  # the key is forgotten with the request
        run.save()

    def _last_line(self, run: Run) -> str:
        """Why a run left no report (a usage error, a missing package), from its output."""
        secrets = [run.request.api_key, run.request.deployment_url] if run.request else []
        try:
            lines = (run.directory / LOG).read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return f"exit status {run.exit_code}, no output"
        text = next((line for line in reversed(lines) if line.strip()), "")
        return scrub(text.strip(), secrets)[:300] or f"exit status {run.exit_code}, no output"

    def _recover(self) -> None:
        """Runs a previous service left: finished ones as they were, active ones interrupted."""
        records = []
        for path in self.settings.runs_dir.glob(f"*/{RECORD}"):
            with contextlib.suppress(OSError, ValueError):
                records.append((path.parent, json.loads(path.read_text("utf-8"))))
        for directory, record in sorted(records, key=lambda item: str(item[1].get("created_at"))):
            run = Run(
                id=directory.name,
                directory=directory,
                fields={key: record.get(key) for key in REQUEST_FIELDS},
                identities=tuple(record.get("identities") or ()),
                status=record.get("status", "error"),
                created_at=str(record.get("created_at")),
                started_at=record.get("started_at"),
                ended_at=record.get("ended_at"),
                exit_code=record.get("exit_code"),
                error=record.get("error"),
                estimated_duration_hours=record.get("estimated_duration_hours"),
            )
            self.runs[run.id] = run
            if run.status in ACTIVE:
                was = run.status
                self._end(run, "interrupted", error=f"the service stopped while it was {was}")


def _held_elsewhere(backend: LockBackend, identities: Sequence[str]) -> str | None:
    """Who runs one of these checks outside this service (CI on this host, another service),
    from the coordination locks the runs' processes take."""
    for identity in identities:
        holder = backend.holder(CHECK_PREFIX + identity)
        if holder is not None:
            return describe_holder(backend, identity, holder)
    return None
