"""Live progress: plain lines in CI logs, a redrawn status line in a terminal, under xdist."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest

CHECK = """
import pytest

@pytest.mark.observatory(duration="{duration}", max_failure_rate=0.5, interval="10ms")
async def test_chat(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)
"""
TWO_CHECKS = CHECK + CHECK.replace("test_chat", "test_other")
PLAIN = (
    "observatory progress: {prefix}test_*.py::test_{name}: * of 3.0s (* left), "
    "* probes, */s, *% failed, p95 * ms, last error: http_5xx"
)


def test_plain_lines_every_interval_when_not_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECK.format(duration="3s"))
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock?failure_rate=0.2", "--observatory-progress=1s"
    )
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if line.startswith("observatory progress:")]
    assert 2 <= len(lines) <= 3, lines
    result.stdout.fnmatch_lines([PLAIN.format(prefix="", name="chat")] * 2)
    assert "\x1b[" not in result.stdout.str()


def test_no_progress_with_q_or_within_the_default_interval(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECK.format(duration="2s"))
    quiet = pytester.runpytest_subprocess(
        "--deployment-url=mock", "--observatory-progress=500ms", "-q"
    )
    default = pytester.runpytest_subprocess("--deployment-url=mock")
    for result in (quiet, default):
        result.assert_outcomes(passed=1)
        assert "observatory progress" not in result.stdout.str()


def test_workers_progress_reaches_the_controller_labelled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TWO_CHECKS.format(duration="3s"))
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock?failure_rate=0.2", "--observatory-progress=1s", "-n", "2"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([PLAIN.format(prefix="[[]gw?[]] ", name="chat")])
    result.stdout.fnmatch_lines([PLAIN.format(prefix="[[]gw?[]] ", name="other")])


def test_progress_interval_cli_over_env_over_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nobservatory_progress = 500ms\n")
    pytester.makepyfile(CHECK.format(duration="3s"))
    from_ini = pytester.runpytest_subprocess("--deployment-url=mock")
    monkeypatch.setenv("OBSERVATORY_PROGRESS", "off")
    from_env = pytester.runpytest_subprocess("--deployment-url=mock")
    from_cli = pytester.runpytest_subprocess("--deployment-url=mock", "--observatory-progress=1s")
    counts = [
        result.stdout.str().count("observatory progress: ")
        for result in (from_ini, from_env, from_cli)
    ]
    assert counts[0] >= 4 and counts[1] == 0 and 1 <= counts[2] <= 3, counts


def test_bad_progress_interval(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--observatory-progress=often")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --observatory-progress='often': expected a duration*"])


def run_in_terminal(pytester: pytest.Pytester, *argv: str, timeout_s: float = 60) -> str:
    """Run pytest with a pseudo-terminal as stdout/stderr (a real TTY, 200 columns wide)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200"}
    for name in ("NO_COLOR", "PY_COLORS"):  # pytester sets PY_COLORS=0
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=10)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_one_redrawn_line_per_running_check(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(CHECK.format(duration="3s"))
    output = run_in_terminal(pytester, "--deployment-url=mock?failure_rate=0.2")
    assert "observatory progress" not in output  # the plain form is for logs
    status = f"{path.name}::test_chat: "
    # Drawn below pytest's line, then redrawn in place about once a second.
    first = output.index(f"{path.name} \r\n{status}")  # the terminal turns \n into \r\n
    redraws = output.count(f"\r\x1b[K{status}")
    assert 2 <= redraws <= 3, output
    # Erased before pytest writes the result: back up to the end of pytest's line.
    back = f"\r\x1b[K\x1b[1A\r\x1b[{len(path.name) + 1}C"
    assert output.index(back, first) < output.index("1 passed")
    assert output[output.rindex(back) + len(back)] in ".\x1b"  # the dot, maybe coloured
    assert "PASSED" in output and "Traceback" not in output


def test_a_terminal_under_xdist_shows_every_workers_check(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(TWO_CHECKS.format(duration="3s"))
    output = run_in_terminal(pytester, "--deployment-url=mock", "-n", "2")
    for name in ("test_chat", "test_other"):
        assert re.search(rf"\[gw[01]\] {path.name}::{name}: \S+ of 3\.0s", output), output
    # Two checks at once: a block of two lines, erased bottom-up before pytest writes.
    assert "\r\x1b[K\x1b[1A\r\x1b[K" in output
    assert "2 passed" in output and "Traceback" not in output
