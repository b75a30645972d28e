"""Probes written against the OpenAI SDK (and other client libraries): `deployment.openai()`
sends through the session pool with the session's key, and their failures land in the right
categories, classified by what each library's exceptions carry."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import aiohttp
import httpx
import openai
import pytest
import requests

from pytest_observatory.errors import classify


def run(pytester: pytest.Pytester, source: str, *argv: str) -> tuple[pytest.RunResult, dict]:
    pytester.makepyfile(source)
    result = pytester.runpytest(*argv, "--observatory-report=r.json")
    (check,) = json.loads((pytester.path / "r.json").read_text())["checks"]
    return result, check


def test_async_sdk_client_uses_the_session_key_and_pool(
    pytester: pytest.Pytester, secret_key: str
) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", max_failure_rate=0)
        async def test_sdk(deployment, model):
            client = deployment.openai()
            reply = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=3
            )
            assert reply.choices[0].message.content == "tok1 tok2 tok3"
            assert client.max_retries == 0
        """,
        f"--deployment-url=mock?api_key={secret_key}",
        f"--deployment-api-key={secret_key}",
    )
    result.assert_outcomes(passed=1)
    assert check["probes"] > 10 and check["http"]["requests"] == check["probes"]
    assert secret_key not in result.stdout.str()


def test_sync_sdk_client_in_a_def_check(pytester: pytest.Pytester) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", concurrency=2, max_failure_rate=0)
        def test_sdk(deployment, model):
            reply = deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
            assert reply.choices[0].message.content == "tok1 tok2"
        """,
        "--deployment-url=mock?api_key=k-1234",
        "--deployment-api-key=k-1234",
    )
    result.assert_outcomes(passed=1)
    assert check["probes"] > 10 and check["http"]["requests"] == check["probes"]


def test_sdk_streams_are_timed_at_the_transport(pytester: pytest.Pytester) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", max_failure_rate=0)
        async def test_sdk_stream(deployment, model):
            stream = await deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
            assert "".join(filter(None, text))
        """,
        "--deployment-url=mock?latency=30ms&token_rate=100&tokens=3",
    )
    result.assert_outcomes(passed=1)
    assert check["streams"] == {
        "count": check["probes"],
        "output_tokens": 0,
        "tokens_source": {"transport": check["probes"]},
    }
    # First bytes after the mock's 30 ms latency; the whole stream lasts ~50 ms.
    assert 30 <= check["ttft_ms"]["p50"] < 45
    assert check["itl_ms"] is None


def test_sdk_stream_ended_by_an_error_event_is_truncated(pytester: pytest.Pytester) -> None:
    """LiteLLM reports an upstream failed mid-stream as an in-band error event; the SDK raises
    its bare APIError for it, which must not land in 'other'."""
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", probes=10, max_failure_rate=0.9)
        async def test_sdk_stream(deployment, model):
            stream = await deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass
        """,
        "--deployment-url=mock?stream_fault=error&stream_fault_rate=0.5&tokens=3",
    )
    result.assert_outcomes(passed=1)
    assert check["error_categories"] == {"stream_truncated": 5}
    assert list(check["errors"]) == ["stream_truncated: APIError: mock stream error (injected)"]


@pytest.mark.parametrize(
    ("knobs", "category"),
    [
        ("failure_rate=1&failure_status=503", "http_5xx"),
        ("failure_rate=1&failure_status=429", "http_429"),
    ],
)
def test_sdk_failures_are_classified_by_status(
    pytester: pytest.Pytester, knobs: str, category: str
) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="300ms")
        async def test_sdk(deployment, model):
            await deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        """,
        f"--deployment-url=mock?{knobs}",
    )
    result.assert_outcomes(failed=1)
    assert list(check["error_categories"]) == [category]
    # max_retries=0: one request per probe, no hidden retries.
    assert check["http"]["requests"] == check["probes"]


def test_sdk_connection_refused(pytester: pytest.Pytester) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="300ms", interval="50ms")
        async def test_sdk(deployment):
            await deployment.openai().models.list()
        """,
        "--deployment-url=http://127.0.0.1:9",
    )
    result.assert_outcomes(failed=1)
    assert list(check["error_categories"]) == ["connection_refused"]


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """Answers every connection with bytes that are not HTTP, then closes it."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.2 not http at all\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(5)


def test_a_non_http_answer_is_a_protocol_error(
    pytester: pytest.Pytester, garbage_server: int
) -> None:
    result, check = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="300ms", probes=5)
        async def test_chat(deployment):
            await deployment.chat("m", "hi")
        """,
        f"--deployment-url=http://127.0.0.1:{garbage_server}",
    )
    result.assert_outcomes(failed=1)
    assert check["error_categories"] == {"connection_error": 5}
    (message,) = check["errors"]
    assert message.startswith("connection_error: RemoteProtocolError: invalid HTTP response")


_REQUEST = httpx.Request("POST", "http://gw/v1/chat/completions")


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Server Error", response=response)


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (_http_error(503), "http_5xx"),
        (_http_error(429), "http_429"),
        (_http_error(404), "http_4xx"),
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError("connection reset by peer"), "connection_error"),
        (requests.ConnectionError("[Errno 111] Connection refused"), "connection_refused"),
        (aiohttp.ServerTimeoutError("timeout on reading data"), "timeout"),
        (aiohttp.ServerDisconnectedError(), "connection_error"),
        (openai.APITimeoutError(request=_REQUEST), "timeout"),
        (openai.APIConnectionError(request=_REQUEST), "connection_error"),
        (ValueError("anything else"), "other"),
    ],
)
def test_other_libraries_exceptions_are_classified(exc: BaseException, category: str) -> None:
    assert classify(exc)[0] == category
