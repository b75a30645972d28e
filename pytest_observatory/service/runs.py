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
import os
import signal
import sys
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..coordination import check_identity
from ..journal import JOURNAL_SUFFIX, read_lines, rebuild
from ..marker import CheckSpec
from ..mock.settings import PUBLIC_KNOBS
from ..options import API_KEY, DEPLOYMENT_URL, MOCK_URL, Settings
from ..redact import redact_url, scrub
from ..result import JSON, utc_iso
from .config import AUTH_ENV, ServiceSettings
from .overrides import ENV as OVERRIDES_ENV
from .suites import suite_path

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

    def identity(self) -> str:
        """coordination's identity of the check this request asks for: the same suite,
        deployment, key, models and settings are the same check."""
        settings = Settings(
            deployment_url=self.deployment_url, api_key=self.api_key, models=self.models
        )
        spec = CheckSpec(
            duration_s=(self.duration_hours or 0.0) * 3600,
            max_failure_rate=(
                CheckSpec.max_failure_rate
                if self.max_failure_rate is None
                else self.max_failure_rate
            ),
            models=self.models,
            interval_s=self.request_interval_seconds or 0.0,
        )
        return check_identity(self.test_suite, settings, spec)

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
    identity: str
    status: Status = "queued"
    created_at: str = field(default_factory=utc_iso)
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: int | None = None
    error: str | None = None
    stop_requested: bool = False
    request: RunRequest | None = field(default=None, repr=False)  # dropped when it ends
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
            "html_report": self.html_path.is_file(),
        }

    def save(self) -> None:
        record = {**self.public(), "identity": self.identity}
        (self.directory / RECORD).write_text(json.dumps(record, indent=2) + "\n", "utf-8")

    def report(self) -> JSON | None:
        """The child's JSON report; while it runs (or after a kill), rebuilt from its journal."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.report_path.read_text("utf-8")))
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return rebuild(read_lines(self.journal_path))
        return None


class Duplicate(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(run.id)
        self.run = run


class QueueFull(Exception):
    pass


class RunManager:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._watchers: set[asyncio.Task[None]] = set()
        settings.runs_dir.mkdir(parents=True, exist_ok=True)
        self._recover()

    @property
    def running(self) -> list[Run]:
        return [run for run in self.runs.values() if run.status == "running"]

    @property
    def queued(self) -> list[Run]:
        return list(self._queue)

    async def submit(self, request: RunRequest) -> Run:
        """Start the run now or queue it; raise Duplicate, QueueFull or SuiteNotFound."""
        path = suite_path(request.test_suite, self.settings.suites_dir)
        identity = request.identity()
        for run in self.runs.values():
            if run.identity == identity and run.status in ACTIVE:
                raise Duplicate(run)
        if len(self.running) >= self.settings.max_concurrent:
            if len(self._queue) >= self.settings.max_queue:
                raise QueueFull()
        run_id = uuid.uuid4().hex[:12]
        directory = self.settings.runs_dir / run_id
        directory.mkdir(parents=True)
        run = Run(run_id, directory, request.public(), identity, request=request)
        self.runs[run_id] = run
        if len(self.running) < self.settings.max_concurrent:
            await self._start(run, path)
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

    async def _start(self, run: Run, path: Path) -> None:
        request = run.request
        assert request is not None
        (run.directory / "pytest.ini").write_text("[pytest]\n", "utf-8")
        argv = [
            sys.executable, "-m", "pytest", str(path), "-m", "observatory",
            "-p", "pytest_observatory.service.overrides", "-p", "no:cacheprovider",
            # The suite's folder is the root (node ids, its conftest.py); nothing of the
            # service's working directory (its ini file, its conftest.py) leaks into the run.
            "-c", str(run.directory / "pytest.ini"), "--rootdir", str(path.parent),
            "--confcutdir", str(path.parent),
            "--models", ",".join(request.models),
            "--observatory-report", REPORT, "--observatory-html", HTML,
            "--observatory-on-duplicate", "fail", "--observatory-progress", PROGRESS_INTERVAL,
        ]  # fmt: skip
        if request.duration_hours is not None:
            argv += ["--observatory-duration", f"{request.duration_hours * 3600:.3f}s"]
        env = {key: value for key, value in os.environ.items() if key != AUTH_ENV}
        env.update(self.settings.child_env())
        env[DEPLOYMENT_URL.env] = request.deployment_url  # may carry credentials: not argv
        env[API_KEY.env] = request.api_key
        env[OVERRIDES_ENV] = json.dumps(request.marker_overrides())
        with (run.directory / LOG).open("wb") as log:
            run.process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=run.directory,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for the service is not meant for it
            )
        run.status, run.started_at = "running", utc_iso()
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
            run = self._queue.popleft()
            try:
                path = suite_path(run.fields["test_suite"], self.settings.suites_dir)
                await self._start(run, path)
            except (LookupError, OSError) as exc:  # its suite file went away meanwhile
                self._end(run, "error", error=f"could not start: {exc}")

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
                identity=str(record.get("identity", "")),
                status=record.get("status", "error"),
                created_at=str(record.get("created_at")),
                started_at=record.get("started_at"),
                ended_at=record.get("ended_at"),
                exit_code=record.get("exit_code"),
                error=record.get("error"),
            )
            self.runs[run.id] = run
            if run.status in ACTIVE:
                was = run.status
                self._end(run, "interrupted", error=f"the service stopped while it was {was}")

