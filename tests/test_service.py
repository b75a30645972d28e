"""The service front, end to end: ``python -m pytest_observatory serve`` in a subprocess on a free
loopback port, the embedded mock as the deployment (it requires the run's key, so a run passes
only if the key reached its pytest process), and a loopback Slack stand-in.

One service per module and worker, with the original Observatory's environment
(``MAX_CONCURRENT_TESTS=1``, ``OBSERVATORY_API_KEY``, ``SLACK_WEBHOOK_URL``); each test leaves no
run active behind it and greps every answer, log line, run file and child command line for the
secrets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback import WEBHOOK_PATH, FakeSlack, serve_fake_slack

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

DEPLOYMENT_KEY = "sk-obs-SERVICE-8e1f3a9c27"
SERVICE_KEY = "svc-key-5d2b71c0aa"
MODELS = ["gpt-4", "gpt-3.5-turbo"]
# The mock serves the original's model names and answers 401 without the run's key.
DEPLOYMENT = f"mock?models={','.join(MODELS)}&api_key={DEPLOYMENT_KEY}"
AUTH = {"X-LiteLLM-Observatory-API-Key": SERVICE_KEY}
SECONDS = 1 / 3600  # duration_hours of one second
START_S = 20.0
END_S = 40.0


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    runs_dir: Path
    lock_dir: Path
    slack: FakeSlack
    answers: list[str] = field(default_factory=list)  # every body the service sent
    cmdlines: list[str] = field(default_factory=list)  # its children's, seen while they ran

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", AUTH)
        response = httpx.request(method, self.url + path, timeout=10, **kwargs)
        self.answers.append(response.text)
        return response

    def post_run(self, suite: str, seconds: float, **extra: Any) -> httpx.Response:
        body = {
            "deployment_url": DEPLOYMENT,
            "api_key": DEPLOYMENT_KEY,
            "test_suite": suite,
            "models": MODELS,
            "duration_hours": seconds * SECONDS,
            **extra,
        }
        return self.call("POST", "/run-test", json=body)

    def wait_until_ended(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + END_S
        while time.monotonic() < deadline:
            self.note_children()
            run: dict[str, Any] = self.call("GET", f"/runs/{run_id}").json()
            if run["status"] not in ("queued", "running"):
                return run
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} did not end within {END_S:g}s")

    def children(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def note_children(self) -> None:
        for pid in self.children():
            try:
                self.cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode())
            except OSError:
                pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(tmp: Path, slack: FakeSlack, *flags: str) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "OBSERVATORY_API_KEY": SERVICE_KEY,
        "SLACK_WEBHOOK_URL": slack.url,
        "MAX_CONCURRENT_TESTS": "1",  # the original's name for it
        "OBSERVATORY_LOCK_DIR": str(tmp / "locks"),
    }
    env.pop("OBSERVATORY_MAX_CONCURRENT", None)
    log = tmp / "service.log"
    argv = [sys.executable, "-m", "pytest_observatory", "serve", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*argv, "--runs-dir", str(tmp / "runs"), "--max-queue", "1", *flags],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", process, log, tmp / "runs", tmp / "locks", slack)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(service.url + "/health", timeout=1).status_code == 200:
                return service
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the service did not answer within {START_S:g}s: {log.read_text()}")


def stop_service(service: Service) -> None:
    service.process.send_signal(signal.SIGTERM)
    try:
        service.process.wait(END_S)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="module")
def slack_stand_in() -> Iterator[FakeSlack]:
    yield from serve_fake_slack()


@pytest.fixture(scope="module")
def shared_service(
    tmp_path_factory: pytest.TempPathFactory, slack_stand_in: FakeSlack
) -> Iterator[Service]:
    running = start_service(tmp_path_factory.mktemp("service"), slack_stand_in)
    yield running
    stop_service(running)


@pytest.fixture
def service(shared_service: Service) -> Iterator[Service]:
    """The module's service; whatever a test left running or queued (it failed) is stopped, so
    the next test starts with free slots."""
    yield shared_service
    runs = shared_service.call("GET", "/runs").json()["runs"]
    for run in runs:
        if run["status"] in ("queued", "running"):
            shared_service.call("DELETE", f"/runs/{run['run_id']}")
    for run in runs:
        shared_service.wait_until_ended(run["run_id"])


def sse_events(service: Service, run_id: str, until: str) -> list[tuple[str, dict[str, Any]]]:
    """Events of the run's stream up to the first ``until`` event."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    url = f"{service.url}/runs/{run_id}/events"
    with httpx.stream("GET", url, headers=AUTH, timeout=END_S) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            service.answers.append(line)
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if name == until:
                    break
    return events


def assert_no_secrets(service: Service) -> None:
    """Neither key nor the webhook's secret path in any answer, the service's log, any file of
    a run, or the command line of any process the service started."""
    assert service.cmdlines, "no child process was seen"
    assert any("pytest" in cmdline for cmdline in service.cmdlines)
    files = [path for path in service.runs_dir.rglob("*") if path.is_file()]
    assert any(path.name == "report.json" for path in files)
    texts = {
        "answers": "\n".join(service.answers),
        "service log": service.log.read_text(),
        "command lines": "\n".join(service.cmdlines),
        **{str(path): path.read_text(errors="replace") for path in files},
    }
    for secret in (DEPLOYMENT_KEY, SERVICE_KEY, WEBHOOK_PATH.rsplit("/", 1)[1]):
        for where, text in texts.items():
            assert secret not in text, f"{secret} in {where}"


def test_run_started_duplicate_queued_then_run_after(service: Service) -> None:
    posts_before = len(service.slack.posts)
    first = service.post_run("TestOAIAzureRelease", 14, request_interval_seconds=0.2)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["status"] == "started"
    assert answer["test_name"] == "TestOAIAzureRelease"
    assert answer["results"]["models"] == MODELS
    first_id = answer["run_id"]

    again = service.post_run("TestOAIAzureRelease", 14, request_interval_seconds=0.2)
    assert again.status_code == 409, again.text
    assert again.json()["detail"]["run_id"] == first_id

    second = service.post_run("TestMockSingleRequest", 1)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "queued"
    second_id = second.json()["run_id"]

    third = service.post_run("mock_single_request", 2)  # a third distinct run: the queue is full
    assert third.status_code == 429, third.text

    status = service.call("GET", "/queue-status").json()
    assert status["queue_status"]["max_concurrent_tests"] == 1
    assert status["queue_status"]["currently_running"] == 1
    assert status["queue_status"]["queued"] == 1
    assert list(status["running_tests"]) == [first_id]
    assert status["running_tests"][first_id]["models"] == MODELS
    assert list(status["queued_tests"]) == [second_id]
    service.note_children()

    # Live progress while the first run goes on: its first closed window (10 s of 14).
    events = sse_events(service, first_id, until="progress")
    assert events[0][0] == "status"
    assert events[0][1]["status"] == "running"
    progress = events[-1][1]
    assert progress["probes"] > 0
    assert progress["failure_rate"] == 0.0
    assert progress["p95_ms"] is not None

    first_run = service.wait_until_ended(first_id)
    assert first_run["status"] == "passed", first_run
    assert first_run["report"]["checks"][0]["verdict"] == "passed"
    assert first_run["max_failure_rate"] is None
    name, end = sse_events(service, first_id, until="end")[-1]  # an ended run's stream: at once
    assert name == "end"
    [final] = end["checks"].values()
    assert final["verdict"] == "passed"
    assert final["probes"] == first_run["report"]["checks"][0]["probes"] > 0
    second_run = service.wait_until_ended(second_id)
    assert second_run["status"] == "passed", second_run
    assert second_run["started_at"] >= first_run["ended_at"]

    html = service.call("GET", f"/runs/{first_id}/report.html")
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    texts = [json.dumps(payload) for payload in service.slack.payloads[posts_before:]]
    assert len(texts) == 2
    assert "test_oai_azure_release" in texts[0]
    assert "test_mock_single_request" in texts[1]
    assert all(path == WEBHOOK_PATH for _, path, _ in service.slack.posts)

    history = service.call("GET", "/runs", params={"test_suite": "TestMockSingleRequest"}).json()
    assert [run["run_id"] for run in history["runs"]] == [second_id]
    assert_no_secrets(service)


def test_delete_stops_a_run_which_still_reports(service: Service) -> None:
    posts_before = len(service.slack.posts)
    answer = service.post_run("oai_azure_release", 30)
    assert answer.json()["status"] == "started", answer.text
    run_id = answer.json()["run_id"]
    deadline = time.monotonic() + START_S
    while service.call("GET", f"/runs/{run_id}").json()["report"] is None:  # the check runs
        assert time.monotonic() < deadline, "the check never started"
        service.note_children()
        time.sleep(0.3)
    time.sleep(1)  # probes have gone out
    stopping = service.call("DELETE", f"/runs/{run_id}")
    assert stopping.status_code == 202, stopping.text
    run = service.wait_until_ended(run_id)
    assert run["status"] == "interrupted", run
    check = run["report"]["checks"][0]
    assert check["verdict"] == "interrupted"
    assert check["probes"] > 0
    assert len(service.slack.posts) == posts_before + 1
    assert "interrupted" in json.dumps(service.slack.payloads[-1]).lower()
    assert service.call("DELETE", f"/runs/{run_id}").status_code == 409
    assert_no_secrets(service)


def test_a_check_running_outside_the_service_is_a_duplicate(
    service: Service, tmp_path: Path
) -> None:
    """CI on the same host runs the bundled suite the catalog's way, from its own directory,
    with the same deployment, key, models and settings: coordination's identity is the same."""
    report = tmp_path / "ci.json"
    argv = [sys.executable, "-m", "pytest", "--observatory-suite", "TestOAIAzureRelease"]
    argv += ["-p", "no:cacheprovider", "-m", "observatory"]
    argv += ["--models", ",".join(MODELS), "--observatory-duration", "20.000s"]
    argv += ["--observatory-report", str(report)]
    env = {
        **os.environ,
        "OBSERVATORY_DEPLOYMENT_URL": DEPLOYMENT,
        "OBSERVATORY_DEPLOYMENT_API_KEY": DEPLOYMENT_KEY,
        "OBSERVATORY_LOCK_DIR": str(service.lock_dir),
    }
    ci = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        journal = report.with_name(report.name + ".journal.jsonl")
        deadline = time.monotonic() + START_S
        while not journal.exists():  # written once the check holds its locks
            assert ci.poll() is None and time.monotonic() < deadline, "the CI run never started"
            time.sleep(0.2)
        answer = service.post_run("TestOAIAzureRelease", 20)
        assert answer.status_code == 409, answer.text
        assert f"pid {ci.pid}" in answer.json()["detail"]["message"]
        other = service.post_run("TestOAIAzureRelease", 21)  # another duration: another check
        assert other.status_code == 200, other.text
        assert service.call("DELETE", f"/runs/{other.json()['run_id']}").status_code == 202
        service.wait_until_ended(other.json()["run_id"])
    finally:
        ci.terminate()
        ci.wait(END_S)


def test_api_key_required_when_set(service: Service) -> None:
    for headers in ({}, {"X-LiteLLM-Observatory-API-Key": "wrong"}):
        assert service.call("POST", "/run-test", headers=headers, json={}).status_code == 401
        assert service.call("GET", "/queue-status", headers=headers).status_code == 401
        assert service.call("GET", "/runs", headers=headers).status_code == 401
    assert service.call("GET", "/health", headers={}).json() == {"status": "healthy"}
    suites = service.call("GET", "/").json()["available_test_suites"]
    assert {"TestOAIAzureRelease", "TestMockSingleRequest"} <= set(suites)


def test_bad_requests(service: Service) -> None:
    unknown = service.post_run("TestNoSuchSuite", 1)
    assert unknown.status_code == 400
    assert "TestNoSuchSuite" in unknown.json()["detail"]
    body = {"deployment_url": DEPLOYMENT, "api_key": DEPLOYMENT_KEY, "test_suite": "x"}
    for bad in (
        {**body, "models": "gpt-4"},  # not a list
        {**body, "models": []},
        {**body, "models": MODELS, "max_failure_rate": 2},
        {**body, "models": MODELS, "duration_hour": 1},  # a typo
    ):
        answer = service.call("POST", "/run-test", json=bad)
        assert answer.status_code == 422, answer.text
    huge = service.call("POST", "/run-test", json={**body, "models": ["m" * 100_000]})
    assert huge.status_code == 413
    assert service.call("GET", "/runs/nope").status_code == 404


def test_restart_lists_running_runs_as_interrupted(
    tmp_path: Path, slack_stand_in: FakeSlack
) -> None:
    first = start_service(tmp_path, slack_stand_in)
    try:
        run_id = first.post_run("TestOAIAzureRelease", 30).json()["run_id"]
        children = first.children()
        assert children
    finally:
        first.process.kill()  # no chance to stop its runs
        first.process.wait()
    for pid in children:  # the orphaned pytest run: stopped here, by its id
        os.kill(pid, signal.SIGTERM)
    second = start_service(tmp_path, slack_stand_in)
    try:
        run = second.call("GET", f"/runs/{run_id}").json()
        assert run["status"] == "interrupted"
        assert "running" in run["error"]
    finally:
        stop_service(second)


OWN_SUITE = """
import pytest

@pytest.mark.observatory(duration="1s", probes=3, max_failure_rate=0)
async def test_my_check(deployment, model):
    assert (await deployment.chat(model, "hi", max_tokens=5))["choices"]
"""


def test_own_suites_directory(tmp_path: Path, slack_stand_in: FakeSlack) -> None:
    suites = tmp_path / "my-suites"
    suites.mkdir()
    (suites / "test_my_check.py").write_text(OWN_SUITE)
    (suites / "test_broken.py").write_text("import no_such_module\n")
    service = start_service(tmp_path, slack_stand_in, "--suites-dir", str(suites))
    try:
        names = service.call("GET", "/").json()["available_test_suites"]
        assert {"my_check", "broken", "TestOAIAzureRelease"} <= set(names)
        broken = service.post_run("broken", 1)
        assert broken.status_code == 400, broken.text
        assert "No module named 'no_such_module'" in broken.json()["detail"]
        answer = service.post_run("my_check", 1)
        assert answer.status_code == 200, answer.text
        service.note_children()
        run = service.wait_until_ended(answer.json()["run_id"])
        assert run["status"] == "passed", run
        assert run["report"]["checks"][0]["nodeid"] == "test_my_check.py::test_my_check"
        assert_no_secrets(service)
    finally:
        stop_service(service)


def test_warns_when_bound_beyond_this_host_without_a_key(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "pytest_observatory", "serve", "--host", "0.0.0.0"]
    env = {key: value for key, value in os.environ.items() if key != "OBSERVATORY_API_KEY"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--port", str(free_port()), "--runs-dir", str(tmp_path / "runs")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_S
        while "warning:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(END_S)
    assert "warning: bound to 0.0.0.0 without OBSERVATORY_API_KEY" in log.read_text()


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pytest_observatory", "serve", "--max-concurrent", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "python -m pytest_observatory serve: error: --max-concurrent='0': expected an integer >= 1"
    ]
