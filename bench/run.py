"""Benchmarks for the targets of the measurement issue; see bench/README.md for results.

    python bench/run.py [--seconds 10] [--locust PATH] [--only throughput,openloop,...]

throughput  one fast static endpoint (nginx on core 0 when installed, else the mock gateway),
            clients pinned to core 1, 32 in flight: locust FastHttpUser, raw aiohttp, and the
            engine with `await deployment.chat(...)`; prints requests/s and the ratios.
openloop    the same endpoint, an open loop at 3000 probes/s: achieved rate and late starts.
latency     nginx (or the mock) answering after a fixed 50 ms, the engine and a bare aiohttp
            client at concurrency 64: measured p50/p99 against 50 ms.
memory      peak RSS of a session after 100,000 and after 1,000,000 trivial probes.
import      `pytest --collect-only` of 200 plain tests with and without the plugin.

Every server binds 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SERVER_CORE, CLIENT_CORE = "0", "1"
CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: str, command: list[str]) -> list[str]:
    return ["taskset", "-c", core, *command] if shutil.which("taskset") else command


def wait_listening(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")


@contextmanager
def endpoint(workdir: Path, latency_ms: int = 0) -> Iterator[tuple[str, str]]:
    """A static chat-completions endpoint: nginx if installed (its echo module, from Debian's
    libnginx-mod-http-echo, for a fixed delay), else the mock gateway. Yields (url, text)."""
    port = free_port()
    nginx = shutil.which("nginx")
    delayed = bool(latency_ms)
    if nginx and (not delayed or ECHO_MODULE.exists()):
        conf = workdir / "nginx.conf"
        body = CHAT_BODY.replace("'", "\\'")
        if delayed:
            module = f"load_module {ECHO_MODULE};"
            answer = f"echo_sleep {latency_ms / 1000}; echo '{body}';"
        else:
            module, answer = "", f"return 200 '{body}';"
        conf.write_text(
            textwrap.dedent(
                f"""
                {module}
                worker_processes 1;
                daemon off;
                pid {workdir}/nginx.pid;
                error_log stderr error;
                events {{ worker_connections 4096; }}
                http {{
                    access_log off;
                    client_body_temp_path {workdir}/body;
                    proxy_temp_path {workdir}/proxy;
                    fastcgi_temp_path {workdir}/fastcgi;
                    uwsgi_temp_path {workdir}/uwsgi;
                    scgi_temp_path {workdir}/scgi;
                    keepalive_requests 10000000;
                    server {{
                        listen 127.0.0.1:{port};
                        location / {{ default_type application/json; {answer} }}
                    }}
                }}
                """
            )
        )
        command = pinned(SERVER_CORE, [nginx, "-c", str(conf), "-p", str(workdir)])
        description = "nginx (static JSON" + (f", echo_sleep {latency_ms} ms)" if delayed else ")")
    else:
        query = ["--port", str(port), "--models", "m", "--latency", f"{latency_ms}ms"]
        command = pinned(SERVER_CORE, [sys.executable, "-m", "pytest_observatory.mock", *query])
        description = f"mock gateway (latency {latency_ms} ms)"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}", description
    finally:
        server.terminate()
        server.wait(10)


LOCUSTFILE = """
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

class Chat(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat(self):
        self.client.post("/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
"""

AIOHTTP_CLIENT = """
import asyncio, json, statistics, sys, time
import aiohttp

async def main(url, seconds, concurrency):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 5})
    latencies = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        deadline = time.perf_counter() + seconds
        async def worker():
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url + "/v1/chat/completions", data=body,
                                        headers={"Content-Type": "application/json"}) as r:
                    json.loads(await r.read())
                latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = len(latencies) / (time.perf_counter() - started)
    latencies.sort()
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] for q in (0.5, 0.99))
    print(json.dumps({"rate": rate, "p50": p50, "p99": p99}))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
"""

CHECK = """
import pytest

@pytest.mark.observatory(
    duration="{seconds}s", concurrency={concurrency}, max_failure_rate=0.5{extra}
)
async def test_chat(deployment):
    await deployment.chat("m", "hi", max_tokens=5)
"""


def run_locust(locust: str, url: str, seconds: float, users: int, workdir: Path) -> float:
    (workdir / "locustfile.py").write_text(LOCUSTFILE)
    prefix = workdir / "locust"
    command = [
        locust,
        "-f",
        str(workdir / "locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{int(seconds)}s",
        "--host",
        url,
        "--only-summary",
        "--csv",
        str(prefix),
    ]
    subprocess.run(pinned(CLIENT_CORE, command), capture_output=True, timeout=seconds + 60)
    with open(f"{prefix}_stats.csv") as stats:
        rows = list(csv_rows(stats.read()))
    aggregated = next(row for row in rows if row["Name"] == "Aggregated")
    return float(aggregated["Requests/s"])


def csv_rows(text: str) -> Iterator[dict[str, str]]:
    import csv
    import io

    yield from csv.DictReader(io.StringIO(text))


def run_aiohttp(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    """A bare aiohttp client (keeps every latency: fine for a bench, not for a 3-hour run)."""
    command = [sys.executable, "-c", AIOHTTP_CLIENT, url, str(seconds), str(concurrency)]
    result = subprocess.run(
        pinned(CLIENT_CORE, command), capture_output=True, text=True, timeout=seconds + 60
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def run_engine(
    url: str, seconds: float, concurrency: int, workdir: Path, extra: str = ""
) -> dict[str, Any]:
    test = workdir / "test_bench_engine.py"
    test.write_text(CHECK.format(seconds=seconds, concurrency=concurrency, extra=extra))
    argv = [f"--deployment-url={url}", "--models=m"]
    return run_check(test, argv, seconds + 120, pinned_to=CLIENT_CORE)


def run_check(
    test: Path, argv: list[str], timeout_s: float, pinned_to: str | None = None
) -> dict[str, Any]:
    """Run one check file in a pytest subprocess; return its check from the JSON report."""
    report = test.with_suffix(".json")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(test),
        *argv,
        f"--observatory-report={report}",
        "-W",
        "ignore::pytest.PytestDeprecationWarning",
    ]
    if pinned_to is not None:
        command = pinned(pinned_to, command)
    subprocess.run(command, capture_output=True, timeout=timeout_s, cwd=test.parent)
    check: dict[str, Any] = json.loads(report.read_text())["checks"][0]
    return check


def throughput(args: argparse.Namespace, workdir: Path) -> None:
    with endpoint(workdir) as (url, description):
        print(f"## throughput: {description}, clients on core {CLIENT_CORE}, 32 in flight")
        results: dict[str, float] = {}
        locust = args.locust or shutil.which("locust")
        if locust:
            results["locust FastHttpUser"] = run_locust(locust, url, args.seconds, 32, workdir)
        else:
            print("(locust not found: pass --locust PATH)")
        results["aiohttp"] = run_aiohttp(url, args.seconds, 32)["rate"]
        check = run_engine(url, args.seconds, 32, workdir)
        probes, duration = check["probes"], check["duration_s"]
        assert isinstance(probes, int) and isinstance(duration, float)
        results["observatory engine"] = probes / duration
        for name, rate in results.items():
            print(f"{name:<22} {rate:>9,.0f} req/s")
        engine = results["observatory engine"]
        for name in ("locust FastHttpUser", "aiohttp"):
            if name in results:
                print(f"engine / {name:<13} {engine / results[name]:>9.2f}x")
        print(f"engine failures: {check['failures']}")


def open_loop(args: argparse.Namespace, workdir: Path) -> None:
    with endpoint(workdir) as (url, description):
        print(f"## open loop: {description}, rate=3000 on core {CLIENT_CORE}")
        check = run_engine(url, args.seconds, 1024, workdir, extra=", rate=3000")
        load = check["load"]
        assert isinstance(load, dict)
        print(
            f"scheduled {load['scheduled_probes']}, started {check['probes']}, "
            f"achieved {load['achieved_rate']:,.1f}/s, late {load['late_probes']}, "
            f"max lag {load['max_lag_ms']} ms"
        )


def latency(args: argparse.Namespace, workdir: Path) -> None:
    with endpoint(workdir, latency_ms=50) as (url, description):
        print(f"## latency: {description}, clients at concurrency 64 on core {CLIENT_CORE}")
        check = run_engine(url, args.seconds, 64, workdir)
        latency_ms = check["latency_ms"]
        http = check["http"]
        assert isinstance(latency_ms, dict) and isinstance(http, dict)
        rows = [
            ("engine, probe", latency_ms),
            ("engine, http total", http["total_ms"]),
            ("bare aiohttp", run_aiohttp(url, args.seconds, 64)),
        ]
        for name, figures in rows:
            p50, p99 = figures["p50"], figures["p99"]
            print(
                f"{name:<19} p50 {p50:7.2f} ms ({p50 - 50:+.2f})  "
                f"p99 {p99:7.2f} ms ({p99 - 50:+.2f})"
            )
        print(f"engine probes {check['probes']}, failures {check['failures']}")


MEMORY_CHECK = """
import pytest

calls = 0

@pytest.mark.observatory(duration="1h", probes={probes}, models=["a", "b", "c"],
                         max_failure_rate=0.5)
async def test_noop(model):
    # One probe in ten fails, with 100 distinct messages: exercises the bounded error
    # counter, the burst tracker and every histogram.
    global calls
    calls += 1
    if calls % 10 == 0:
        raise ValueError(f"error {{calls % 1000}}")
"""

MEMORY_CONFTEST = """
import resource

def pytest_sessionfinish(session):
    print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(args: argparse.Namespace, workdir: Path) -> None:
    print("## memory: peak RSS of a session running trivial probes (engine + recorder)")
    (workdir / "conftest.py").write_text(MEMORY_CONFTEST)
    peaks = {}
    for probes in (100_000, 1_000_000):
        (workdir / "test_memory.py").write_text(MEMORY_CHECK.format(probes=probes))
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
             "test_memory.py", "--deployment-url=http://127.0.0.1:9",
             "-W", "ignore::pytest.PytestDeprecationWarning"],
            capture_output=True, text=True, timeout=900, cwd=workdir,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        found = re.search(r"MAXRSS_KB (\d+)", result.stdout)
        if found is None:
            raise RuntimeError(f"memory run failed:\n{result.stdout}\n{result.stderr}")
        peaks[probes] = int(found.group(1)) / 1024
        rate = probes / elapsed
        print(f"{probes:>9,} probes: peak RSS {peaks[probes]:6.1f} MB ({rate:,.0f} probes/s)")
    print(f"difference: {peaks[1_000_000] - peaks[100_000]:+.1f} MB")
    (workdir / "conftest.py").unlink()


def import_overhead(args: argparse.Namespace, workdir: Path) -> None:
    print("## import and collection: `pytest --collect-only` of 200 plain tests")
    suite = workdir / "plain"
    suite.mkdir(exist_ok=True)
    plain = "".join(f"def test_{i}():\n    pass\n" for i in range(200))
    (suite / "test_plain.py").write_text(plain)
    timings: dict[str, list[float]] = {"with plugin": [], "without plugin": []}
    for _ in range(args.repeat):
        for name, extra in (("with plugin", []), ("without plugin", ["-p", "no:observatory"])):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                 *extra, str(suite)],
                capture_output=True, timeout=120, cwd=suite,
            )  # fmt: skip
            timings[name].append(time.perf_counter() - started)
    best = {name: min(values) * 1000 for name, values in timings.items()}
    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    for name in timings:
        print(f"{name:<15} best {best[name]:6.0f} ms  median {medians[name]:6.0f} ms")
    print(
        f"overhead: best {best['with plugin'] - best['without plugin']:+.0f} ms, "
        f"median {medians['with plugin'] - medians['without plugin']:+.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=15, help="runs of the import benchmark")
    parser.add_argument("--locust", default=None, help="the locust executable")
    parser.add_argument("--only", default="throughput,openloop,latency,memory,import")
    args = parser.parse_args()
    benchmarks = {
        "throughput": throughput,
        "openloop": open_loop,
        "latency": latency,
        "memory": memory,
        "import": import_overhead,
    }
    with tempfile.TemporaryDirectory(prefix="observatory-bench-") as tmp:
        for name in args.only.split(","):
            benchmarks[name](args, Path(tmp))
            print()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
