"""The bundled suites pass against the embedded mock (the README's main job, shortened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parent.parent / "suites"


def test_bundled_suites_pass_against_the_mock(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        str(SUITES / "test_mock_single_request.py"),
        str(SUITES / "test_oai_azure_release.py"),
        "-m",
        "observatory",
        "--deployment-url=mock",
        "--observatory-duration=2s",
        f"--observatory-report={report}",
    )
    result.assert_outcomes(passed=2)
    checks = {c["nodeid"].split("::")[-1]: c for c in json.loads(report.read_text())["checks"]}
    assert checks["test_mock_single_request"]["probes"] == 1
    release = checks["test_oai_azure_release"]
    # 1 s pause after each answer: about two probes in two seconds, both models used.
    assert 2 <= release["probes"] <= 3
    assert release["verdict"] == "passed"


def test_release_suite_fails_on_a_failing_gateway(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        str(SUITES / "test_oai_azure_release.py"),
        "--deployment-url=mock?failure_rate=0.5",
        "--observatory-duration=2s",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*observatory check failed: failure rate 50.00%*"])
