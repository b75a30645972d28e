"""The HTTP API: the original Observatory's endpoints and answers (``POST /run-test``,
``GET /queue-status``, ``GET /health``, ``GET /``), plus run history, stopping a run, live
progress and the reports (``/runs...``).

Nothing here answers with the deployment's key: requests are shown through
``RunRequest.public()``, and a body that fails validation is answered without the values it held
(FastAPI's default 422 echoes them, the key among them).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..catalog import SuiteNotFound
from ..locks import LockBackendError
from ..marker import MarkerError
from ..result import JSON
from .checks import SuiteError, suite_file, suite_names
from .config import AUTH_HEADER, MAX_BODY_BYTES, ServiceSettings
from .events import run_events
from .runs import ACTIVE, Duplicate, QueueFull, Run, RunManager, RunRequest

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


class RunTestBody(BaseModel):
    """The original's request body; unknown fields are refused, as a typo in a threshold must
    never run three hours with the default."""

    model_config = ConfigDict(extra="forbid")

    deployment_url: str = Field(min_length=1, max_length=2048)
    api_key: str = Field(max_length=4096)
    test_suite: str = Field(min_length=1, max_length=200)
    models: list[str] = Field(min_length=1, max_length=100)
    duration_hours: float | None = Field(default=None, gt=0, le=24 * 7)
    max_failure_rate: float | None = Field(default=None, ge=0, le=1)
    request_interval_seconds: float | None = Field(default=None, ge=0, le=3600)


class BodyLimit:
    """413 for a body beyond ``limit`` bytes, declared or streamed (chunked): checked before
    anything reads it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Message, receive: Receive, send: ASGIApp) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(self.limit, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message: Message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


async def _too_large(limit: int, send: ASGIApp) -> None:
    answer = JSONResponse({"detail": f"request body larger than {limit} bytes"}, status_code=413)
    await answer({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b""}


def create_app(settings: ServiceSettings) -> FastAPI:
    manager = RunManager(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        names = suite_names(settings.suites_dir)
        manager.suites.warm([suite_file(name, settings.suites_dir) for name in names])
        yield
        await manager.close()

    def authorized(request: Request) -> None:
        """Only when OBSERVATORY_API_KEY is set, as in the original; compared in constant time."""
        if settings.api_key is None:
            return
        given = request.headers.get(AUTH_HEADER, "")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(401, f"missing or invalid {AUTH_HEADER} header")

    app = FastAPI(
        title="pytest-observatory",
        version=version("pytest-observatory"),
        lifespan=lifespan,
    )
    api = APIRouter(dependencies=[Depends(authorized)])  # every route but /health
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    def find(run_id: str) -> Run:
        run = manager.runs.get(run_id)
        if run is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return run

    @api.get("/")
    async def root() -> JSON:
        return {
            "name": "pytest-observatory",
            "version": app.version,
            "available_test_suites": suite_names(settings.suites_dir),
        }

    @app.get("/health")
    async def health() -> JSON:
        return {"status": "healthy"}

    @api.post("/run-test")
    async def run_test(body: RunTestBody) -> JSON:
        request = RunRequest(
            test_suite=body.test_suite,
            deployment_url=body.deployment_url,
            api_key=body.api_key,
            models=tuple(body.models),
            duration_hours=body.duration_hours,
            max_failure_rate=body.max_failure_rate,
            request_interval_seconds=body.request_interval_seconds,
        )
        try:
            run = await manager.submit(request)
        except SuiteNotFound:
            known = ", ".join(suite_names(settings.suites_dir))
            raise HTTPException(
                400, f"unknown test_suite {body.test_suite!r}; available: {known}"
            ) from None
        except (SuiteError, MarkerError) as exc:
            raise HTTPException(400, f"test_suite {body.test_suite!r}: {exc}") from None
        except LockBackendError as exc:
            raise HTTPException(503, f"observatory locks: {exc}") from None
        except Duplicate as exc:
            raise HTTPException(
                409,
                {
                    "message": f"an identical test is already running or queued: {exc.holder}",
                    "run_id": exc.run.id if exc.run else None,
                    "status": exc.run.status if exc.run else "running",
                    "started_at": exc.run.started_at if exc.run else None,
                },
            ) from None
        except QueueFull:
            raise HTTPException(
                429, f"the queue is full ({settings.max_queue} runs waiting); try later"
            ) from None
        status: Literal["started", "queued"] = "started" if run.status == "running" else "queued"
        message = (
            "Test started." if status == "started" else "Test queued: no free slot."
        ) + " Results will be sent via Slack webhook when complete."
        return {
            "status": status,
            "test_name": body.test_suite,
            "run_id": run.id,
            "results": {
                "message": message,
                "run_id": run.id,
                "deployment_url": run.fields["deployment_url"],
                "models": body.models,
                "estimated_duration_hours": run.estimated_duration_hours,
            },
        }

    @api.get("/queue-status")
    async def queue_status() -> JSON:
        running, queued = manager.running, manager.queued
        return {
            "queue_status": {
                "max_concurrent_tests": settings.max_concurrent,
                "currently_running": len(running),
                "queued": len(queued),
                "recently_completed": sum(
                    run.status not in ACTIVE for run in manager.runs.values()
                ),
            },
            "running_tests": {run.id: _brief(run) for run in running},
            "queued_tests": {run.id: _brief(run) for run in queued},
        }

    @api.get("/runs")
    async def runs(
        status: str | None = None, test_suite: str | None = None, limit: int = 100
    ) -> JSON:
        chosen = [
            run.public()
            for run in reversed(manager.runs.values())
            if (status is None or run.status == status)
            and (test_suite is None or run.fields["test_suite"] == test_suite)
        ]
        return {"runs": chosen[: max(limit, 0)]}

    @api.get("/runs/{run_id}")
    async def run_detail(run_id: str) -> JSON:
        run = find(run_id)
        return {**run.public(), "report": run.report()}

    @api.delete("/runs/{run_id}", status_code=202)
    async def stop_run(run_id: str) -> JSON:
        run = find(run_id)
        if run.status not in ACTIVE:
            raise HTTPException(409, f"run {run_id} already ended: {run.status}")
        await manager.stop(run)
        return run.public()

    @api.get("/runs/{run_id}/events")
    async def events(run_id: str) -> StreamingResponse:
        run = find(run_id)
        return StreamingResponse(
            run_events(run, settings.events_interval_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @api.get("/runs/{run_id}/report.html", response_model=None)
    async def html_report(run_id: str) -> FileResponse:
        run = find(run_id)
        if not run.html_path.is_file():
            raise HTTPException(404, f"run {run_id} has no HTML report yet ({run.status})")
        return FileResponse(run.html_path, media_type="text/html")

    app.include_router(api)
    return app


def _brief(run: Run) -> JSON:
    """A run in /queue-status, in the original's shape."""
    return {
        "test_suite": run.fields["test_suite"],
        "deployment_url": run.fields["deployment_url"],
        "models": run.fields["models"],
        "status": run.status,
        "started_at": run.started_at,
        "created_at": run.created_at,
    }
