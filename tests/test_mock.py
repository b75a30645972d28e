"""The embedded mock gateway, spoken to over real loopback HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from pytest_observatory.mock import MockGateway, MockSettings

CHAT = {"model": "mock-gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}


def test_models_and_health(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(models=("a", "b"))
    with httpx.Client(base_url=mock.url) as client:
        assert client.get("/health").json() == {"status": "ok"}
        listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["a", "b"]


def test_chat_completion_shape(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        reply = client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 3}).json()
        unprefixed = client.post("/chat/completions", json=CHAT)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "tok1 tok2 tok3"}
    assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert unprefixed.status_code == 200


def test_chat_stream_ends_with_done_and_usage(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    body = {**CHAT, "stream": True, "max_tokens": 4, "stream_options": {"include_usage": True}}
    with httpx.Client(base_url=mock.url) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "tok1 tok2 tok3 tok4"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_embeddings_are_deterministic(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        body = {"model": "mock-gpt-4o", "input": ["a", "b"]}
        first = client.post("/v1/embeddings", json=body).json()
        again = client.post("/v1/embeddings", json=body).json()
    assert [d["index"] for d in first["data"]] == [0, 1]
    assert len(first["data"][0]["embedding"]) == 8
    assert first["data"] == again["data"]
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]


def test_failure_fraction_is_exact(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(failure_rate=0.2, failure_status=503)
    with httpx.Client(base_url=mock.url) as client:
        codes = [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(50)]
        error = client.post("/v1/chat/completions", json=CHAT)  # the 51st: succeeds
    assert codes.count(503) == 10 and codes[4] == 503 and codes[:4] == [200] * 4
    assert error.status_code == 200
    assert mock.stats().failures_injected == 10


def test_rate_limit_failures_carry_retry_after(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(failure_rate=1.0, failure_status=429)
    with httpx.Client(base_url=mock.url) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_api_key_is_required_when_set(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(api_key="sk-mock")
    with httpx.Client(base_url=mock.url) as client:
        assert client.get("/v1/models").status_code == 401
        ok = client.get("/v1/models", headers={"Authorization": "Bearer sk-mock"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"not json", 400),
        (json.dumps({"model": "mock-gpt-4o"}).encode(), 400),
        (json.dumps({**CHAT, "model": "nope"}).encode(), 404),
    ],
)
def test_bad_requests(gateway: Callable[..., MockGateway], content: bytes, status: int) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        response = client.post("/v1/chat/completions", content=content)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_latency_is_applied(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway(latency_s=0.2)
    with httpx.Client(base_url=mock.url) as client:
        started = time.perf_counter()
        client.post("/v1/chat/completions", json=CHAT)
    assert time.perf_counter() - started >= 0.2


def test_stats_count_tcp_connections(gateway: Callable[..., MockGateway]) -> None:
    mock = gateway()
    with httpx.Client(base_url=mock.url) as client:
        for _ in range(20):
            client.get("/v1/models")
    assert mock.stats().connections == 1 and mock.stats().requests == 20
    for _ in range(3):
        with httpx.Client(base_url=mock.url) as client:
            client.get("/health")
    stats = httpx.get(mock.url + "/mock/stats").json()
    assert stats["connections"] == 5 and stats["requests"] == 23


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("failure_rate=abc", "mock setting failure_rate='abc': expected a number"),
        ("failure_rate=2", "mock setting failure_rate=2.0: expected a number in [0, 1]"),
        ("latency=soon", "mock setting latency='soon': expected a duration*"),
        ("failure_status=200", "mock setting failure_status=200: expected 400-599"),
        ("colour=red", "unknown mock setting colour='red'*"),
        (
            "reset_rate=0.6&stall_rate=0.6",
            "mock settings reset_rate=0.6, stall_rate=0.6: chaos fractions add up to more than 1",
        ),
        ("throttle_rate=-0.1", "mock setting throttle_rate=-0.1: expected a number in [0, 1]"),
        ("chaos_models=nope", "mock setting chaos_models='nope': not in models"),
        ("huge_size=lots", "mock setting huge_size='lots': expected a size in bytes*"),
        ("seed=-1", "mock setting seed='-1': expected a whole number"),
    ],
)
def test_query_errors(query: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        MockSettings.from_query(query)
    assert excinfo.match(message.replace("[", r"\[").replace("]", r"\]").replace("*", ".*"))


def test_query_knobs() -> None:
    query = "failure_rate=0.05&latency=20ms&failure_status=503&models=a,b"
    settings = MockSettings.from_query(query)
    assert settings == MockSettings(
        latency_s=0.02, failure_rate=0.05, failure_status=503, models=("a", "b")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_runs_alone_from_the_command_line() -> None:
    port = free_port()
    command = [sys.executable, "-m", "pytest_observatory.mock", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mock never came up"
                time.sleep(0.1)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"mock gateway listening on http://127.0.0.1:{port}" in output.decode()


def test_command_line_rejects_bad_values() -> None:
    command = [sys.executable, "-m", "pytest_observatory.mock", "--failure-rate", "abc"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "failure_rate" in result.stderr or "failure-rate" in result.stderr
    assert "Traceback" not in result.stderr
