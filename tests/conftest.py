from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator

import httpcore  # noqa: F401  # see below
import pytest

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


class RecordingGateway:
    """A minimal OpenAI-compatible server on 127.0.0.1 that records every request line and
    Authorization header, to check what really went over the wire (query, credentials). Under
    ``/html/`` it answers an HTML page, under ``/empty/`` a 200 with an empty body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(json.loads(self.rfile.read(length) or b"{}"))

            def _answer(self, body: dict[str, object] | None) -> None:
                gateway.requests.append(
                    (self.command, self.path, self.headers.get("Authorization"))
                )
                path = urllib.parse.urlsplit(self.path).path
                if path.startswith("/html/"):  # a gateway's login or error page
                    return self._send(200, "text/html", b"<html><body>Sign in</body></html>")
                if path.startswith("/empty/"):
                    return self._send(200, "application/json", b"")
                if path.endswith("/fail"):
                    return self._send(500, "application/json", b'{"error": "boom"}')
                if path.endswith("/models"):
                    models = {"object": "list", "data": [{"id": "m", "object": "model"}]}
                    return self._send(200, "application/json", json.dumps(models).encode())
                if body and body.get("stream"):
                    events = [
                        {"choices": [{"index": 0, "delta": {"content": word}}]}
                        for word in ("hello", " there")
                    ]
                    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
                    return self._send(200, "text/event-stream", (sse + "data: [DONE]\n\n").encode())
                completion = {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hi"},
                            "finish_reason": "stop",
                        }
                    ],
                }
                self._send(200, "application/json", json.dumps(completion).encode())

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recording_gateway() -> Iterator[RecordingGateway]:
    server = RecordingGateway()
    yield server
    server.stop()
