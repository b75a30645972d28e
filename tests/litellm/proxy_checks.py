"""Checks that tests/litellm/run.py runs through a real LiteLLM proxy, beside the bundled suites:
a streamed chat through the helpers (each chunk held to the API's contract) and one through the
OpenAI SDK. Not named ``test_*.py``, so the project's own test run does not collect it; run.py
passes it by path."""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

PROMPT = "Hello! This is a release test. Reply with a short greeting."


@pytest.mark.observatory(duration="5s", max_failure_rate=0.01, validate=True)
async def test_stream_through_proxy(deployment: AsyncDeployment, model: str) -> None:
    result = await deployment.stream_chat(model, PROMPT, max_tokens=8)
    assert result.text, "stream without text"
    assert result.finish_reason, "stream without a finish_reason"


@pytest.mark.observatory(duration="5s", max_failure_rate=0.01)
async def test_sdk_stream_through_proxy(deployment: AsyncDeployment, model: str) -> None:
    pytest.importorskip("openai")
    stream = await deployment.openai().chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=8, stream=True
    )
    pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert "".join(piece or "" for piece in pieces), "stream without text"
