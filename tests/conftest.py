from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pytest_observatory.mock import MockGateway, MockSettings

SECRET_KEY = "sk-observatory-TEST-7f3a9c1e"


@pytest.fixture
def gateway() -> Iterator[Callable[..., MockGateway]]:
    """Start real mock gateways on 127.0.0.1 with the given knobs; all stopped after the test."""
    started: list[MockGateway] = []

    def start(**knobs: object) -> MockGateway:
        mock = MockGateway(MockSettings(**knobs))  # type: ignore[arg-type]
        mock.start()
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.stop()
