"""Streaming timing, windows and onset, thresholds, and load shapes, against the real mock."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_observatory.mock import MockGateway, MockSettings
from pytest_observatory.observe import Exchange, RequestTiming, current_observer
from pytest_observatory.transport import AiohttpTransport, open_pool


def run_check(
    pytester: pytest.Pytester, marker: str, body: str, url: str, *argv: str
) -> tuple[pytest.RunResult, dict]:
    pytester.makepyfile(
        f"""
import pytest

@pytest.mark.observatory({marker})
async def test_check(deployment, model):
    {body}
"""
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(f"--deployment-url={url}", f"--observatory-report={report}", *argv)
    (check,) = json.loads(report.read_text())["checks"]
    return result, check


def test_ttft_and_itl_follow_the_mock_token_timing(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='2s', concurrency=2",
        "reply = await deployment.stream_chat(model, 'hi'); assert reply.text",
        "mock?latency=50ms&token_rate=50&tokens=6",
    )
    result.assert_outcomes(passed=1)
    # 50 ms before the first token, then a token every 20 ms.
    assert 50 <= check["ttft_ms"]["p50"] < 62
    assert 19 <= check["itl_ms"]["p50"] < 24
    assert 19 <= check["tpot_ms"]["p50"] < 24
    assert 150 <= check["latency_ms"]["p50"] < 175
    assert check["streams"]["tokens_source"] == {"usage": check["streams"]["count"]}
    assert check["streams"]["output_tokens"] == 6 * check["streams"]["count"]
    assert 35 <= check["tokens_per_s"]["p50"] <= 40  # 6 tokens in ~150 ms
    assert check["http"]["requests"] == check["probes"]


@pytest.mark.parametrize(
    ("fault", "category", "message"),
    [
        ("stall", "stream_stalled", "stream stalled: no data for 0.3s after 2 chunks"),
        ("truncate", "stream_truncated", "stream cut off after 2 chunks*"),
        ("malformed", "bad_sse", "bad SSE data: '{not json'"),
        (
            "error",
            "stream_truncated",
            "stream ended by an error event after 2 chunks: mock stream error (injected)",
        ),
    ],
)
def test_broken_streams_are_classified(
    pytester: pytest.Pytester, fault: str, category: str, message: str
) -> None:
    result, check = run_check(
        pytester,
        "duration='1s', request_timeout='300ms', max_failure_rate=0.9",
        "await deployment.stream_chat(model, 'hi')",
        f"mock?stream_fault={fault}&stream_fault_rate=0.5&stream_fault_after=1&tokens=4",
    )
    result.assert_outcomes(passed=1)
    assert check["error_categories"] == {category: check["failures"]}
    assert check["failures"] == check["probes"] // 2
    (recorded,) = check["errors"]
    assert recorded.startswith(f"{category}: ")
    assert pytest.importorskip("fnmatch").fnmatch(recorded, f"{category}: {message}")


def test_periodic_bursts_fail_a_window_threshold_and_show_their_period(
    pytester: pytest.Pytester,
) -> None:
    result, check = run_check(
        pytester,
        "duration='7s', interval='20ms', window='1s', max_window_failure_rate=0.1",
        "await deployment.chat(model, 'hi')",
        "mock?burst_every=2s&burst_length=400ms",
    )
    result.assert_outcomes(failed=1)
    # Diluted in the pooled rate; a window shows the burst.
    assert check["failure_rate"] < 0.15
    onset = check["onset"]
    # Timing on a loaded 2-core machine (both xdist workers, mock and loops) jitters by ~0.1 s,
    # and there so few probes may fall in each timeline slice that no slice stands out as a
    # burst: the bursting model's failure clusters still give the period.
    assert onset["period_s"] == pytest.approx(2.0, abs=0.15)
    assert onset["summary"].startswith("failures") and "every ~" in onset["summary"]
    assert onset["confined_to"] == "mock-gpt-4o"
    bursting = onset["models"]["mock-gpt-4o"]
    assert bursting["period_s"] == pytest.approx(2.0, abs=0.15)
    starts = bursting["cluster_starts_s"]
    assert {round(start / 2.0) for start in starts} == {1, 2, 3}
    assert starts[0] == pytest.approx(2.0, abs=0.25)
    (error,) = check["errors"]
    assert error.endswith("Cannot send a request, as the client has been closed.")
    assert check["first_failure"]["model"] == "mock-gpt-4o"
    assert {w["start_s"] for w in check["windows"]} == {0, 1, 2, 3, 4, 5, 6}
    # Failures fall only in the windows a burst touches (the mock's clock starts a little
    # before the check's, so a burst may straddle a window boundary).
    touched = {int(t) for start in starts for t in (start - 0.15, start + 0.45)}
    failing = {int(w["start_s"]) for w in check["windows"] if w["failures"]}
    assert failing <= touched and {0} & failing == set()
    assert sum(w["failures"] for w in check["windows"]) == check["failures"]
    result.stdout.fnmatch_lines(
        [
            "*window *s-*s: failure rate *% >= max_window_failure_rate 10.00%*",
            "*onset: failures*every ~*s, first at *s*",
        ]
    )


def test_bursts_show_through_a_background_failure_rate(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='10s', concurrency=2, max_failure_rate=0.5",
        "await deployment.chat(model, 'hi')",
        "mock?failure_rate=0.05&latency=10ms&burst_every=3s&burst_length=500ms",
    )
    result.assert_outcomes(passed=1)
    onset = check["onset"]
    assert onset["period_s"] == pytest.approx(3.0, abs=0.15)
    assert onset["burst_starts_s"][0] == pytest.approx(3.0, abs=0.25)
    assert check["first_failure"]["t_s"] < 1.5  # the background, long before the first burst


def test_latency_thresholds_name_what_failed(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='1s', concurrency=4, max_p95_latency='20ms', max_p99_latency='1s', "
        "max_ttft_p95='1s', max_itl_p95='1s'",
        "await deployment.chat(model, 'hi')",
        "mock?latency=50ms",
    )
    result.assert_outcomes(failed=1)
    assert check["reasons"] == [
        f"latency p95 {check['latency_ms']['p95'] / 1000 * 1000:.0f}ms > max_p95_latency 20ms",
        "max_ttft_p95 is set but no probe streamed (use a deployment.stream_* helper)",
        "max_itl_p95 is set but no probe streamed (use a deployment.stream_* helper)",
    ]


@pytest.mark.parametrize(("limit", "passed"), [("10ms", False), ("200ms", True)])
def test_inter_token_latency_threshold(pytester: pytest.Pytester, limit: str, passed: bool) -> None:
    """A token every 40 ms: a 10 ms limit on the gaps' p95 fails, 200 ms passes."""
    result, check = run_check(
        pytester,
        f"duration='1s', max_itl_p95='{limit}'",
        "await deployment.stream_chat(model, 'hi')",
        "mock?token_rate=25&tokens=4",
    )
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    assert check["itl_ms"]["p50"] >= 39
    reasons = [r for r in check["reasons"] if "max_itl_p95" in r]
    if passed:
        assert reasons == []
    else:
        [reason] = reasons
        assert reason.startswith("inter-token latency p95 4") and reason.endswith(
            " > max_itl_p95 10ms"
        )


def test_open_loop_holds_the_asked_rate(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester, "duration='3s', rate=200", "await deployment.chat(model, 'hi')", "mock"
    )
    result.assert_outcomes(passed=1)
    load = check["load"]
    assert load["mode"] == "open" and load["rate"] == 200
    assert load["achieved_rate"] == pytest.approx(200, rel=0.02)
    assert check["probes"] == pytest.approx(600, rel=0.02)
    # On a loaded machine (both xdist workers, the mock, two loops on 2 cores) a few starts
    # may slip past the 10 ms lateness mark; the schedule itself must hold.
    assert load["late_probes"] < 0.05 * check["probes"]


def test_poisson_arrivals_average_the_asked_rate(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='3s', rate=300, arrival='poisson'",
        "await deployment.chat(model, 'hi')",
        "mock",
    )
    result.assert_outcomes(passed=1)
    # 900 expected arrivals: the Poisson count's standard deviation is 30 (3.3%).
    assert check["load"]["achieved_rate"] == pytest.approx(300, rel=0.15)


def test_open_loop_says_when_it_falls_behind(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='1s', rate=100, concurrency=1",
        "await deployment.chat(model, 'hi')",
        "mock?latency=50ms",
    )
    result.assert_outcomes(passed=1)
    load = check["load"]
    # One probe in flight, 50 ms each: ~20 start, all but the first one late.
    assert load["achieved_rate"] < 25 and load["scheduled_probes"] == 100
    assert load["late_probes"] >= check["probes"] - 2 and load["max_lag_ms"] > 500
    assert check["notes"][0].startswith("open loop fell behind:")
    result.stdout.fnmatch_lines(
        ["*note: open loop fell behind: * probes started late (max * ms) and * of ~100 sched*"]
    )


def test_ramp_grows_the_rate_linearly(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='3s', rate=200, ramp='2s', window='1s'",
        "await deployment.chat(model, 'hi')",
        "mock",
    )
    result.assert_outcomes(passed=1)
    # 0 -> 200/s over 2 s delivers 200 probes, then 200 more in the last second.
    assert check["probes"] == pytest.approx(400, rel=0.03)
    first, second, third = (w["probes"] for w in check["windows"])
    assert first == pytest.approx(50, abs=4)
    assert second == pytest.approx(150, abs=4)
    assert third == pytest.approx(200, abs=5)


def test_closed_loop_ramp_starts_lanes_one_by_one(pytester: pytest.Pytester) -> None:
    result, check = run_check(
        pytester,
        "duration='2s', concurrency=4, ramp='2s', window='500ms'",
        "import asyncio; await asyncio.sleep(0.05)",
        "mock",
    )
    result.assert_outcomes(passed=1)
    per_window = [w["probes"] for w in check["windows"]]
    # Lanes start at 0, 0.5, 1.0, 1.5 s: one, two, three, four lanes at ~20 probes/s each.
    assert per_window == pytest.approx([10, 20, 30, 40], abs=3)


def test_transport_times_raw_client_requests_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.observatory(duration='1s')
async def test_check(observatory_client):
    response = await observatory_client.post(
        'chat/completions', json={'model': 'mock-gpt-4o', 'messages': []}
    )
    response.raise_for_status()
    assert response.json()['choices']
"""
    )
    report = pytester.path / "report.json"
    pytester.runpytest(
        "--deployment-url=mock?latency=20ms", f"--observatory-report={report}"
    ).assert_outcomes(passed=1)
    (check,) = json.loads(report.read_text())["checks"]
    http = check["http"]
    assert http["requests"] == check["probes"] and http["status"] == {"200": check["probes"]}
    assert 20 <= http["headers_ms"]["p50"] <= http["total_ms"]["p50"] < 30
    assert http["bytes_in"] > 100 * check["probes"]


def test_time_queued_for_a_connection_is_not_latency() -> None:
    """With a pool of one connection, the second of two concurrent requests waits ~100 ms for
    it: that wait is reported as queue time, and its latency stays ~100 ms, not ~200 ms."""
    timings: list[RequestTiming] = []
    request_ids: set[str] = set()

    class Collect:
        def request_sent(self, exchange: Exchange) -> None:
            request_ids.add(exchange.request_id)

        def request_done(self, timing: RequestTiming) -> None:
            timings.append(timing)

        def stream_done(self, result: object) -> None:
            raise AssertionError("no streams here")

    async def scenario(url: str) -> None:
        import httpx

        current_observer.set(Collect())  # type: ignore[arg-type]
        pool = open_pool({}, 10.0, max_connections=1)
        async with httpx.AsyncClient(transport=AiohttpTransport(pool), base_url=url) as client:
            body = {"model": "mock-gpt-4o", "messages": []}
            await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in "ab"))
        await pool.close()

    with MockGateway(MockSettings(latency_s=0.1)) as mock:
        asyncio.run(scenario(mock.url))
    first, second = sorted(timings, key=lambda t: t.queue_ns or 0)
    assert len(request_ids) == 2  # each request named (X-Request-ID) before it queued
    assert first.queue_ns == 0
    assert 80e6 <= second.queue_ns <= 150e6
    for timing in timings:
        assert 95e6 <= timing.total_ns <= 150e6
        assert timing.status == 200 and timing.headers_ns <= timing.total_ns


def test_a_capped_pool_hands_connections_out_in_arrival_order(pytester: pytest.Pytester) -> None:
    """Four lanes, one connection: each lane gets its turn (aiohttp's own limit let the lane
    that just finished keep the connection: 39 probes against 1, 1, 1), every request's wait is
    in queue_ms, zero waits included, and the deployment's latency stays ~50 ms."""
    pytester.makepyfile(
        """
        import asyncio, collections, json, pathlib
        import pytest

        LANES = collections.Counter()

        @pytest.mark.observatory(duration="1s", concurrency=4)
        async def test_check(deployment, model):
            LANES[id(asyncio.current_task())] += 1  # each lane is one task
            pathlib.Path("lanes.json").write_text(json.dumps(sorted(LANES.values())))
            await deployment.chat(model, "hi")
        """
    )
    result = pytester.runpytest(
        "--deployment-url=mock?latency=50ms",
        "--observatory-max-connections=1",
        "--observatory-report=report.json",
    )
    result.assert_outcomes(passed=1)
    lanes = json.loads((pytester.path / "lanes.json").read_text())
    assert len(lanes) == 4 and lanes[-1] - lanes[0] <= 1, lanes
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    http = check["http"]
    # Three requests ahead of each one: ~150 ms of waiting, kept apart from latency, which
    # stays near the mock's 50 ms (with the wait in it, it would be ~200 ms).
    assert 50 <= http["total_ms"]["p50"] < 100
    assert 50 <= check["latency_ms"]["p50"] < 100
    assert 100 <= http["queue_ms"]["p50"] <= 250
    assert http["requests"] - 4 <= http["queue_waits"] <= http["requests"]
    result.stdout.fnmatch_lines(["observatory: *max connections=1*"])
