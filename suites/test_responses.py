"""The OpenAI Responses API (``POST /v1/responses``), whole and streamed.

Two checks of three hours each, cycling the given models, a 1 s pause after each probe: a whole
response must be ``completed`` with output text; a streamed one must end with
``response.completed`` after at least one text delta (TTFT and inter-token gaps are recorded).
Each fails above 1% failed probes.

    pytest suites/test_responses.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=gpt-4o
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

PROMPT = "Write one sentence about release testing."


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_responses(deployment: AsyncDeployment, model: str) -> None:
    response = await deployment.responses(model, PROMPT, max_output_tokens=64)
    assert response.get("status") == "completed", f"status {response.get('status')!r}"
    texts = [
        part.get("text")
        for item in response["output"]
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    ]
    assert any(texts), "response without output text"


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_responses_streamed(deployment: AsyncDeployment, model: str) -> None:
    stream = await deployment.stream_responses(model, PROMPT, max_output_tokens=64)
    assert stream.text, "stream without text"
    assert stream.finish_reason == "completed", f"ended {stream.finish_reason!r}"
