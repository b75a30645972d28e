"""Every bundled suite passes against the mock and fails, with the right category, against the
mock with the fault it exists to catch. The suite files run as users run them, from suites/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SUITES = Path(__file__).resolve().parent.parent / "suites"
API_SUITES = (
    "test_chat_streaming.py",
    "test_embeddings.py",
    "test_responses.py",
    "test_messages.py",
    "test_models_and_health.py",
    "test_mixed_traffic.py",
)


def _run(pytester: pytest.Pytester, url: str, duration: str, *args: str) -> dict[str, Any]:
    """Run suite files (or node ids under suites/); the checks of the JSON report by name."""
    report = pytester.path / "report.json"
    pytester.runpytest(
        *(arg if arg.startswith("-") else str(SUITES / arg) for arg in args),
        f"--deployment-url={url}",
        f"--observatory-duration={duration}",
        f"--observatory-report={report}",
    )
    return {c["nodeid"].split("::")[-1]: c for c in json.loads(report.read_text())["checks"]}


def test_every_api_suite_passes_against_the_mock(pytester: pytest.Pytester) -> None:
    checks = _run(pytester, "mock", "1s", *API_SUITES)
    assert sorted(checks) == [
        "test_chat_streaming",
        "test_embeddings",
        "test_health",
        "test_messages",
        "test_messages_streamed",
        "test_mixed_traffic",
        "test_models_listed",
        "test_responses",
        "test_responses_streamed",
    ]
    for name, check in checks.items():
        assert (check["verdict"], check["failures"]) == ("passed", 0), name
        assert check["probes"] >= 1, name
    for name in ("test_chat_streaming", "test_responses_streamed", "test_messages_streamed"):
        assert checks[name]["streams"]["count"] >= 1, name  # TTFT and gaps recorded
    assert checks["test_mixed_traffic"]["probes"] >= 4  # four at a time


# Faults that hit half a 2-second run (a probe at 0 s passes, the one at 1 s does not): the
# timed ones hit every later check whole, the embeddings' after its first answer.
REDEPLOY = (
    "mock?stream_fault=truncate&health_fail_after=500ms&model_missing_after=500ms"
    "&embedding_dim_change_after=1"
)


@pytest.mark.parametrize(
    ("url", "args", "expected"),
    [
        pytest.param(
            REDEPLOY,
            (
                "test_chat_streaming.py",
                "test_embeddings.py",
                "test_responses.py::test_responses_streamed",
                "test_messages.py::test_messages_streamed",
                "test_models_and_health.py",
                "--embedding-models=mock-gpt-4o",  # one model: its second answer is shrunk
            ),
            {
                "test_chat_streaming": ("stream_truncated", "stream cut off after"),
                "test_embeddings": ("assertion", "dimension changed from 8 to 4 during the run"),
                "test_responses_streamed": ("stream_truncated", "stream cut off after"),
                "test_messages_streamed": ("stream_truncated", "stream cut off after"),
                "test_models_listed": ("assertion", "mock-gpt-4o-mini missing from /v1/models"),
                "test_health": ("http_5xx", "HTTP 503 from /health/liveliness"),
            },
            id="streams-cut-health-models-embeddings",
        ),
        pytest.param(
            "mock?failure_rate=0.5",
            (
                "test_responses.py::test_responses",
                "test_messages.py::test_messages",
                "test_mixed_traffic.py",
            ),
            {
                "test_responses": ("http_5xx", "HTTP 500 from /v1/responses"),
                "test_messages": ("http_5xx", "HTTP 500 from /v1/messages"),
                "test_mixed_traffic": ("http_5xx", "HTTP 500 from /v1/"),
            },
            id="failing-requests",
        ),
    ],
)
def test_each_suite_fails_on_its_fault(
    pytester: pytest.Pytester, url: str, args: tuple[str, ...], expected: dict[str, Any]
) -> None:
    checks = _run(pytester, url, "2s", *args)
    assert sorted(checks) == sorted(expected)
    for name, (category, message) in expected.items():
        check = checks[name]
        assert check["verdict"] == "failed", name
        assert set(check["error_categories"]) == {category}, (name, check["error_categories"])
        assert any(message in error for error in check["errors"]), (name, check["errors"])
