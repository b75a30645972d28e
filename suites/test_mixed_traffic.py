"""A weighted mix of requests, the way real load looks: 60% chat, 25% streamed chat, 15%
embeddings, four at a time.

Each probe draws its kind from a random generator seeded with ``SEED``, so two runs send the
same sequence; chat models cycle through ``--models``, embedding models through
``--embedding-models``. Three hours, failing above 1% failed probes or a p95 latency over 30 s.
Change ``MIX`` to the traffic your gateway sees.

    pytest suites/test_mixed_traffic.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=gpt-4o --embedding-models=text-embedding-3-small
"""

from __future__ import annotations

import random

import pytest

from pytest_observatory import AsyncDeployment

MIX = {"chat": 60, "stream_chat": 25, "embeddings": 15}
SEED = 15
PROMPT = "Give me one tip for testing software releases."
_draws = random.Random(SEED)


@pytest.mark.observatory(
    duration="3h", max_failure_rate=0.01, concurrency=4, interval="1s", max_p95_latency="30s"
)
async def test_mixed_traffic(deployment: AsyncDeployment, model: str, embedding_model: str) -> None:
    kind = _draws.choices(list(MIX), weights=list(MIX.values()))[0]
    if kind == "chat":
        reply = await deployment.chat(model, PROMPT, max_tokens=64)
        assert reply["choices"][0]["message"]["content"], "empty completion"
    elif kind == "stream_chat":
        stream = await deployment.stream_chat(model, PROMPT, max_tokens=64)
        assert stream.text, "stream without text"
    else:
        reply = await deployment.embeddings(embedding_model, PROMPT)
        assert reply["data"] and reply["data"][0]["embedding"], "no embedding"
