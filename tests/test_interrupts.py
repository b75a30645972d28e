"""A run stopped by Ctrl-C or a timeout still reports what it measured."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

LONG_CHECK = """
import pytest

@pytest.mark.observatory(duration="1h", interval="20ms")
async def test_long(deployment, model):
    await deployment.chat(model, "hi")
"""


def wait_for_probes(pytester: pytest.Pytester, marker_file: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not (pytester.path / marker_file).exists():
        assert time.monotonic() < deadline, "the check never started"
        time.sleep(0.1)


def ctrl_c(
    pytester: pytest.Pytester, after_s: float, *argv: str, signum: int = signal.SIGINT
) -> tuple[int, str]:
    """Run pytest in a child, send it a signal (Ctrl-C's by default) `after_s` after the first
    probe started, and return its exit status and output; a child still alive 20 s later fails
    the test."""
    process = pytester.popen(
        [sys.executable, "-m", "pytest", "--deployment-url=mock", *argv],
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_probes(pytester, "started")
        time.sleep(after_s)
        process.send_signal(signum)
        stdout, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout.decode()


def test_ctrl_c_reports_an_interrupted_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pathlib
        import pytest

        @pytest.mark.observatory(duration="1h", interval="20ms")
        async def test_long(deployment, model):
            pathlib.Path("started").touch()  # the first probe has run
            await deployment.chat(model, "hi")
        """
    )
    report = pytester.path / "report.json"
    returncode, output = ctrl_c(pytester, 1.5, f"--observatory-report={report}")
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERRUPTED" in output and "= observatory =" in output
    (check,) = json.loads(report.read_text())["checks"]
    assert check["verdict"] == "interrupted"
    assert check["probes"] > 10
    assert 1.0 < check["duration_s"] < 30


def test_pytest_timeout_ends_a_check_as_interrupted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.timeout(1.5)
        @pytest.mark.observatory(duration="1h", interval="20ms")
        async def test_long(deployment, model):
            await deployment.chat(model, "hi")
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock", f"--observatory-report={report}", "-p", "timeout"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*", "INTERRUPTED*test_long*"])
    (check,) = json.loads(report.read_text())["checks"]
    assert check["verdict"] == "interrupted" and check["probes"] > 10


def test_checks_get_a_timeout_that_outlasts_their_duration(pytester: pytest.Pytester) -> None:
    """A global --timeout for unit tests must not cut a check short."""
    pytester.makepyfile(LONG_CHECK.replace('duration="1h"', 'duration="2s"'))
    result = pytester.runpytest_subprocess("--deployment-url=mock", "--timeout=1")
    result.assert_outcomes(passed=1)


HUNG_SYNC_PROBE = """
import pathlib, time
import pytest

@pytest.mark.observatory(duration="1s", request_timeout="1s")
def test_hangs(deployment):
    pathlib.Path("started").touch()
    time.sleep(60)
"""


def test_a_hung_sync_probe_does_not_keep_pytest_alive(pytester: pytest.Pytester) -> None:
    """Reported hung at duration + request_timeout; the process then ends, whatever the probe's
    thread still does (worker threads are never joined)."""
    pytester.makepyfile(HUNG_SYNC_PROBE)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock", "--observatory-report=r.json", timeout=60
    )
    assert time.monotonic() - started < 20  # the probe sleeps 60 s
    result.assert_outcomes(failed=1)
    (check,) = json.loads((pytester.path / "r.json").read_text())["checks"]
    assert check["error_categories"] == {"timeout": 1}
    assert "(hung)" in next(iter(check["errors"]))


def test_ctrl_c_during_a_hung_sync_probe_ends_the_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HUNG_SYNC_PROBE.replace('duration="1s"', 'duration="1h"'))
    returncode, output = ctrl_c(pytester, 0.0)  # the probe sleeps 60 s; the child gets 20
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "= observatory =" in output


TWO_LONG_CHECKS = """
import pathlib
import pytest

@pytest.mark.observatory(duration="1h", interval="20ms")
async def test_one(deployment, model):
    pathlib.Path("started").touch()
    await deployment.chat(model, "hi")

@pytest.mark.observatory(duration="1h", interval="20ms")
async def test_two(deployment, model):
    pathlib.Path("started").touch()
    await deployment.chat(model, "hi")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_keeps_what_the_check_measured(pytester: pytest.Pytester, signum: int) -> None:
    """What a CI runner sends on cancel: the check stops, its figures are reported in the
    summary and the JSON report, the next check never starts, the exit status is non-zero."""
    pytester.makepyfile(TWO_LONG_CHECKS)
    returncode, output = ctrl_c(pytester, 1.5, "--observatory-report=r.json", signum=signum)
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    name = signal.Signals(signum).name
    assert f"observatory check interrupted: stopped by {name}" in output
    assert "= observatory =" in output
    (check,) = json.loads((pytester.path / "r.json").read_text())["checks"]
    assert check["verdict"] == "interrupted" and check["probes"] > 10
    assert check["notes"] == [f"stopped by {name}"]
    assert 1.0 < check["duration_s"] < 20


def test_sigterm_to_the_xdist_controller_reaches_the_workers(pytester: pytest.Pytester) -> None:
    """Only the controller gets the signal; it passes it on, and each worker's check comes back
    interrupted with its figures, reported once by the controller."""
    pytester.makepyfile(TWO_LONG_CHECKS)
    returncode, output = ctrl_c(
        pytester, 2.0, "-n", "2", "--observatory-report=r.json", signum=signal.SIGTERM
    )
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    checks = json.loads((pytester.path / "r.json").read_text())["checks"]
    assert sorted(check["nodeid"].split("::")[1] for check in checks) == ["test_one", "test_two"]
    for check in checks:
        assert check["verdict"] == "interrupted" and check["probes"] > 10, check
        assert check["notes"] == ["stopped by SIGTERM"]
