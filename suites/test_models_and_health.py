"""The deployment stays whole: every requested model listed, the health route healthy.

Two checks of three hours each, a probe every second. ``/v1/models`` must list each model of
``--models`` (one model per probe, cycling) for the whole run: a model that drops out of a
gateway's config mid-run fails. The health route (``--deployment-health-path``: LiteLLM's
``/health/liveliness`` by default, ``/health`` for vLLM) must answer 2xx every time. Each check
fails above 1% failed probes.

    pytest suites/test_models_and_health.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --models=gpt-4o,azure/gpt-4o --deployment-health-path=/health
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_models_listed(deployment: AsyncDeployment, model: str) -> None:
    listed = await deployment.models()
    assert model in listed, f"{model} missing from /v1/models ({len(listed)} models listed)"


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_health(deployment: AsyncDeployment) -> None:
    await deployment.health()  # a non-2xx answer fails the probe (http_5xx, http_4xx)
