"""The mock gateway's contract beyond tests/test_mock.py: async keep-alive, embeddings edge
cases, the shared failure schedule, latency before failures, lifecycle, and a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from pytest_observatory.mock import MockGateway, MockSettings, MockStats

CHAT = {"model": "mock-gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
EMBED = {"model": "mock-gpt-4o", "input": "hello there"}


def test_async_client_reuses_one_connection(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()

    async def sequential() -> list[int]:
        async with httpx.AsyncClient(base_url=mock.url) as client:
            return [
                (await client.post("/v1/chat/completions", json=CHAT)).status_code
                for _ in range(20)
            ]

    assert asyncio.run(sequential()) == [200] * 20
    assert mock.stats() == MockStats(requests=20, connections=1, failures_injected=0)


def test_stream_chunk_sequence(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        text = client.post("/chat/completions", json={**CHAT, "stream": True, "max_tokens": 3}).text
    assert text.endswith("data: [DONE]\n\n")
    chunks = [json.loads(event[6:]) for event in text.split("\n\n")[:-2]]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "tok1"},
        {"content": " tok2"},
        {"content": " tok3"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-2:] == [None, "length"]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}  # no usage chunk unless asked


def test_embeddings_single_string_and_errors(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        single = client.post("/embeddings", json=EMBED).json()
        listed = client.post("/v1/embeddings", json={**EMBED, "input": ["hello there"]}).json()
        missing = client.post("/v1/embeddings", json={"model": "mock-gpt-4o"})
        unknown = client.post("/v1/embeddings", json={**EMBED, "model": "nope"})
    assert single["object"] == "list" and single["model"] == "mock-gpt-4o"
    assert single["data"] == listed["data"]
    assert single["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert missing.status_code == 400
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "model_not_found"


def test_chat_and_embeddings_share_one_failure_schedule(
    gateway: Callable[..., MockGateway],
) -> None:
    mock = gateway(failure_rate=0.5, failure_status=503)
    with httpx.Client(base_url=mock.url) as client:
        client.get("/v1/models")  # not chat or embeddings: takes no place in the schedule
        codes = [
            client.post(path, json=body).status_code
            for path, body in [("/v1/chat/completions", CHAT), ("/v1/embeddings", EMBED)] * 3
        ]
    assert codes == [200, 503] * 3
    assert mock.stats().failures_injected == 3


def test_latency_comes_before_an_injected_failure(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(latency_s=0.2, failure_rate=1.0)
    with httpx.Client(base_url=mock.url) as client:
        started = time.perf_counter()
        response = client.post("/v1/embeddings", json=EMBED)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "mock failure (injected, status 500)",
            "type": "server_error",
            "code": 500,
        }
    }


def test_rejected_key_is_an_openai_error_and_counted(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(api_key="sk-mock")
    with httpx.Client(base_url=mock.url) as client:
        wrong = client.post(
            "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer other"}
        )
        client.get("/mock/stats")  # never counted, needs no key
    assert wrong.status_code == 401 and wrong.json()["error"]["message"]
    assert mock.stats().requests == 1


def test_lifecycle() -> None:
    mock = MockGateway()
    with mock as entered:
        assert entered is mock
        assert mock.url.startswith("http://127.0.0.1:")
        assert httpx.get(mock.url + "/health").status_code == 200
    mock.stop()  # a second stop is a no-op
    with pytest.raises(httpx.ConnectError):
        httpx.get(mock.url + "/health", timeout=5)


@pytest.mark.parametrize(("latency", "seconds"), [("20ms", 0.02), ("1.5s", 1.5), ("0.02", 0.02)])
def test_query_latency_spellings(latency: str, seconds: float) -> None:
    assert MockSettings.from_query(f"latency={latency}").latency_s == seconds


def test_empty_query_is_the_defaults() -> None:
    assert MockSettings.from_query("") == MockSettings()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only")
def test_ctrl_c_exits_cleanly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # `python -m pytest_observatory.mock`, with Ctrl-C's default handler put back first: a child
    # of a test run started in the background would otherwise inherit an ignored SIGINT.
    run = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('pytest_observatory.mock', run_name='__main__', alter_sys=True)"
    )
    command = [sys.executable, "-c", run, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mock never came up"
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0
    assert b"Traceback" not in errors
