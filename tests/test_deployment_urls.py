"""What a deployment URL may carry (a query for every request, credentials) and that none of it
leaks: sessions against real loopback servers, every output and artifact grepped."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from loopback import RecordingGateway

EVERY_CALL = """
import pytest

@pytest.mark.observatory(duration="1s", probes=1, max_failure_rate=0)
async def test_every_call(deployment, observatory_client):
    await deployment.chat("m", "hi")
    await deployment.stream_chat("m", "hi")
    assert await deployment.models() == ["m"]
    (await observatory_client.get("models")).raise_for_status()
"""


def outputs(result: pytest.RunResult, *files: Path) -> str:
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [path.read_text(encoding="utf-8") for path in files]
    return "\n".join(texts)


@pytest.mark.parametrize("base", ["", "/v1", "/v1/"])
def test_the_query_goes_with_every_request_and_is_shown_masked(
    pytester: pytest.Pytester, recording_gateway: RecordingGateway, base: str
) -> None:
    pytester.makepyfile(EVERY_CALL)
    url = f"http://127.0.0.1:{recording_gateway.port}{base}?api-version=2024-06-01&key=q-SECRET-77"
    result = pytester.runpytest(f"--deployment-url={url}", "--observatory-report=r.json")
    result.assert_outcomes(passed=1)
    paths = [path for _, path, _ in recording_gateway.requests]
    assert len(paths) == 4
    for path in paths:
        assert path.startswith("/v1/") and path.endswith("?api-version=2024-06-01&key=q-SECRET-77")
    shown = f"http://127.0.0.1:{recording_gateway.port}{base}?api-version=***&key=***"
    result.stdout.fnmatch_lines([f"observatory: deployment={shown}*", f"deployment: {shown}"])
    assert json.loads((pytester.path / "r.json").read_text())["deployment_url"] == shown
    assert "q-SECRET-77" not in outputs(result, pytester.path / "r.json")


def test_basic_auth_from_the_url_is_sent_when_no_key_is_given(
    pytester: pytest.Pytester, recording_gateway: RecordingGateway
) -> None:
    pytester.makepyfile(EVERY_CALL)
    url = f"http://user:pw-SECRET-1@127.0.0.1:{recording_gateway.port}"
    result = pytester.runpytest(f"--deployment-url={url}", "--observatory-report=r.json")
    result.assert_outcomes(passed=1)
    expected = "Basic " + base64.b64encode(b"user:pw-SECRET-1").decode()
    assert {auth for _, _, auth in recording_gateway.requests} == {expected}
    assert "pw-SECRET-1" not in outputs(result, pytester.path / "r.json")
    result.stdout.fnmatch_lines([f"deployment: http://***@127.0.0.1:{recording_gateway.port}"])


def test_url_credentials_and_an_api_key_together_are_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--deployment-url=https://user:pw-SECRET@gw.example", "--deployment-api-key=sk-SECRET"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --deployment-url='https://***@gw.example': has credentials in the URL and an*"]
    )
    assert "SECRET" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:99999", "*'http://127.0.0.1:99999': the port must be a number from 1*"),
        ("http://127.0.0.1:0", "*'http://127.0.0.1:0': the port must be a number from 1*"),
        ("http://gw.example/v1#frag", "*'http://gw.example/v1#frag': a #fragment is never sent*"),
    ],
)
def test_bad_ports_and_fragments_are_usage_errors(
    pytester: pytest.Pytester, url: str, expected: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(f"--deployment-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --deployment-url={expected}"])


def test_the_mocks_api_key_never_leaks(pytester: pytest.Pytester, secret_key: str) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="300ms")
        async def test_chat(deployment, model):
            await deployment.chat(model, "hi")
        """
    )
    for argv in ([], ["-n", "2"]):
        result = pytester.runpytest_subprocess(
            f"--deployment-url=mock?api_key={secret_key}&latency=1ms",
            f"--deployment-api-key={secret_key}",
            "--observatory-report=r.json",
            *argv,
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["deployment: mock?api_key=***&latency=1ms"])
        assert secret_key not in outputs(result, pytester.path / "r.json")


def test_urls_inside_error_messages_are_masked(
    pytester: pytest.Pytester, recording_gateway: RecordingGateway
) -> None:
    """Whatever raised it: httpx's raise_for_status() message carries the request URL (with the
    deployment's query), a library's error may carry a whole URL with credentials."""
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.observatory(duration="300ms", probes=2, max_failure_rate=0.99)
        async def test_errors(observatory_client):
            (await observatory_client.get("fail")).raise_for_status()

        @pytest.mark.observatory(duration="300ms", probes=2, max_failure_rate=0.99)
        async def test_library_error(observatory_client):
            raise ValueError("cannot reach http://admin:pw-SECRET-2@gw/x?token=t-SECRET-3")
        """
    )
    url = f"http://127.0.0.1:{recording_gateway.port}/?key=q-SECRET-1"
    result = pytester.runpytest(f"--deployment-url={url}", "--observatory-report=r.json", "-rA")
    report = json.loads((pytester.path / "r.json").read_text())
    errors = report["checks"][0]["errors"]
    assert list(report["checks"][0]["error_categories"]) == ["http_5xx"]
    (message,) = errors
    assert f"127.0.0.1:{recording_gateway.port}/v1/fail?key=***" in message
    assert report["checks"][1]["errors"] == {
        "other: ValueError: cannot reach http://***@gw/x?token=***": 2
    }
    assert "SECRET" not in outputs(result, pytester.path / "r.json")


def test_the_mock_rejects_bad_ports_in_one_line() -> None:
    run = [sys.executable, "-m", "pytest_observatory.mock", "--port", "99999"]
    finished = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "--port: '99999': expected a port from 1 to 65535" in finished.stderr
    assert "Traceback" not in finished.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = [sys.executable, "-m", "pytest_observatory.mock", "--port", str(port)]
        finished = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
    assert "Traceback" not in finished.stderr
