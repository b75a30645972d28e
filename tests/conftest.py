from __future__ import annotations

from collections.abc import Callable, Iterator

import httpcore  # noqa: F401  # see below
import pytest
from loopback import FakeSlack, RecordingGateway, serve_fake_slack

from pytest_observatory.contract import prepare
from pytest_observatory.mock import MockGateway, MockSettings


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester's sessions have no ini file; without this pytest-asyncio warns in each one.
    (pytester clears PYTEST_ADDOPTS when it starts, so this is set after it.)
    Each test's sessions coordinate among themselves only, not with the rest of the suite."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
    monkeypatch.setenv("OBSERVATORY_LOCK_DIR", str(pytester.path / "observatory-locks"))
    return pytester


@pytest.fixture
def secret_key() -> str:
    """Distinctive enough to grep for in every output and artifact."""
    return "sk-observatory-TEST-7f3a9c1e"


# httpx imports httpcore lazily and caches its exception classes. pytester's in-process runs drop
# modules first imported inside them, so a later run would re-import httpcore and httpx would no
# longer map its exceptions. Importing it here, once, keeps one httpcore for the whole test run.
# The same for the SDK types the contract checks load (seconds per import, in every run that
# validates).
prepare()


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


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    yield from serve_fake_slack()


@pytest.fixture
def recording_gateway() -> Iterator[RecordingGateway]:
    server = RecordingGateway()
    yield server
    server.stop()
