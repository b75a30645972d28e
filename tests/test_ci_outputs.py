"""CI-native outputs: JUnit XML properties per check, and the GitHub step summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

CHECKS = """
import pytest

@pytest.mark.observatory(duration="1s", max_failure_rate=0.5, interval="5ms")
async def test_chat(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)

@pytest.mark.observatory(duration="1s", max_failure_rate=0.5, interval="5ms")
async def test_stream(deployment, model):
    await deployment.stream_chat(model, "Hello", max_tokens=5)

@pytest.mark.observatory(duration="1s", probes=4, models=["m|x"])
def test_broken():
    raise RuntimeError("boom | pipe")

def test_plain():
    pass
"""


def properties(xml_path: str) -> dict[str, dict[str, str]]:
    root = ET.parse(xml_path).getroot()
    return {
        case.get("name", ""): {
            prop.get("name", ""): prop.get("value", "") for prop in case.iter("property")
        }
        for case in root.iter("testcase")
    }


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_junit_properties_per_check(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makepyfile(CHECKS)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock?failure_rate=0.1", f"--junitxml={xml}", *xdist
    )
    result.assert_outcomes(passed=3, failed=1)
    cases = properties(str(xml))
    assert cases["test_plain"] == {}
    chat, stream, broken = cases["test_chat"], cases["test_stream"], cases["test_broken"]
    assert set(chat) == {
        "probes",
        "failures",
        "failure_rate",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "verdict",
    }
    assert int(chat["probes"]) > 10 and chat["verdict"] == "passed"
    assert float(chat["failure_rate"]) == pytest.approx(0.1, abs=0.05)
    assert int(chat["failures"]) == round(float(chat["failure_rate"]) * int(chat["probes"]))
    assert 0 < float(chat["p50_ms"]) <= float(chat["p95_ms"]) <= float(chat["p99_ms"])
    assert float(stream["ttft_p95_ms"]) > 0
    assert broken == {"probes": "4", "failures": "4", "failure_rate": "1.0", "verdict": "failed"}


def test_step_summary_appends_a_markdown_table(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(CHECKS)
    result = pytester.runpytest_subprocess(
        "--deployment-url=mock?failure_rate=0.1", "-k", "not plain"
    )
    result.assert_outcomes(passed=2, failed=1)
    lines = summary.read_text(encoding="utf-8").splitlines()
    assert lines[:5] == [
        "earlier step",
        "### ❌ pytest-observatory: FAILED",
        "",
        "deployment: `mock?failure_rate=0.1`",
        "",
    ]
    assert (
        lines[5]
        == "| verdict | check | duration | probes | failure rate | p50 | p95 | onset | top error |"
    )
    rows = [line for line in lines[7:] if line]
    assert rows[0].startswith(
        "| ✅ passed | `test_step_summary_appends_a_markdown_table.py::test_chat` | 1.0s | "
    )
    assert " (max 50.00%) | " in rows[0] and " ms | " in rows[0]
    assert "× http_5xx: HTTP 500 from /v1/chat/completions" in rows[0]
    assert rows[1].startswith("|  | ↳ mock-gpt-4o | ")
    broken = next(row for row in rows if "test_broken" in row)
    assert broken.startswith("| ❌ failed | ")
    assert "| 4 | 100.00% (max 1.00%) | - | - |" in broken
    assert broken.endswith("| 4 × other: RuntimeError: boom \\| pipe |")
    assert "| ↳ m\\|x |" in "\n".join(rows)
    # Every row of the table has the header's nine cells.
    assert all(row.replace("\\|", "").count("|") == 10 for row in rows)


def test_no_step_summary_without_checks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not summary.exists()


def test_unwritable_step_summary_is_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = pytester.path / "missing-dir" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    pytester.makepyfile(CHECKS)
    result = pytester.runpytest("--deployment-url=mock", "-k", "broken")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines([f"*observatory step summary NOT written to {target}: *"])
    result.stdout.no_fnmatch_line("*Traceback*")
