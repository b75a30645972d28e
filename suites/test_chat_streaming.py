"""Streamed chat completions, judged on time to first token and the gaps between tokens.

Three hours of streamed answers, cycling the given models, a 1 s pause after each. A probe fails
if the stream errors, stalls, ends without ``[DONE]`` or carries no text, or if any gap between
two tokens is longer than ``MAX_TOKEN_GAP_MS`` (a stall the p95 would hide); the check fails above
1% failed probes, a TTFT p95 over 2 s or an inter-token latency p95 over 500 ms.

    pytest suites/test_chat_streaming.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=gpt-4o,azure/gpt-4o
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

PROMPT = "Count from one to twenty in words, separated by spaces."
MAX_TOKEN_GAP_MS = 5_000.0


@pytest.mark.observatory(
    duration="3h",
    max_failure_rate=0.01,
    interval="1s",
    max_ttft_p95="2s",
    max_itl_p95="500ms",
    request_timeout="60s",
    validate=True,
)
async def test_chat_streaming(deployment: AsyncDeployment, model: str) -> None:
    stream = await deployment.stream_chat(model, PROMPT, max_tokens=64)
    assert stream.text, "stream without text"
    longest = max(stream.itl_ms, default=0.0)
    assert longest <= MAX_TOKEN_GAP_MS, f"{longest:.0f} ms between two tokens"
