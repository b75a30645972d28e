"""Failures you can trace and what the run cost: every request carries a fresh X-Request-ID,
failed probes are sampled with the ids the gateway saw, and the answers' token usage is summed
per model. Checked against what the real mock gateway received and served."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_observatory.mock import MockGateway
from pytest_observatory.tracing import (
    FIRST_SAMPLES,
    LATER_SAMPLES,
    FailureSamples,
    new_request_id,
)
from pytest_observatory.usage import sum_tokens, token_counts

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run(
    pytester: pytest.Pytester, source: str, *argv: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(source)
    result = pytester.runpytest(*argv, "--observatory-report=r.json")
    report = json.loads((pytester.path / "r.json").read_text())
    return result, report


def test_failure_samples_name_the_requests_the_gateway_received(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    mock = gateway(failure_rate=0.25)
    result, report = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", concurrency=2, max_failure_rate=0)
        async def test_chat(deployment, model):
            await deployment.chat(model, "one two three", max_tokens=2)
        """,
        f"--deployment-url={mock.url}",
        "--models=mock-gpt-4o",
        "--observatory-html=r.html",
    )
    result.assert_outcomes(failed=1)
    (check,) = report["checks"]
    received = {entry["request_id"]: entry for entry in mock.requests()}
    assert len(received) == len(mock.requests()) == check["probes"]  # one fresh id each
    assert all(UUID4.match(request_id) for request_id in received)
    samples = check["failure_samples"]
    assert len(samples) == min(check["failures"], FIRST_SAMPLES + LATER_SAMPLES)
    for sample in samples:
        entry = received[sample["request_id"]]
        assert entry["status"] == sample["status"] == 500
        assert sample["gateway_request_id"] == entry["call_id"]
        assert sample["category"] == "http_5xx" and sample["model"] == "mock-gpt-4o"
        assert sample["lane"] in (0, 1)
        assert sample["message"] == "HTTP 500 from /v1/chat/completions: " + (
            "mock failure (injected, status 500)"
        )
    assert [s["t_s"] for s in samples] == sorted(s["t_s"] for s in samples)
    failed_ids = {r for r, entry in received.items() if entry["status"] == 500}
    assert {s["request_id"] for s in samples} <= failed_ids
    first = samples[0]
    html = (pytester.path / "r.html").read_text()
    assert all(sample["request_id"] in html for sample in samples)
    assert f"tokens: {3 * (check['probes'] - check['failures']):,} prompt" in html
    result.stdout.fnmatch_lines(
        [
            "*failure samples (all in the report's failure_samples):",
            f"*mock-gpt-4o lane * http_5xx 500 X-Request-ID {first['request_id']} "
            f"gateway id {first['gateway_request_id']}: HTTP 500 from*",
        ]
    )


def test_every_client_sends_a_fresh_request_id_and_failures_in_def_checks_are_traced(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    """The helpers, the httpx client and the OpenAI SDK (all through the pool), from a plain
    ``def`` check whose probes run in worker threads; a caller's own X-Request-ID is kept."""
    mock = gateway()
    result, report = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="30s", probes=3, max_failure_rate=0)
        def test_clients(deployment, model):
            deployment.chat(model, "hi", max_tokens=1)
            deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
            deployment.openai().models.list(extra_headers={"X-Request-ID": "mine-1"})
            deployment.stream_chat("no-such-model", "hi")
        """,
        f"--deployment-url={mock.url}",
        "--models=mock-gpt-4o",
    )
    result.assert_outcomes(failed=1)
    (check,) = report["checks"]
    entries = mock.requests()
    assert len(entries) == 4 * 3
    ours = [e["request_id"] for e in entries if e["request_id"] != "mine-1"]
    assert len(ours) == 3 * 3 and len(set(ours)) == len(ours)
    assert all(UUID4.match(request_id) for request_id in ours)
    not_found = {e["request_id"]: e["call_id"] for e in entries if e["status"] == 404}
    samples = check["failure_samples"]
    assert len(samples) == check["failures"] == 3
    for sample in samples:
        assert sample["status"] == 404 and sample["category"] == "http_4xx"
        assert not_found[sample["request_id"]] == sample["gateway_request_id"]


def test_sdk_failures_are_traced_to_their_request(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    """The OpenAI SDK raises its own errors; the sample still names the request it failed on,
    with the status the SDK's exception carries (a 429 here, which the SDK does not retry)."""
    mock = gateway(failure_rate=0.5, failure_status=429)
    result, report = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="30s", probes=20, max_failure_rate=0)
        async def test_sdk(deployment, model):
            await deployment.openai().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
        """,
        f"--deployment-url={mock.url}",
        "--models=mock-gpt-4o",
    )
    result.assert_outcomes(failed=1)
    (check,) = report["checks"]
    throttled = {e["request_id"]: e["call_id"] for e in mock.requests() if e["status"] == 429}
    samples = check["failure_samples"]
    assert len(samples) == check["failures"] == len(throttled) == 10
    for sample in samples:
        assert sample["category"] == "http_429" and sample["status"] == 429
        assert throttled[sample["request_id"]] == sample["gateway_request_id"]
    assert check["tokens"] is None  # the SDK's answers are not parsed by the transport


def test_only_the_first_and_a_uniform_sample_of_later_failures_are_kept() -> None:
    samples = FailureSamples(str)
    total = 10_000
    for n in range(total):
        samples.offer(
            float(n), "m", n % 4, "http_5xx", "http_5xx: HTTP 500 " + "x" * 300, 500, None
        )
    kept = samples.to_json()
    assert kept is not None and len(kept) == FIRST_SAMPLES + LATER_SAMPLES
    times = [sample["t_s"] for sample in kept]
    assert times[:FIRST_SAMPLES] == [float(n) for n in range(FIRST_SAMPLES)]
    later = times[FIRST_SAMPLES:]
    assert len(set(later)) == LATER_SAMPLES and min(later) >= FIRST_SAMPLES
    # Uniform over the later 9,980: their mean is 5,010 give or take 645 (one sd).
    assert 2_000 < sum(later) / len(later) < 8_000
    assert all(len(sample["message"]) == 200 for sample in kept)
    assert kept[0]["message"].startswith("HTTP 500 xxx")


def test_tokens_per_model_are_what_the_mock_served(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    """Per probe the mock serves: chat 3 prompt + 4 completion tokens, the stream the same
    (usage in its last chunk), embeddings 3 prompt tokens."""
    mock = gateway()
    result, report = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="1s", max_failure_rate=0)
        async def test_costly(deployment, model):
            await deployment.chat(model, "one two three", max_tokens=4)
            await deployment.stream_chat(model, "one two three", max_tokens=4)
            await deployment.embeddings(model, ["one two", "three"])
        """,
        f"--deployment-url={mock.url}",
        "--models=mock-gpt-4o,mock-gpt-4o-mini",
    )
    result.assert_outcomes(passed=1)
    (check,) = report["checks"]
    assert len(mock.requests()) == 3 * check["probes"]
    expected = {
        name: {"prompt": 9 * model["probes"], "completion": 8 * model["probes"]}
        for name, model in check["models"].items()
    }
    assert check["tokens"]["models"] == expected
    assert check["tokens"]["prompt"] == 9 * check["probes"]
    assert report["tokens"] == check["tokens"]
    a, b = expected["mock-gpt-4o"], expected["mock-gpt-4o-mini"]
    result.stdout.fnmatch_lines(
        [
            f"* tokens: {9 * check['probes']:,} prompt + {8 * check['probes']:,} completion "
            f"(mock-gpt-4o {a['prompt']:,}+{a['completion']:,}, "
            f"mock-gpt-4o-mini {b['prompt']:,}+{b['completion']:,})"
        ]
    )


def test_tokens_are_summed_across_xdist_workers(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    mock = gateway()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="1s", max_failure_rate=0)
        async def test_one(deployment, model):
            await deployment.chat(model, "one two", max_tokens=3)

        @pytest.mark.observatory(duration="1s", max_failure_rate=0)
        async def test_two(deployment, model):
            await deployment.chat(model, "one", max_tokens=5)
        """
    )
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        f"--deployment-url={mock.url}",
        "--models=mock-gpt-4o",
        "--observatory-report=r.json",
    )
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "r.json").read_text())
    one, two = sorted(report["checks"], key=lambda check: check["nodeid"])
    assert one["tokens"]["models"]["mock-gpt-4o"] == {
        "prompt": 2 * one["probes"],
        "completion": 3 * one["probes"],
    }
    assert two["tokens"]["prompt"] == two["probes"]
    prompt = 2 * one["probes"] + two["probes"]
    completion = 3 * one["probes"] + 5 * two["probes"]
    assert report["tokens"] == {
        "prompt": prompt,
        "completion": completion,
        "models": {"mock-gpt-4o": {"prompt": prompt, "completion": completion}},
    }
    result.stdout.fnmatch_lines([f"session tokens: {prompt:,} prompt + {completion:,} completion*"])


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for request_id in ids:
        parsed = uuid.UUID(request_id)
        assert str(parsed) == request_id and UUID4.match(request_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_usage_in_either_spelling() -> None:
    assert token_counts({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}) == (3, 4)
    assert token_counts({"input_tokens": 5, "output_tokens": 6}) == (5, 6)
    assert token_counts({"prompt_tokens": 2, "total_tokens": 2}) == (2, 0)  # embeddings
    assert token_counts({"total_tokens": 2}) is None
    assert token_counts(None) is None and token_counts({"prompt_tokens": "3"}) is None
    assert sum_tokens([None, None]) is None


@pytest.fixture
def echoing_gateway() -> Iterator[str]:
    """A gateway that refuses every request, echoing the key it was sent in its error body and
    in its request-id header (as careless proxies do)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("request-id", f"req-{key}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_no_secret_in_samples_when_the_gateway_echoes_the_key(
    pytester: pytest.Pytester, echoing_gateway: str, secret_key: str
) -> None:
    result, report = run(
        pytester,
        """
        import pytest

        @pytest.mark.observatory(duration="30s", probes=5, max_failure_rate=0)
        async def test_chat(deployment):
            await deployment.chat("m", "hi")
        """,
        f"--deployment-url={echoing_gateway}",
        f"--deployment-api-key={secret_key}",
    )
    result.assert_outcomes(failed=1)
    (check,) = report["checks"]
    samples = check["failure_samples"]
    assert len(samples) == 5
    assert all(s["gateway_request_id"] == "req-***" for s in samples)
    assert all(s["message"].endswith("Incorrect API key provided: ***") for s in samples)
    assert all(uuid.UUID(s["request_id"]).version == 4 for s in samples)
    output = result.stdout.str() + result.stderr.str()
    assert "failure samples" in output
    assert secret_key not in output
    assert secret_key not in (pytester.path / "r.json").read_text()
