"""One chat completion must succeed: the quickest proof that URL, key and model are right
before a long suite is started."""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment


@pytest.mark.observatory(duration="60s", probes=1, max_failure_rate=0, validate=True)
async def test_mock_single_request(deployment: AsyncDeployment, model: str) -> None:
    reply = await deployment.chat(model, "Say hello.", max_tokens=10)
    assert reply["choices"][0]["message"]["content"], "empty completion"
