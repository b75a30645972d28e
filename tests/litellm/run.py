"""The bundled suites, and faults injected at the mock, through a real LiteLLM proxy.

    python tests/litellm/run.py [--venv .venv-litellm] [--duration 5s] [--limit 290]

1. Installs the current ``litellm[proxy]`` into its own virtual environment (``--venv``; never
   the project's: the proxy's pins must not move ours).
2. Starts two embedded mocks (``python -m pytest_observatory.mock``): a clean one, and a faulty
   one serving ``chaos-gpt-4o`` (every 10th request a 503, chaos resets, invalid JSON and 429s,
   streams cut off).
3. Starts the proxy on 127.0.0.1 with a config pointing at both, offline
   (``LITELLM_LOCAL_MODEL_COST_MAP=True``, telemetry off) and with ``num_retries: 0``: a retry
   would hide the very faults we count. Its master key is made up per run and travels only in
   environment variables, never on a command line.
4. Waits for ``/health/liveliness``; runs ``suites/`` and ``proxy_checks.py`` (streaming, helpers
   and the OpenAI SDK) through the proxy against the clean models, which must pass; then
   ``proxy_checks.py`` against ``chaos-gpt-4o``, and checks that every fault the mock injected
   came out as a failed probe, classified.
5. Stops the proxy and the mocks by PID, whatever happened.

Exit status 0 when all of that holds; the proxy's log tail is printed when it does not start.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).resolve().parent / "proxy_checks.py"
CLEAN_MODELS = ("mock-gpt-4o", "mock-gpt-4o-mini")
CHAOS_MODEL = "chaos-gpt-4o"
# Faults of the chaos mock, and the categories each may come out as through the proxy: LiteLLM
# turns upstream faults into HTTP errors of its own (a reset or invalid JSON into a 500), and a
# stream cut off upstream into an in-band error event.
CHAOS_KNOBS = (
    "--failure-rate=0.1",
    "--failure-status=503",
    "--reset-rate=0.04",
    "--bad-json-rate=0.04",
    "--throttle-rate=0.04",
    "--stream-fault=truncate",
    "--stream-fault-rate=0.1",
    "--stream-fault-after=1",
    "--seed=1",
)
EXPECTED_CATEGORIES = {"http_5xx", "http_429", "stream_truncated"}
PIP_TIMEOUT_S = 240.0
START_TIMEOUT_S = 120.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-litellm")
    parser.add_argument("--duration", default="5s", help="--observatory-duration of each check")
    parser.add_argument(
        "--limit", type=int, default=290, help="seconds before the run gives up (CI: < 5 min)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    # SIGTERM (a cancelled CI job) and the time limit unwind like an error, so the ExitStack
    # below still stops the proxy and the mocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("litellm run: terminated"))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"litellm run: gave up after {args.limit}s"))
    signal.alarm(args.limit)
    litellm = install(args.venv)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="litellm-run-") as tmp:
        work = Path(tmp)
        clean_port = stack.enter_context(mock(work / "mock.log"))
        chaos_port = stack.enter_context(mock(work / "chaos-mock.log", *CHAOS_KNOBS))
        key = "sk-litellm-run-" + secrets.token_hex(16)
        proxy_port = stack.enter_context(proxy(litellm, work, key, clean_port, chaos_port))
        print(f"proxy up after {time.monotonic() - started:.0f}s", flush=True)
        env = {**os.environ, "OBSERVATORY_DEPLOYMENT_API_KEY": key}
        deployment = f"--deployment-url=http://127.0.0.1:{proxy_port}"
        common = [deployment, f"--observatory-duration={args.duration}", "-p", "no:cacheprovider"]
        clean = pytest_run(
            [
                str(ROOT / "suites"),
                str(CHECKS),
                "-m",
                "observatory",
                f"--embedding-models={CLEAN_MODELS[0]}",  # served by the mock's /v1/embeddings
                *common,
            ],
            env,
            work / "clean.json",
            models=CLEAN_MODELS,
        )
        faults = pytest_run([str(CHECKS), *common], env, work / "faults.json", (CHAOS_MODEL,))
        injected = fetch_json(f"http://127.0.0.1:{chaos_port}/mock/stats")
    problems = verdict(clean, faults, injected)
    for problem in problems:
        print(f"litellm run: {problem}", flush=True)
    print(f"litellm run: {'FAILED' if problems else 'ok'} in {time.monotonic() - started:.0f}s")
    return 1 if problems else 0


def install(venv: Path) -> Path:
    """The current litellm[proxy] in its own venv; ``pip -U`` keeps a reused venv current."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    command = [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "litellm[proxy]"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, timeout=PIP_TIMEOUT_S)
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"litellm {version} in {venv}", flush=True)
    return venv / "bin" / "litellm"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def started(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session, its output in ``log``; stopped by PID on the way out
    (SIGTERM to its process group, SIGKILL after 10 s)."""
    with log.open("wb") as output:
        child = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield child
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if child.poll() is not None:
                break
            os.killpg(child.pid, sig)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                continue
        print(f"stopped {Path(command[0]).name} (pid {child.pid})", flush=True)


@contextmanager
def mock(log: Path, *knobs: str) -> Iterator[int]:
    port = free_port()
    models = f"--models={CHAOS_MODEL}" if knobs else f"--models={','.join(CLEAN_MODELS)}"
    command = [sys.executable, "-m", "pytest_observatory.mock", f"--port={port}", models, *knobs]
    with started(command, log) as child:
        wait_until_up(f"http://127.0.0.1:{port}/health", child, log, 30.0)
        yield port


@contextmanager
def proxy(litellm: Path, work: Path, key: str, clean_port: int, chaos_port: int) -> Iterator[int]:
    config = work / "config.yaml"
    config.write_text(proxy_config(clean_port, chaos_port))
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no internet: the bundled cost map
        "LITELLM_TELEMETRY": "False",
    }
    command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    log = work / "proxy.log"
    with started([*command, "--telemetry", "False"], log, env) as child:
        wait_until_up(f"http://127.0.0.1:{port}/health/liveliness", child, log, START_TIMEOUT_S)
        yield port


def proxy_config(clean_port: int, chaos_port: int) -> str:
    """YAML by hand (JSON is YAML): the proxy's venv has PyYAML, ours need not."""
    routes = [(model, clean_port) for model in CLEAN_MODELS] + [(CHAOS_MODEL, chaos_port)]
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": f"http://127.0.0.1:{port}/v1",
                    "api_key": "sk-mock-upstream",
                },
            }
            for model, port in routes
        ],
        "litellm_settings": {"num_retries": 0, "request_timeout": 30, "telemetry": False},
    }
    return json.dumps(config, indent=2)


def wait_until_up(url: str, child: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise SystemExit(f"litellm run: {url} did not come up; last lines of {log.name}:\n{tail}")


def pytest_run(
    arguments: list[str], env: dict[str, str], report: Path, models: Sequence[str]
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        *arguments,
        f"--models={','.join(models)}",
        f"--observatory-report={report}",
        "-q",
    ]
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    loaded: dict[str, Any] = json.loads(report.read_text())
    loaded["exit_status"] = result.returncode
    return loaded


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        loaded: dict[str, Any] = json.load(response)
        return loaded


def verdict(clean: dict[str, Any], faults: dict[str, Any], injected: dict[str, Any]) -> list[str]:
    """What must hold; each broken expectation is one line."""
    problems = []
    if clean["exit_status"] != 0:
        problems.append(f"the clean run exited {clean['exit_status']}, expected 0")
    for check in clean["checks"]:
        if check["verdict"] != "passed":
            problems.append(f"{check['nodeid']}: {check['verdict']} through the proxy")
    streamed = sum((check["streams"] or {}).get("count", 0) for check in clean["checks"])
    if not streamed:
        problems.append("no streamed probe went through the proxy")
    probes = sum(check["probes"] for check in faults["checks"])
    failures = sum(check["failures"] for check in faults["checks"])
    categories: dict[str, int] = {}
    for check in faults["checks"]:
        for category, count in check["error_categories"].items():
            categories[category] = categories.get(category, 0) + count
    chaos = sum(injected["chaos"].values())
    total_injected = injected["failures_injected"] + chaos
    print(
        f"faults: the mock served {injected['requests']} requests and injected {total_injected} "
        f"faults ({injected['failures_injected']} failures and stream faults, chaos "
        f"{injected['chaos']}); through the proxy {probes} probes, {failures} failed: "
        f"{json.dumps(categories, sort_keys=True)}",
        flush=True,
    )
    # Each fault fails its probe, unless the proxy retried it (one more mock request; LiteLLM
    # does now and then despite num_retries 0) and the retry went through.
    retried = injected["requests"] - probes
    if not total_injected - max(retried, 0) <= failures <= total_injected:
        problems.append(
            f"{total_injected} faults injected, {failures} probes failed "
            f"({injected['requests']} mock requests for {probes} probes)"
        )
    if set(categories) != EXPECTED_CATEGORIES:
        problems.append(f"categories {sorted(categories)}, expected {sorted(EXPECTED_CATEGORIES)}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
