"""Slack: whole sessions posting to a loopback HTTP server that stands in for Slack."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from loopback import HANG, TRICKLE, WEBHOOK_PATH, FakeSlack

from pytest_observatory.reporting.post import post_json

CHECKS = """
import os
import pytest

@pytest.mark.observatory(duration="1s", max_failure_rate=0.01, interval="5ms")
async def test_flaky(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)

@pytest.mark.observatory(duration="1s", probes=50, models=["m-a"])
def test_leaky():
    raise AssertionError("gateway said: bad key " + os.environ["OBSERVATORY_DEPLOYMENT_API_KEY"])

@pytest.mark.observatory(duration="1s", max_failure_rate=0.5, interval="5ms")
async def test_healthy(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)
"""

PASSING = """
import pytest

@pytest.mark.observatory(duration="1s", max_failure_rate=0.5, interval="5ms")
async def test_healthy(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)
"""


def run(pytester: pytest.Pytester, slack: FakeSlack, *argv: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--deployment-url=mock?failure_rate=0.2", f"--slack-webhook-url={slack.url}", *argv
    )


def test_one_message_with_every_check_worst_first(
    pytester: pytest.Pytester, slack: FakeSlack, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVATORY_DEPLOYMENT_API_KEY", secret_key)
    pytester.makepyfile(CHECKS)
    report = pytester.path / "report.json"
    junit = pytester.path / "junit.xml"
    result = run(pytester, slack, f"--observatory-report={report}", f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=2)
    port = slack.url.split(":")[2].split("/")[0]
    result.stdout.fnmatch_lines(
        [
            f"*slack=http://127.0.0.1:{port} (always)*",
            f"*observatory Slack: posted to http://127.0.0.1:{port} (HTTP 200, 1 attempt)*",
        ]
    )
    (payload,) = slack.payloads
    header, context, *sections = payload["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == ":x: pytest-observatory: FAILED (2 failed, 1 passed)"
    assert context["elements"][0]["text"] == "deployment: mock"
    texts = [section["text"]["text"] for section in sections]
    assert [text.split("`")[1].split("::")[1] for text in texts] == [
        "test_flaky",
        "test_leaky",
        "test_healthy",
    ]
    flaky, leaky, healthy = texts
    assert "models: mock-gpt-4o, mock-gpt-4o-mini" in flaky
    assert re.search(r"failure rate (19|20|21)\.\d\d% \(max 1\.00%\) · p50 \d", flaky)
    assert "p95 " in flaky and "p99 " in flaky and "TTFT" not in flaky
    assert re.search(r"reason: failure rate (19|20|21)\.\d\d% &gt;= max_failure_rate 1\.00%", flaky)
    assert "onset: " in flaky
    assert "top errors:\n• " in flaky
    assert "× http_5xx: HTTP 500 from /v1/chat/completions: mock failure" in flaky
    assert "first failure: " in flaky and "after start on mock-gpt-4o: http_5xx" in flaky
    assert "failure rate 100.00% (max 1.00%) · p50 - " in leaky
    assert "gateway said: bad key ***" in leaky
    assert healthy.startswith(":white_check_mark: *PASSED*")
    assert "top errors" not in healthy
    fallback = payload["text"].splitlines()
    assert fallback[0] == header["text"]["text"]
    assert fallback[2].startswith("FAILED test_one_message_with_every_check_worst_first.py::")
    assert len(fallback) == 5
    # No secret anywhere: output, the posted body, the JSON report.
    for text in (result.stdout.str(), result.stderr.str(), json.dumps(slack.payloads)):
        assert secret_key not in text
        assert "hookSECRET9d41e7" not in text
    for artifact in (report, junit):
        assert secret_key not in artifact.read_text()
        assert "hookSECRET9d41e7" not in artifact.read_text()
    assert all(path == WEBHOOK_PATH for _, path, _ in slack.posts)


def test_retries_on_429_honouring_retry_after_and_on_500(
    pytester: pytest.Pytester, slack: FakeSlack
) -> None:
    slack.script = [(429, {"Retry-After": "2"}), (500, {})]
    pytester.makepyfile(PASSING)
    result = run(pytester, slack)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*observatory Slack: posted to * (HTTP 200, 3 attempts)*"])
    times = [at for at, _, _ in slack.posts]
    assert len(times) == 3
    assert times[1] - times[0] >= 2.0  # Retry-After honoured
    assert times[2] - times[1] >= 2.0  # then the backoff (1 s, doubled once)
    assert slack.payloads[0] == slack.payloads[2]


def run_with_a_failing_slack(
    pytester: pytest.Pytester, slack: FakeSlack, script: list[Any], line: str, *argv: str
) -> pytest.RunResult:
    """A passing session whose post fails: one line in the summary, the outcome unchanged."""
    slack.script = script
    pytester.makepyfile(PASSING)
    result = run(pytester, slack, *argv)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*observatory Slack: NOT posted to http://127.0.0.1:*: {line}*"])
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and "hookSECRET9d41e7" not in output
    return result


def test_a_failed_post_is_one_line_and_changes_nothing(
    pytester: pytest.Pytester, slack: FakeSlack
) -> None:
    run_with_a_failing_slack(pytester, slack, [(404, {})], "HTTP 404: no_service (1 attempt in *s)")
    assert len(slack.posts) == 1


def test_a_hung_slack_gives_up_within_the_bound(
    pytester: pytest.Pytester, slack: FakeSlack
) -> None:
    """The real bounds: 10 s per attempt, about 30 s in all, and the run still passes."""
    started = time.monotonic()
    run_with_a_failing_slack(
        pytester, slack, [HANG] * 10, "no answer within *s (3 attempts in 3*s)"
    )
    assert 29 < time.monotonic() - started < 45
    assert len(slack.posts) == 3


def test_a_trickling_answer_is_cut_at_the_attempt_timeout(slack: FakeSlack) -> None:
    slack.script = [TRICKLE] * 5
    started = time.monotonic()
    outcome = post_json(slack.url, b"{}", attempt_timeout_s=1.0, budget_s=3.5)
    assert time.monotonic() - started < 5.5  # 2 x (1 s + 0.5 s to give up) + 1 s backoff
    assert not outcome.ok and outcome.attempts == 2
    assert outcome.detail.startswith("no answer within ")


def test_retry_after_past_the_bound_gives_up_at_once(slack: FakeSlack) -> None:
    slack.script = [(429, {"Retry-After": "120"})]
    outcome = post_json(slack.url, b"{}", budget_s=30)
    assert not outcome.ok and outcome.attempts == 1
    assert outcome.detail == "HTTP 429: no_service (Retry-After 120s is past the 30s bound)"


def test_unreachable_slack_is_reported_without_the_url(slack: FakeSlack) -> None:
    url = slack.url.replace(slack.url.split("/")[2], "127.0.0.1:9")  # discard port: refused
    outcome = post_json(url, b"{}", budget_s=2.5)
    assert not outcome.ok and outcome.attempts == 2  # retried once after 1 s, then 2 s is too long
    assert outcome.detail == "connection failed (ConnectionError)"


def test_failures_only_skips_a_passing_session(pytester: pytest.Pytester, slack: FakeSlack) -> None:
    pytester.makepyfile(PASSING)
    result = run(pytester, slack, "--slack-on=failures")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*observatory Slack: nothing to post (no failures)*"])
    assert slack.posts == []


def test_failures_only_posts_a_failing_session(
    pytester: pytest.Pytester, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVATORY_SLACK_ON", "failures")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    pytester.makepyfile(CHECKS)
    result = pytester.runpytest_subprocess("--deployment-url=mock", "-k", "leaky")
    result.assert_outcomes(failed=1, deselected=2)
    assert len(slack.posts) == 1


def test_exactly_one_post_per_session_under_xdist(
    pytester: pytest.Pytester, slack: FakeSlack
) -> None:
    pytester.makepyfile(CHECKS)
    result = run(pytester, slack, "-n", "2")
    result.assert_outcomes(passed=1, failed=2)
    (payload,) = slack.payloads
    assert len(payload["blocks"]) == 2 + 3


def test_a_conftest_replaces_the_payload(pytester: pytest.Pytester, slack: FakeSlack) -> None:
    pytester.makeconftest(
        """
        def pytest_observatory_slack_payload(config, results):
            return {"text": "custom: " + ",".join(r.verdict for r in results)}
        """
    )
    pytester.makepyfile(PASSING)
    quiet = run(pytester, slack, "-q")
    quiet.assert_outcomes(passed=1)
    quiet.stdout.fnmatch_lines(["*observatory Slack: posted to *"])
    quietest = run(pytester, slack, "-qq")
    assert "observatory Slack" not in quietest.stdout.str()
    assert slack.payloads == [{"text": "custom: passed"}] * 2


def test_many_checks_stay_inside_slack_limits(pytester: pytest.Pytester, slack: FakeSlack) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(60))
        @pytest.mark.observatory(duration="1s", probes=1)
        def test_many(n):
            raise RuntimeError("x" * 5000)
        """
    )
    result = run(pytester, slack)
    result.assert_outcomes(failed=60)
    (payload,) = slack.payloads
    blocks = payload["blocks"]
    assert len(blocks) == 50
    assert blocks[-1]["text"]["text"] == "…and 13 more checks"
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert len(payload["text"]) <= 3000
    assert payload["text"].splitlines()[-1].startswith("…and ")
    assert payload["text"].splitlines()[-1].endswith(" more checks")


def test_interrupted_run_posts_marked_so(pytester: pytest.Pytester, slack: FakeSlack) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="1s", probes=3)
        def test_first():
            pass

        def test_stop():
            raise KeyboardInterrupt
        """
    )
    result = run(pytester, slack)
    result.stdout.fnmatch_lines(["*observatory Slack: posted to *"])
    (payload,) = slack.payloads
    assert payload["blocks"][0]["text"]["text"].startswith(
        ":warning: pytest-observatory: INTERRUPTED"
    )
    assert "run interrupted" in payload["blocks"][1]["elements"][0]["text"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--slack-webhook-url=hooks.example/services/T/B/hookSECRET9d41e7"],
            "ERROR: --slack-webhook-url='hooks.example': expected an http(s):// webhook URL",
        ),
        (
            ["--slack-on=sometimes"],
            "ERROR: --slack-on='sometimes': expected one of always, failures",
        ),
    ],
)
def test_bad_slack_options(pytester: pytest.Pytester, argv: list[str], message: str) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(*argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "hookSECRET9d41e7" not in result.stdout.str() + result.stderr.str()
