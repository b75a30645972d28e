"""Time to verdict: how long a broken release check takes to fail, with and without fail-fast.

    python bench/fail_fast.py [--duration 10m]

Two broken deployments, each checked in the shape of the original release suite (one lane,
1 s pause after each probe, two models, default max_failure_rate 1%, windows of 10 s and
max_window_failure_rate 10%), once with ``fail_fast=True`` and once without; the four sessions
run side by side (at one probe per second they barely load the machine):

dead   --deployment-url=http://127.0.0.1:9: every connection refused.
ttl    the mock's TTL mode, mock?burst_every=60s&burst_length=5s: from 60 s on, every 60 s, the
       first model fails for 5 s ("Cannot send a request, as the client has been closed").

Prints, per session, the wall-clock time of the whole pytest run, the check's own duration,
its probes, and the fail-fast reason. Every run is bounded by the duration plus two minutes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from pathlib import Path

from run import run_check  # bench/run.py: this script runs from bench/

CHECK = """
import pytest

@pytest.mark.observatory(
    duration={duration!r}, interval="1s", window="10s", max_window_failure_rate=0.1,
    fail_fast={fail_fast},
)
async def test_release(deployment, model):
    await deployment.chat(model, "Hello! This is a release test.", max_tokens=50)
"""
SCENARIOS = {
    "dead": "http://127.0.0.1:9",
    "ttl": "mock?burst_every=60s&burst_length=5s",
}


def run(name: str, fail_fast: bool, duration: str, limit_s: float, workdir: Path) -> str:
    folder = workdir / f"{name}-{fail_fast}"
    folder.mkdir()
    test = folder / "test_release.py"
    test.write_text(CHECK.format(duration=duration, fail_fast=fail_fast))
    argv = [f"--deployment-url={SCENARIOS[name]}", "--models=mock-gpt-4o,mock-gpt-4o-mini"]
    started = time.monotonic()
    check = run_check(test, argv, limit_s)
    wall_s = time.monotonic() - started
    stopped = check["stopped_early"]
    reason = "ran the full duration" if stopped is None else stopped["reason"]
    return (
        f"{name:<5} fail_fast={fail_fast!s:<5}  {check['verdict']:<7} after "
        f"{wall_s:7.1f} s (check {check['duration_s']:7.1f} s, {check['probes']:4} probes): "
        f"{reason}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="10m", help="the checks' duration (default 10m)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pytest_observatory.durations import parse_duration

    limit_s = parse_duration(args.duration) + 120
    jobs = [(name, fail_fast) for name in SCENARIOS for fail_fast in (True, False)]
    with tempfile.TemporaryDirectory(prefix="observatory-failfast-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            futures = [
                pool.submit(run, name, fail_fast, args.duration, limit_s, Path(tmp))
                for name, fail_fast in jobs
            ]
            print(f"## time to verdict: {args.duration} release checks of broken deployments")
            for future in futures:
                print(future.result())


if __name__ == "__main__":
    main()
