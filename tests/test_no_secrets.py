"""One whole session with distinctive secrets everywhere they can be given (API key, URL
credentials and query, Slack webhook path, Redis-less lock directory), probes whose errors echo
them back, every reporter on and every verbosity switch pytest has; then every captured output
and every artifact is grepped. Artifacts that only live while a check runs (the lock sidecars,
the journal) are copied by the probe itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from loopback import FakeSlack, RecordingGateway

PROBES = """
import os, pathlib, shutil
import httpx
import pytest

KEY = os.environ["OBSERVATORY_DEPLOYMENT_API_KEY"]


def keep_live_artifacts():
    # Lock sidecars and the journal exist only while checks run: copy them for the grep.
    out = pathlib.Path("live-artifacts")
    shutil.copytree(os.environ["OBSERVATORY_LOCK_DIR"], out / "locks", dirs_exist_ok=True)
    for journal in pathlib.Path(".").glob("*.journal.jsonl"):
        shutil.copy(journal, out / journal.name)


@pytest.mark.observatory(duration="1s", probes=30, max_failure_rate=0.5)
async def test_echoes_headers(deployment, observatory_client, model):
    keep_live_artifacts()
    await deployment.chat(model, "hi")
    request = httpx.Request(
        "GET", "https://u:" + KEY + "@gw.example/v1?key=" + KEY,
        headers={"Authorization": "Bearer " + KEY, "X-Api-Key": KEY},
    )
    raise httpx.HTTPStatusError(
        "gateway echoed " + str(dict(request.headers)) + " for " + str(request.url),
        request=request,
        response=httpx.Response(401, request=request),
    )


@pytest.mark.observatory(duration="1s", probes=30)
def test_fails_loudly(deployment, model):
    deployment.chat(model, "hi")
    assert KEY == "something else", "Authorization: Bearer " + KEY
"""


def test_no_secret_in_any_output_or_artifact(
    pytester: pytest.Pytester,
    recording_gateway: RecordingGateway,
    slack: FakeSlack,
    secret_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url_secret = "pw-URL-SECRET-51b2"
    query_secret = "q-QUERY-SECRET-8c03"
    webhook_secret = slack.url.rsplit("/", 1)[1]
    monkeypatch.setenv("OBSERVATORY_DEPLOYMENT_API_KEY", secret_key)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(PROBES)
    secrets = [secret_key, url_secret, query_secret, webhook_secret]
    runs = []
    for argv in ([], ["-n", "2"]):
        runs.append(
            pytester.runpytest_subprocess(
                f"--deployment-url=mock?api_key={secret_key}",
                "--observatory-report=r.json",
                "--observatory-html=r.html",
                "--observatory-history=history.db",
                "--junitxml=junit.xml",
                "--observatory-progress=200ms",
                "-vv",
                "--tb=long",
                "-rA",
                "--setup-show",
                "-o",
                "console_output_style=classic",
                *argv,
            )
        )
        runs[-1].assert_outcomes(failed=2)
    # A real deployment URL with credentials and a query, through the recording gateway.
    monkeypatch.delenv("OBSERVATORY_DEPLOYMENT_API_KEY")
    pytester.makepyfile(
        PROBES.replace('os.environ["OBSERVATORY_DEPLOYMENT_API_KEY"]', repr(url_secret))
    )
    port = recording_gateway.port
    runs.append(
        pytester.runpytest_subprocess(
            f"--deployment-url=http://user:{url_secret}@127.0.0.1:{port}/v1?key={query_secret}",
            "--models=m",
            "--observatory-report=r2.json",
            "-vv",
            "--tb=long",
            "-rA",
        )
    )
    runs[-1].assert_outcomes(failed=2)
    assert len(slack.posts) == 3  # one per session
    live = pytester.path / "live-artifacts"
    assert list(live.glob("locks/check-*.json")) and list(live.glob("*.journal.jsonl"))
    texts = [run.stdout.str() + run.stderr.str() for run in runs]
    texts += [str(payload) for payload in slack.payloads]
    for path in sorted(pytester.path.rglob("*")):
        if path.is_file() and path.suffix != ".py":
            texts.append(_text_of(path))
    assert summary.exists() and (pytester.path / "history.db").exists()
    for secret in secrets:
        leaks = [text[:200] for text in texts if secret in text]
        assert not leaks, f"{secret} leaked into: {leaks}"


def _text_of(path: Path) -> str:
    if path.suffix == ".db":
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT * FROM checks").fetchall()
        return repr(rows) + path.read_bytes().decode("latin-1")
    return path.read_bytes().decode("utf-8", errors="replace")
