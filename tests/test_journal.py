"""A run killed with SIGKILL leaves a journal that turns into its JSON report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

KILLED_CHECK = """
import pathlib
import pytest

@pytest.mark.observatory(duration="1h", window="500ms", interval="10ms")
async def test_long(deployment, model):
    pathlib.Path("started").touch()
    await deployment.chat(model, "hi")
"""


def start_and_kill(pytester: pytest.Pytester, *argv: str) -> None:
    process = pytester.popen([sys.executable, "-m", "pytest", *argv], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (pytester.path / "started").exists():
            assert time.monotonic() < deadline, "the check never started"
            time.sleep(0.1)
        time.sleep(2.0)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_killed_runs_journal_converts_to_its_report(
    pytester: pytest.Pytester, secret_key: str
) -> None:
    pytester.makepyfile(KILLED_CHECK)
    start_and_kill(
        pytester,
        f"--deployment-url=mock?api_key={secret_key}&failure_rate=0.1",
        f"--deployment-api-key={secret_key}",
        "--observatory-report=r.json",
    )
    assert not (pytester.path / "r.json").exists()
    journal = pytester.path / "r.json.journal.jsonl"
    assert secret_key not in journal.read_text()
    converted = subprocess.run(
        [sys.executable, "-m", "pytest_observatory", "journal", str(journal), "-o", "out.json"],
        capture_output=True,
        text=True,
        cwd=pytester.path,
        timeout=60,
    )
    assert converted.returncode == 0, converted.stderr
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["deployment_url"] == "mock?api_key=***&failure_rate=0.1"
    (check,) = report["checks"]
    assert check["verdict"] == "interrupted"
    assert check["nodeid"] == "test_a_killed_runs_journal_converts_to_its_report.py::test_long"
    # Killed ~2 s in, with 0.5 s windows: the windows that had closed, in order, all counted.
    starts = [window["start_s"] for window in check["windows"]]
    assert len(starts) >= 2 and starts == sorted(starts)
    assert check["probes"] >= sum(window["probes"] for window in check["windows"]) > 20
    assert check["failures"] == pytest.approx(check["probes"] / 10, abs=2)
    assert check["errors"] and check["latency_ms"]["p50"] > 0
    assert any(note.startswith("rebuilt from the journal") for note in check["notes"])


def test_a_run_that_ends_removes_its_journal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(KILLED_CHECK.replace('duration="1h"', 'duration="1200ms"'))
    result = pytester.runpytest("--deployment-url=mock", "--observatory-report=r.json")
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.glob("*.journal.jsonl"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "python -m pytest_observatory journal: error: cannot read missing.jsonl*"),
        ("not json\n", "python -m pytest_observatory journal: error: *not a journal*"),
    ],
)
def test_a_bad_journal_is_a_one_line_error(
    pytester: pytest.Pytester, content: str | None, expected: str
) -> None:
    path = pytester.path / ("missing.jsonl" if content is None else "bad.jsonl")
    if content is not None:
        path.write_text(content)
    result = pytester.run(sys.executable, "-m", "pytest_observatory", "journal", path.name)
    assert result.ret == 1
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()
