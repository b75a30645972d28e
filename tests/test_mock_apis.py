"""The mock's Responses and Messages APIs, checked against the official SDKs' own types and
clients, and its health routes and time-triggered faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pydantic
import pytest
import requests
from openai.types.responses import Response, ResponseStreamEvent

from pytest_observatory.mock import MockGateway

Gateway = Callable[..., MockGateway]


def _events(response: requests.Response) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, data) of every server-sent event of a whole stream."""
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event"), json.loads(fields["data"])))
    return events


def test_responses_match_the_openai_types(gateway: Gateway) -> None:
    url = gateway(tokens=5).url
    body = {"model": "mock-gpt-4o", "input": "two words"}
    whole = requests.post(f"{url}/v1/responses", json=body, timeout=10).json()
    response = Response.model_validate(whole)
    assert response.output_text == "tok1 tok2 tok3 tok4 tok5"
    assert response.usage is not None and response.usage.input_tokens == 2
    streamed = requests.post(f"{url}/v1/responses", json={**body, "stream": True}, timeout=10)
    adapter = pydantic.TypeAdapter(ResponseStreamEvent)
    events = [adapter.validate_python(data) for _, data in _events(streamed)]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == 5
    assert kinds[-1] == "response.completed"
    assert [name for name, _ in _events(streamed)] == kinds  # each named by its type
    assert [event.sequence_number for event in events] == list(range(len(events)))
    # The SDK itself, end to end: its stream helper assembles the same answer.
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    with client.responses.stream(model="mock-gpt-4o", input="two words") as stream:
        final = stream.get_final_response()
    assert final.output_text == response.output_text
    assert final.usage is not None and final.usage.output_tokens == 5


def test_messages_match_the_anthropic_types(gateway: Gateway) -> None:
    url = gateway(tokens=4, api_key="mock-key").url
    client = anthropic.Anthropic(base_url=url, api_key="mock-key", max_retries=0)
    prompt = [{"role": "user", "content": "three words here"}]
    message = client.messages.create(
        model="mock-gpt-4o", max_tokens=4, messages=prompt, system="be brief"
    )
    assert isinstance(message, anthropic.types.Message)
    assert anthropic.types.Message.model_validate(message.model_dump()) == message
    assert message.content[0].type == "text" and message.content[0].text == "tok1 tok2 tok3 tok4"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 4)
    with client.messages.stream(model="mock-gpt-4o", max_tokens=4, messages=prompt) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == message.content[0].text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 4
    raw = requests.post(
        f"{url}/v1/messages",
        json={"model": "mock-gpt-4o", "max_tokens": 4, "messages": prompt, "stream": True},
        headers={"x-api-key": "mock-key"},
        timeout=10,
    )
    adapter = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
    kinds = [name for name, data in _events(raw) if name != "ping"]
    for name, data in _events(raw):
        if name != "ping":
            assert adapter.validate_python(data).type == name
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize("fault", ["truncate", "error"])
def test_stream_faults_cut_every_api(gateway: Gateway, fault: str) -> None:
    url = gateway(tokens=5, stream_fault=fault, stream_fault_after=2).url
    for path, body, last in (
        ("responses", {"input": "hi"}, "response.completed"),
        ("messages", {"messages": [{"role": "user", "content": "hi"}]}, "message_stop"),
    ):
        request = {"model": "mock-gpt-4o", "stream": True, **body}
        try:
            answer = requests.post(f"{url}/v1/{path}", json=request, timeout=10).text
        except requests.exceptions.ChunkedEncodingError:
            answer = ""  # truncate: the connection closed mid-body
        assert last not in answer
        if fault == "error":
            assert "event: error" in answer and "mock stream error (injected)" in answer


def test_health_routes_and_time_triggered_faults(gateway: Gateway) -> None:
    mock = gateway(health_fail_after_s=0.5, model_missing_after_s=0.5, embedding_dim_change_after=2)
    url = mock.url

    def embedding_dimension() -> int:
        body = {"model": "mock-gpt-4o", "input": "x"}
        reply = requests.post(f"{url}/v1/embeddings", json=body, timeout=10).json()
        return len(reply["data"][0]["embedding"])

    def model_ids() -> list[str]:
        return [m["id"] for m in requests.get(f"{url}/v1/models", timeout=10).json()["data"]]

    liveliness = requests.get(f"{url}/health/liveliness", timeout=10)
    assert (liveliness.status_code, liveliness.json()) == (200, "I'm alive!")
    assert requests.get(f"{url}/health/readiness", timeout=10).json() == {"status": "healthy"}
    assert model_ids() == ["mock-gpt-4o", "mock-gpt-4o-mini"]
    assert [embedding_dimension(), embedding_dimension(), embedding_dimension()] == [8, 8, 4]
    time.sleep(0.6)
    for path in ("/health", "/health/liveliness", "/health/readiness"):
        assert requests.get(url + path, timeout=10).status_code == 503
    assert model_ids() == ["mock-gpt-4o"]
    assert embedding_dimension() == 4
