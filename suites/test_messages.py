"""The Anthropic Messages API (``POST /v1/messages``, as LiteLLM serves it), whole and streamed.

Two checks of three hours each, cycling the given models, a 1 s pause after each probe: a whole
message must carry text and a stop reason; a streamed one must end with ``message_stop`` after at
least one text delta (TTFT and inter-token gaps are recorded). Each fails above 1% failed probes.
The key goes as ``Authorization: Bearer`` (LiteLLM accepts it on /v1/messages).

    pytest suites/test_messages.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=claude-sonnet-4
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

PROMPT = "Write one sentence about release testing."


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_messages(deployment: AsyncDeployment, model: str) -> None:
    message = await deployment.messages(model, PROMPT, max_tokens=64)
    texts = [block.get("text") for block in message["content"] if block.get("type") == "text"]
    assert any(texts), "message without text"
    assert message.get("stop_reason"), "message without a stop reason"


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_messages_streamed(deployment: AsyncDeployment, model: str) -> None:
    stream = await deployment.stream_messages(model, PROMPT, max_tokens=64)
    assert stream.text, "stream without text"
    assert stream.finish_reason, "stream without a stop reason"
