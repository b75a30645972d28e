"""The release check the original LiteLLM Observatory ran before every release.

Three hours of chat completions through ONE reused client, cycling the given models, a 1 s pause
after each answer, failing above a 1% pooled failure rate. The client reuse is the point: a cached
client closed under a long-lived caller ("Cannot send a request, as the client has been closed")
only shows after its TTL expires, long after every unit test has passed. Every answer is also
held against the API's contract (``validate=True``): a malformed one fails as ``contract``.

    pytest suites -m observatory --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=gpt-4o,azure/gpt-4o
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

PROMPT = "Hello! This is a release test. Reply with a short greeting."


@pytest.mark.observatory(
    duration="3h", max_failure_rate=0.01, interval="1s", request_timeout="60s", validate=True
)
async def test_oai_azure_release(deployment: AsyncDeployment, model: str) -> None:
    reply = await deployment.chat(model, PROMPT, max_tokens=50)
    assert reply["choices"], "completion without choices"
