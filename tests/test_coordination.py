"""Dedup and host slots with real pytest processes, real locks and a real Redis.

Every behaviour runs on both back-ends (the ``backend`` fixture): file locks in the test's own
lock directory, and a ``redis-server`` started on a free loopback port for the test session.
Checks report their probes to a loopback recorder, so overlaps are measured, not assumed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from pytest_observatory.coordination import check_identity
from pytest_observatory.locks import LockBackend, open_backend, parse_lock_url
from pytest_observatory.locks.file import FileBackend
from pytest_observatory.marker import CheckSpec
from pytest_observatory.options import Settings
from pytest_observatory.status import snapshot

REDIS_PASSWORD = "redis-pw-SECRET-5d21c0"
REDIS_TTL_S = 2.0
PROCESS_TIMEOUT_S = 120

# A check that reports each probe to the recorder. With `gate`, its one probe blocks until the
# file `release` exists (and reports again then), so a test decides when the holder ends.
CHECK = """
import os, pathlib, time, urllib.request
import pytest

def hit(label):
    urllib.request.urlopen(f"{{os.environ['RECORDER']}}/{{label}}", timeout=10).read()

@pytest.mark.observatory({marker})
def test_soak({params}):
    hit({label})
    if {gate}:
        while not pathlib.Path("release").exists():
            time.sleep(0.05)
        hit({label})
"""


def check(
    marker: str = "duration='1s', interval='50ms'",
    gate: bool = False,
    params: str = "",
    label: str = "os.getpid()",
    extra: str = "",
) -> str:
    if gate:
        marker = "duration='60s', probes=1"
    marker += extra
    return CHECK.format(marker=marker, gate=gate, params=params, label=label)


class Recorder:
    """A loopback HTTP server noting when each label's probes arrive (monotonic seconds)."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, float]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append((self.path.strip("/"), time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> dict[str, tuple[float, float]]:
        spans: dict[str, tuple[float, float]] = {}
        for label, t in self.hits:
            first, last = spans.get(label, (t, t))
            spans[label] = (min(first, t), max(last, t))
        return spans


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    monkeypatch.setenv("RECORDER", rec.url)
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_port() -> Iterator[int]:
    """A real redis-server on a free loopback port, password-protected, stopped by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    # Config on stdin: the password stays off the process list.
    process = subprocess.Popen(
        [binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    assert process.stdin is not None
    config = f"port {port}\nbind 127.0.0.1\nsave ''\nappendonly no\nrequirepass {REDIS_PASSWORD}\n"
    process.stdin.write(config.encode())
    process.stdin.close()
    client = redis.Redis(port=port, password=REDIS_PASSWORD, socket_timeout=2)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            assert process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 15s"
            time.sleep(0.05)
    client.close()
    yield port
    os.kill(process.pid, signal.SIGTERM)
    process.wait(15)


@pytest.fixture
def redis_locks(redis_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The test's pytest processes share an emptied Redis (through the environment)."""
    client = redis.Redis(port=redis_port, password=REDIS_PASSWORD, decode_responses=True)
    client.flushall()
    monkeypatch.setenv(
        "OBSERVATORY_LOCK_URL",
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0?ttl={REDIS_TTL_S:g}s",
    )
    yield client
    client.close()


@pytest.fixture(params=["file", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which lock back-end the test's pytest processes share: file locks are the default."""
    if request.param == "redis":
        request.getfixturevalue("redis_locks")
    return str(request.param)


def spawn(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    return pytester.popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "--deployment-url=mock"]
        + list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(process: subprocess.Popen[bytes]) -> str:
    try:
        stdout, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    return stdout.decode()


def status(pytester: pytest.Pytester, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--observatory-status", *args],
        cwd=pytester.path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def status_json(pytester: pytest.Pytester) -> dict:  # type: ignore[type-arg]
    return json.loads(status(pytester, "--json"))  # type: ignore[no-any-return]


def wait_status(  # type: ignore[type-arg]
    pytester: pytest.Pytester, running: int, queued: int = 0, waiting: int = 0
) -> dict:
    """Polls the locks in this process (what --observatory-status reads): a pytest start-up
    per look would take a core from the tests running beside this one."""
    deadline = time.monotonic() + 60
    counts = (running, queued, waiting)
    lock_dir = Path(os.environ["OBSERVATORY_LOCK_DIR"])  # the pytester fixture's
    backend = open_backend(os.environ.get("OBSERVATORY_LOCK_URL"), lock_dir)
    try:
        while True:
            state = snapshot(backend, max_concurrent=5)
            lists = (state["running"], state["queued"], state["waiting_for_duplicate"])
            if tuple(map(len, lists)) == counts:
                return state
            assert time.monotonic() < deadline, f"status never showed {counts}: {state}"
            time.sleep(0.1)
    finally:
        backend.close()


def checks(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(path.read_text())["checks"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("policy", ["skip", "fail"])
def test_the_same_check_twice_at_once_runs_once_and_the_other_names_the_holder(
    pytester: pytest.Pytester, backend: str, recorder: Recorder, policy: str
) -> None:
    pytester.makepyfile(check(gate=True))  # the winner runs until the loser has ended
    option = f"--observatory-on-duplicate={policy}"
    first = spawn(pytester, option)
    second = spawn(pytester, option)
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while first.poll() is None and second.poll() is None:
        assert time.monotonic() < deadline, "neither process ended"
        time.sleep(0.05)
    (pytester.path / "release").touch()
    outputs = {first.pid: finish(first), second.pid: finish(second)}
    outcomes = {pid: re.findall(r"(\d+ \w+) in ", out)[-1] for pid, out in outputs.items()}
    loses = "1 error" if policy == "fail" else "1 skipped"
    assert sorted(outcomes.values()) == sorted([loses, "1 passed"]), outputs
    (winner,) = (pid for pid, outcome in outcomes.items() if outcome == "1 passed")
    (loser,) = set(outputs) - {winner}
    # Started at once, the loser may find the winner still claiming its slot.
    holder = (
        rf"duplicate of a running check: pid {winner} on host {re.escape(socket.gethostname())}"
    )
    assert re.search(
        rf"{holder}, (started \S+Z, expected end \S+Z|queued for a slot since \S+Z)",
        outputs[loser],
    ), outputs[loser]
    assert set(recorder.spans()) == {str(winner)}  # the skipped one never probed


@pytest.mark.parametrize("how", ["option", "marker"])
def test_wait_runs_duplicates_one_after_the_other(
    pytester: pytest.Pytester, backend: str, recorder: Recorder, how: str
) -> None:
    pytester.makepyfile(check(gate=True, extra=", on_duplicate='wait'" if how == "marker" else ""))
    args = ["--observatory-on-duplicate=wait"] if how == "option" else []
    first = spawn(pytester, "--observatory-report=a.json", *args)
    second = spawn(pytester, "--observatory-report=b.json", *args)
    wait_status(pytester, running=1, waiting=1)
    time.sleep(0.5)
    (pytester.path / "release").touch()
    outputs = finish(first) + finish(second)
    results = checks(pytester.path / "a.json") + checks(pytester.path / "b.json")
    assert [r["verdict"] for r in results] == ["passed", "passed"], outputs
    assert "waiting for a duplicate to end: pid" in outputs
    (early, late) = sorted(recorder.spans().values())
    assert early[1] < late[0], "the duplicates overlapped"
    assert max(r["queued_s"] for r in results) > 0.5  # the second waited, apart from duration
    assert min(r["duration_s"] for r in results) < 0.5


def test_wait_for_a_duplicate_gives_up_at_the_check_s_time_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import os, pathlib, time
        import pytest

        @pytest.fixture
        def gate():  # runs after the locks are taken: the holder keeps them until `release`
            while os.environ.get("HOLD") and not pathlib.Path("release").exists():
                time.sleep(0.05)

        @pytest.mark.observatory(duration="100ms", request_timeout="100ms", on_duplicate="wait")
        def test_soak(gate):
            pass
        """
    )
    monkeypatch.setenv("HOLD", "1")
    holder = spawn(pytester)
    wait_status(pytester, running=1)
    monkeypatch.delenv("HOLD")
    started = time.monotonic()
    output = finish(spawn(pytester))
    waited = time.monotonic() - started
    (pytester.path / "release").touch()
    assert "1 passed" in finish(holder)
    # duration + request timeout + the 30 s grace the runner gives every check
    assert (
        "test_soak: gave up after waiting 30.2s (the check's time limit) for a duplicate" in output
    )
    assert f"pid {holder.pid} on host" in output and "1 error" in output
    assert 30 < waited < 60


def test_eight_checks_on_four_workers_never_run_more_than_two_at_once(
    pytester: pytest.Pytester, backend: str, recorder: Recorder
) -> None:
    pytester.makepyfile(
        check(
            marker="duration='1s', interval='50ms'",
            params="n",
            label="n",
        ).replace("@pytest.mark.obs", "@pytest.mark.parametrize('n', range(8))\n@pytest.mark.obs")
    )
    report = pytester.path / "report.json"
    output = finish(
        spawn(
            pytester, "-n", "4", "--observatory-max-concurrent=2", f"--observatory-report={report}"
        )
    )
    results = checks(report)
    nodeids = sorted(r["nodeid"].split("::")[1] for r in results)
    assert nodeids == [f"test_soak[{n}]" for n in range(8)], output  # each exactly once
    assert all(r["verdict"] == "passed" for r in results), output
    spans = recorder.spans()
    assert sorted(spans) == [str(n) for n in range(8)]
    edges = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2, spans
    assert sum(r["queued_s"] for r in results) > 1.0  # six of them waited for a slot


def test_processes_share_slots_and_start_in_arrival_order(
    pytester: pytest.Pytester, backend: str, recorder: Recorder
) -> None:
    pytester.makepyfile(
        test_a=check(gate=True, label="'a'"),
        test_b=check(marker="duration='1s', probes=3", label="'b'"),
        test_c=check(marker="duration='1s', probes=3", label="'c'"),
    )
    one = "--observatory-max-concurrent=1"
    a = spawn(pytester, one, "test_a.py")
    wait_status(pytester, running=1)
    b = spawn(pytester, one, "test_b.py", "--observatory-report=b.json")
    wait_status(pytester, running=1, queued=1)
    c = spawn(pytester, one, "test_c.py")
    state = wait_status(pytester, running=1, queued=2)
    assert [q["nodeid"] for q in state["queued"]] == [
        "test_b.py::test_soak",
        "test_c.py::test_soak",
    ]
    text = status(pytester, one)
    assert "1 running, 2 queued" in text
    assert any(
        line.startswith("queued 2") and "test_c.py::test_soak" in line for line in text.splitlines()
    ), text
    (pytester.path / "release").touch()
    out_a, out_b, out_c = finish(a), finish(b), finish(c)
    assert "1 passed" in out_a and "1 passed" in out_b and "1 passed" in out_c
    assert "queued for a slot, position 1 of 1 (max-concurrent 1)" in out_b
    assert "queued for a slot, position 2 of 2 (max-concurrent 1)" in out_c
    spans = recorder.spans()
    assert spans["a"][1] < spans["b"][0] and spans["b"][1] < spans["c"][0], spans
    assert checks(pytester.path / "b.json")[0]["queued_s"] > 0.5
    assert status_json(pytester)["running"] == []


def test_a_holder_killed_with_sigkill_frees_its_lock(
    pytester: pytest.Pytester, backend: str, recorder: Recorder
) -> None:
    pytester.makepyfile(check(gate=True))
    holder = spawn(pytester)
    wait_status(pytester, running=1)
    holder.kill()
    finish(holder)  # reaps it and closes its pipe
    killed = time.monotonic()
    wait_status(pytester, running=0)
    sidecars = pytester.path / "observatory-locks"
    if backend == "file":
        assert time.monotonic() - killed < 2  # nothing to expire: the flock died with it
        assert [p.name[:6] for p in sidecars.glob("*.json")] == ["check-"]  # stale, left behind
    (pytester.path / "release").touch()
    output = finish(spawn(pytester, "--observatory-on-duplicate=fail"))
    assert "1 passed" in output, output  # not a duplicate of the dead holder
    assert list(sidecars.glob("*.json")) == []


def test_redis_lock_of_a_sigkilled_holder_expires_within_one_ttl(
    pytester: pytest.Pytester, redis_locks: redis.Redis, recorder: Recorder
) -> None:
    pytester.makepyfile(check(gate=True))
    holder = spawn(pytester)
    deadline = time.monotonic() + 60
    while len(redis_locks.keys("pytest-observatory:*-*")) < 2:  # identity and slot
        assert time.monotonic() < deadline, "the check never took its locks"
        time.sleep(0.05)
    time.sleep(REDIS_TTL_S)  # renewed meanwhile: still held after a whole TTL
    assert len(redis_locks.keys("pytest-observatory:*-*")) == 2
    holder.kill()
    finish(holder)  # reaps it and closes its pipe
    killed = time.monotonic()
    while redis_locks.keys("pytest-observatory:*-*"):
        assert time.monotonic() - killed <= REDIS_TTL_S + 0.5, "locks outlived one TTL"
        time.sleep(0.05)


def test_a_lost_redis_lock_becomes_a_note_of_the_check(
    pytester: pytest.Pytester, redis_locks: redis.Redis, recorder: Recorder
) -> None:
    pytester.makepyfile(check(gate=True))
    holder = spawn(pytester, "--observatory-report=report.json")
    wait_status(pytester, running=1)
    redis_locks.delete(*redis_locks.keys("pytest-observatory:*-*"))  # as if it had expired
    time.sleep(REDIS_TTL_S)  # a renewal or two find the locks gone
    (pytester.path / "release").touch()
    output = finish(holder)
    (result,) = checks(pytester.path / "report.json")
    assert result["verdict"] == "passed"
    assert any("lost its lock pytest-observatory:" in note for note in result["notes"]), result
    assert "note: lost its lock" in output and REDIS_PASSWORD not in output


def test_no_secret_in_sidecars_redis_values_status_or_output(
    pytester: pytest.Pytester,
    backend: str,
    recorder: Recorder,
    secret_key: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("OBSERVATORY_DEPLOYMENT_API_KEY", secret_key)
    pytester.makepyfile(check(gate=True))
    holder = spawn(pytester)
    state = wait_status(pytester, running=1)
    if backend == "file":
        stored = [p.read_text() for p in (pytester.path / "observatory-locks").glob("*.json")]
    else:
        client = request.getfixturevalue("redis_locks")
        stored = [str(client.get(k)) for k in client.keys("pytest-observatory:*-*")]
    assert len(stored) == 2  # the identity lock and the slot
    (running,) = state["running"]
    assert (
        running["nodeid"]
        == "test_no_secret_in_sidecars_redis_values_status_or_output.py::test_soak"
    )
    assert running["pid"] == holder.pid and running["host"] == socket.gethostname()
    assert running["deployment"] == "mock" and running["models"]
    assert running["started"] <= running["expected_end"]
    texts = [*stored, json.dumps(state), status(pytester)]
    (pytester.path / "release").touch()
    texts.append(finish(holder))
    for text in texts:
        assert secret_key not in text and REDIS_PASSWORD not in text
    assert "1 passed" in texts[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--observatory-max-concurrent=0"],
            "--observatory-max-concurrent='0': expected an integer >= 1",
        ),
        (
            ["--observatory-on-duplicate=maybe"],
            "--observatory-on-duplicate='maybe': expected one of skip, fail, wait",
        ),
        (
            ["--observatory-lock-url=http://x"],
            "--observatory-lock-url='http://x': expected a redis:// URL*",
        ),
        (
            ["--observatory-lock-url=redis://:pw-SECRET@h/0?ttl=0s"],
            "--observatory-lock-url='redis://***@h/0?ttl=***': ttl='0s': must be at least 1s",
        ),
    ],
)
def test_bad_coordination_options_name_the_option_and_value(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(check())
    result = pytester.runpytest_subprocess("--deployment-url=mock", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str() and "SECRET" not in result.stderr.str()


def test_bad_on_duplicate_marker_argument(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(check(marker="duration='1s', on_duplicate='queue'"))
    result = pytester.runpytest("--deployment-url=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_soak: observatory marker: on_duplicate='queue': expected one of skip, fail, wait"]
    )


def test_unreachable_redis_fails_the_check_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVATORY_LOCK_URL", f"redis://:pw-SECRET@127.0.0.1:{free_port()}/0")
    pytester.makepyfile(check())
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--deployment-url=mock")
    assert time.monotonic() - started < 30
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_soak: observatory locks: redis redis://127.0.0.1:*/0 (ttl 30s) unreachable: *"]
    )
    assert "SECRET" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    status_run = subprocess.run(
        [sys.executable, "-m", "pytest", "--observatory-status"],
        cwd=pytester.path,
        capture_output=True,
        timeout=60,
    )
    assert status_run.returncode == pytest.ExitCode.USAGE_ERROR
    assert b"unreachable" in status_run.stderr and b"SECRET" not in status_run.stderr


def test_a_worker_dying_mid_check_is_reported_crashed_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, signal
        import pytest

        probes = 0

        @pytest.mark.observatory(duration="30s", interval="50ms")
        def test_dies():
            global probes
            probes += 1
            if probes == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.observatory(duration="1s", interval="50ms")
        def test_lives():
            pass
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-n", "2", "--deployment-url=mock", f"--observatory-report={report}"
    )
    results = {r["nodeid"].split("::")[1]: r for r in checks(report)}
    assert sorted(results) == ["test_dies", "test_lives"], result.stdout.str()
    assert results["test_lives"]["verdict"] == "passed"
    dead = results["test_dies"]
    assert dead["verdict"] == "crashed" and dead["started_at"].endswith("Z")
    assert "died during the check" in dead["notes"][0]
    result.stdout.fnmatch_lines(
        ["CRASHED*::test_dies", "*note: xdist worker gw* died during the check*"]
    )


def test_identity_is_hashed_from_what_makes_a_check_the_same() -> None:
    spec = CheckSpec(duration_s=60, models=("b", "a"))
    settings = Settings("https://user:pw@gw.example/v1", api_key="sk-1")
    base = check_identity("t.py::test", settings, spec)
    assert base == check_identity("t.py::test", settings, replace(spec, models=("a", "b")))
    assert base == check_identity("t.py::test", settings, replace(spec, on_duplicate="wait"))
    assert base != check_identity("t.py::other", settings, spec)
    assert base != check_identity("t.py::test", replace(settings, api_key="sk-2"), spec)
    other_user = replace(settings, deployment_url="https://user:pw2@gw.example/v1")
    assert base != check_identity("t.py::test", other_user, spec)
    assert base != check_identity("t.py::test", settings, replace(spec, duration_s=30))
    assert base != check_identity(
        "t.py::test", replace(settings, deployment_url="https://gw2.example/v1"), spec
    )
    assert "sk-1" not in base and len(base) == 32


def test_lock_urls_carry_their_ttl_and_print_without_credentials() -> None:
    client_url, description, ttl_s = parse_lock_url(
        "redis://:pw@cache:6380/2?ttl=10s&ssl_cert_reqs=none"
    )
    assert client_url == "redis://:pw@cache:6380/2?ssl_cert_reqs=none"
    assert description == "redis redis://cache:6380/2 (ttl 10s)" and ttl_s == 10
    assert parse_lock_url("redis://cache/0")[2] == 30
    for bad in ("file:///tmp/x", "redis:///0", "redis://h/0?ttl=soon"):
        with pytest.raises(ValueError):
            parse_lock_url(bad)


@pytest.fixture(params=["file", "redis"])
def lock_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LockBackend]:
    """A back-end in this process, for the contract every back-end keeps."""
    opened: LockBackend
    if request.param == "file":
        opened = FileBackend(tmp_path)
    else:
        client = request.getfixturevalue("redis_locks")
        opened = open_backend(os.environ["OBSERVATORY_LOCK_URL"], tmp_path)
        assert client.keys("*") == []
    yield opened
    opened.close()


def test_lock_backend_contract(lock_backend: LockBackend, tmp_path: Path) -> None:
    lease = lock_backend.try_lock("check-x", {"pid": 1})
    assert lease is not None
    assert lock_backend.try_lock("check-x", {"pid": 2}) is None  # held, even by this process
    assert lock_backend.holder("check-x") == {"pid": 1}
    assert lock_backend.holders("check-") == [("check-x", {"pid": 1})]
    assert lock_backend.holders("slot-") == []
    lease.release()
    lease.release()  # idempotent
    assert lock_backend.holder("check-x") is None
    again = lock_backend.try_lock("check-x", {"pid": 3})
    assert again is not None and lock_backend.holder("check-x") == {"pid": 3}
    again.release()
    first, second = lock_backend.ticket_number(), lock_backend.ticket_number()
    assert second > first
    ticket = lock_backend.try_lock(f"ticket-{first}", {}, once=True)
    assert ticket is not None and len(lock_backend.holders("ticket-")) == 1
    ticket.release()
    assert lock_backend.holders("ticket-") == []
    if isinstance(lock_backend, FileBackend):  # a ticket leaves no file; reused names keep theirs
        assert sorted(p.name for p in tmp_path.iterdir()) == ["check-x.lock"]
