"""Loopback servers the tests talk to instead of the real thing: a gateway that records what
went over the wire, and a stand-in for Slack's incoming webhooks. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/services/T0OBS/B0OBS/hookSECRET9d41e7"
HANG = "hang"
TRICKLE = "trickle"


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


@dataclass
class FakeSlack:
    """Records every POST; answers from a script ((status, headers) or HANG), then 200 'ok'."""

    script: list[Any] = field(default_factory=list)
    posts: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [payload for _, _, payload in self.posts]


def serve_fake_slack() -> Iterator[FakeSlack]:
    """A stand-in for Slack's incoming webhooks on 127.0.0.1, stopped when the generator ends."""
    fake = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.posts.append((time.monotonic(), self.path, json.loads(body)))
            step = fake.script.pop(0) if fake.script else (200, {})
            if step == HANG:
                fake.release.wait(60)
                return
            if step == TRICKLE:  # a byte a second: no single socket wait ever times out
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                while not fake.release.wait(0.5):
                    self.wfile.write(b"o")
                    self.wfile.flush()
                return
            status, headers = step
            text = b"ok" if status == 200 else b"no_service"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
