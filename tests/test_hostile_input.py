"""Deployments and probes that misbehave: every fault is a classified failure in the report,
never a traceback from inside the plugin, never a hang. (Bad marker and option values: see
test_bad_input.py.)"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from loopback import RecordingGateway

CHECK = """
import asyncio, time
import pytest

@pytest.mark.observatory(duration="{duration}", request_timeout="{timeout}", probes={probes})
async def test_check(deployment, model):
    {body}
"""


def run_check(
    pytester: pytest.Pytester,
    body: str,
    url: str,
    duration: str = "1s",
    probes: int = 3,
    timeout: str = "2s",
) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(CHECK.format(body=body, duration=duration, timeout=timeout, probes=probes))
    result = pytester.runpytest(
        f"--deployment-url={url}", "--models=m", "--observatory-report=r.json", "--tb=long"
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pytest_observatory/*.py*")
    (check,) = json.loads((pytester.path / "r.json").read_text())["checks"]
    return result, check


@pytest.mark.parametrize(
    ("prefix", "call", "category", "message"),
    [
        ("html", "await deployment.chat(model, 'hi')", "bad_response", "*invalid JSON*<html>*"),
        ("empty", "await deployment.chat(model, 'hi')", "bad_response", "*invalid JSON*b''*"),
        ("empty", "await deployment.models()", "bad_response", "*invalid JSON*"),
    ],
)
def test_a_gateway_answering_nonsense_is_a_classified_failure(
    pytester: pytest.Pytester,
    recording_gateway: RecordingGateway,
    prefix: str,
    call: str,
    category: str,
    message: str,
) -> None:
    url = f"http://127.0.0.1:{recording_gateway.port}/{prefix}"
    result, check = run_check(pytester, call, url)
    result.assert_outcomes(failed=1)
    assert check["probes"] == 3 and check["error_categories"] == {category: 3}
    (error,) = check["errors"]
    assert fnmatch.fnmatch(error, message), error


def test_a_stream_that_never_ends_is_a_stalled_failure(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "await deployment.stream_chat(model, 'hi')",
        "mock?stream_fault=stall&models=m",
        probes=1,
        timeout="500ms",
    )
    result.assert_outcomes(failed=1)
    assert check["error_categories"] == {"stream_stalled": 1}
    assert check["duration_s"] < 5


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        ("SystemExit(3)", "other: SystemExit: 3"),
        ("KeyboardInterrupt('from the probe')", "other: KeyboardInterrupt: from the probe"),
        ("GeneratorExit()", "other: GeneratorExit"),
    ],
)
def test_a_probe_raising_base_exceptions_is_a_failure_not_a_crash(
    pytester: pytest.Pytester, raised: str, message: str
) -> None:
    """Raised by probe code (a real Ctrl-C reaches the main thread, not the probes): counted,
    and the check goes on to its end; from a task on the loop they would have killed it."""
    result, check = run_check(pytester, f"raise {raised}", "mock?models=m", probes=5)
    result.assert_outcomes(failed=1)
    assert check["probes"] == 5 and check["errors"] == {message: 5}
    assert check["verdict"] == "failed"


def test_a_sync_probe_raising_system_exit_is_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.observatory(duration="1s", probes=4)
        def test_check(deployment):
            sys.exit("bye")
        """
    )
    result = pytester.runpytest("--deployment-url=mock", "--observatory-report=r.json")
    result.assert_outcomes(failed=1)
    (check,) = json.loads((pytester.path / "r.json").read_text())["checks"]
    assert check["errors"] == {"other: SystemExit: bye": 4}


def test_a_probe_blocking_the_event_loop_is_reported(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester, "time.sleep(0.7); await deployment.chat(model, 'hi')", "mock?models=m", probes=2
    )
    result.assert_outcomes(passed=1)
    assert check["load"]["max_loop_lag_ms"] >= 600
    (note,) = check["notes"]
    # A tick already under way when the probe blocks wakes up late by a little less than 0.7 s.
    assert fnmatch.fnmatch(note, "the event loop was blocked 2 times, for up to 0.[67]s: a *"), note
    result.stdout.fnmatch_lines(["*note: the event loop was blocked*"])


def test_a_healthy_check_has_no_loop_note(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "await asyncio.sleep(0.05); await deployment.chat(model, 'hi')",
        "mock?models=m",
        probes=5,
    )
    result.assert_outcomes(passed=1)
    assert check["notes"] == [] and check["load"]["max_loop_lag_ms"] < 500
