"""Chaos mode of the mock gateway, measured through the plugin: each fault injected at a known
fraction comes out at a plausible rate, in its documented error category, within the time
budget; the seed repeats a run exactly; the command line and the URL share every knob."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

from pytest_observatory.mock import MockGateway, MockSettings
from pytest_observatory.mock.__main__ import parse_command_line
from pytest_observatory.mock.settings import CHAOS_FAULTS, KNOBS_BY_NAME

PROBES = 200
FRACTION = 0.2
REQUEST_TIMEOUT_S = 2.0  # well above a healthy answer's time on a loaded 2-core machine


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """The central interval of Binomial(n, p) holding ``level`` of its mass (exact tails)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    tail = (1 - level) / 2
    low = next(k for k in range(n + 1) if sum(pmf[: k + 1]) > tail)
    high = next(k for k in range(n, -1, -1) if sum(pmf[k:]) > tail)
    return low, high


def run_check(
    pytester: pytest.Pytester, url: str, marker: str, stream: bool = False
) -> dict[str, object]:
    call = "stream_chat" if stream else "chat"
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.observatory({marker}, max_failure_rate=0.99)
        async def test_chaos(deployment, model):
            await deployment.{call}(model, "hello", max_tokens=4)
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url={url}",
        "--models=mock-gpt-4o,mock-gpt-4o-mini",
        f"--observatory-report={report}",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=1)
    check: dict[str, object] = json.loads(report.read_text())["checks"][0]
    return check


# (fault, streamed, category): None where the fault is no error by itself (a valid answer).
CASES = [
    ("reset", False, "connection_error"),
    ("reset", True, "connection_error"),
    ("stall", False, "timeout"),
    ("stall", True, "timeout"),
    ("bad_json", False, "bad_response"),
    ("bad_json", True, "bad_sse"),
    ("wrong_type", False, "bad_response"),
    ("wrong_type", True, "bad_response"),
    ("huge", False, None),
    ("huge", True, None),
    ("trickle", False, "timeout"),  # the whole answer takes longer than request_timeout
    ("trickle", True, None),  # a slow stream: every gap is shorter than the read timeout
    ("throttle", False, "http_429"),
    ("throttle", True, "http_429"),
]


@pytest.mark.parametrize(("fault", "stream", "category"), CASES)
def test_fault_rate_and_category(
    pytester: pytest.Pytester,
    gateway: Callable[..., MockGateway],
    fault: str,
    stream: bool,
    category: str | None,
) -> None:
    huge_size = 1_000_000  # over aiohttp's 512 KiB line limit, which a stream event must survive
    mock = gateway(
        **{f"{fault}_rate": FRACTION},
        seed=CASES.index((fault, stream, category)),  # a fixed, different sample per case
        huge_size=huge_size,
        # Chats: longer than the request timeout, in gaps far shorter. Streams: slow, but every
        # stream ends well before the check does.
        trickle_time_s=0.6 if stream else REQUEST_TIMEOUT_S + 0.5,
    )
    # Short where the fault is to outlast it; roomy elsewhere (1 MB answers on a loaded machine).
    timeout_s = REQUEST_TIMEOUT_S if fault in ("stall", "trickle") else 10.0
    check = run_check(
        pytester,
        mock.url,
        f'duration="15s", probes={PROBES}, concurrency=20, request_timeout="{timeout_s}s"',
        stream,
    )
    injected = mock.stats().chaos.get(fault, 0)
    low, high = binomial_interval(PROBES, FRACTION)
    assert check["probes"] == PROBES
    assert low <= injected <= high, f"{injected} of {PROBES} outside [{low}, {high}]"
    if category is None:
        assert check["failures"] == 0, check["errors"]
    else:
        assert check["error_categories"] == {category: injected}, check["errors"]
    if fault == "huge":
        http = check["http"]
        assert isinstance(http, dict)
        assert injected * huge_size <= http["bytes_in"] < (injected + 1) * huge_size


def test_mixed_chaos_on_one_model_ends_in_time(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    """Every fault at once, on one model only, with stalls and trickles far longer than the
    request timeout: the check still ends within duration + request_timeout + a little."""
    mock = gateway(
        **{f"{fault}_rate": 0.1 for fault in CHAOS_FAULTS},
        chaos_models=("mock-gpt-4o",),
        huge_size=1_000_000,
        trickle_time_s=30.0,
    )
    duration_s, timeout_s = 1.0, 0.5
    started = time.monotonic()
    check = run_check(
        pytester,
        mock.url,
        f'duration="{duration_s}s", concurrency=4, request_timeout="{timeout_s}s"',
    )
    elapsed = time.monotonic() - started
    assert check["duration_s"] <= duration_s + timeout_s + 1.0  # type: ignore[operator]
    assert elapsed <= duration_s + timeout_s + 3.0  # the session's own start and end included
    models = check["models"]
    assert isinstance(models, dict)
    assert models["mock-gpt-4o-mini"]["failures"] == 0
    assert models["mock-gpt-4o"]["failures"] == check["failures"] > 0
    expected = {"connection_error", "timeout", "bad_response", "http_429"}
    assert set(check["error_categories"]) <= expected  # type: ignore[arg-type]


def test_same_seed_same_faults(gateway: Callable[..., MockGateway]) -> None:
    knobs = {"reset_rate": 0.2, "bad_json_rate": 0.2, "wrong_type_rate": 0.2, "throttle_rate": 0.2}

    def outcomes(seed: int) -> list[str]:
        mock = gateway(**knobs, seed=seed)
        seen = []
        with httpx.Client(base_url=mock.url) as client:
            for _ in range(40):
                body = {"model": "mock-gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
                try:
                    response = client.post("/v1/chat/completions", json=body)
                except httpx.TransportError as exc:
                    seen.append(type(exc).__name__)
                else:
                    seen.append(f"{response.status_code} {response.headers['content-type']}")
        return seen

    first = outcomes(seed=7)
    assert outcomes(seed=7) == first
    assert outcomes(seed=8) != first
    assert len(set(first)) == 5  # each fault, and plain answers


# One value per knob; a knob added to the table without a sample here fails the test below.
KNOB_SAMPLES = {
    "latency": "20ms",
    "failure_rate": "0.05",
    "failure_status": "503",
    "models": "a,b",
    "api_key": "sk-mock",
    "tokens": "3",
    "token_rate": "100",
    "stream_fault": "truncate",
    "stream_fault_rate": "0.5",
    "stream_fault_after": "1",
    "burst_every": "1m",
    "burst_length": "3s",
    "burst_model": "b",
    "reset_rate": "0.01",
    "stall_rate": "0.02",
    "bad_json_rate": "0.03",
    "wrong_type_rate": "0.04",
    "huge_rate": "0.05",
    "huge_size": "20MB",
    "trickle_rate": "0.06",
    "trickle_time": "5s",
    "throttle_rate": "0.07",
    "retry_after": "2s",
    "chaos_models": "a",
    "seed": "42",
    "capacity": "8",
    "health_fail_after": "1m",
    "model_missing_after": "90s",
    "embedding_dim_change_after": "2",
}


def test_command_line_and_query_share_every_knob() -> None:
    assert set(KNOB_SAMPLES) == set(KNOBS_BY_NAME)
    argv = [arg for name, value in KNOB_SAMPLES.items() for arg in (f"--{name}", value)]
    argv = [arg.replace("_", "-") if arg.startswith("--") else arg for arg in argv]
    _, from_command_line, _, _ = parse_command_line(argv)
    from_query = MockSettings.from_query(urlencode(KNOB_SAMPLES))
    assert from_command_line == from_query
    assert from_query.huge_size == 20_000_000 and from_query.chaos_models == ("a",)
    assert parse_command_line([])[1] == MockSettings()
