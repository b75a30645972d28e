"""Whole sessions against real mock gateways on loopback: verdicts, probes, the shared client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from pytest_observatory.mock import MockGateway

ASYNC_CHAT = """
import pytest

@pytest.mark.observatory({args})
async def test_chat(deployment, model):
    reply = await deployment.chat(model, "Hello", max_tokens=5)
    assert reply["choices"][0]["message"]["content"]
"""


def run_json(pytester: pytest.Pytester, *argv: str) -> tuple[pytest.RunResult, dict]:
    report = pytester.path / "report.json"
    result = pytester.runpytest(*argv, f"--observatory-report={report}")
    return result, json.loads(report.read_text())


def test_healthy_gateway_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='1s', concurrency=4"))
    result, report = run_json(pytester, "--deployment-url=mock")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= observatory =*",
            "deployment: mock",
            "verdict*duration*probes*fail rate*p50 ms*p95 ms*check",
            "PASSED*1.0s*0.00%*test_healthy_gateway_passes.py::test_chat",
            "*mock-gpt-4o",
            "*mock-gpt-4o-mini",
        ]
    )
    (check,) = report["checks"]
    assert check["verdict"] == "passed"
    assert check["failures"] == 0 and check["probes"] > 20
    assert check["latency_ms"]["p50"] > 0
    assert set(check["models"]) == {"mock-gpt-4o", "mock-gpt-4o-mini"}


def test_twenty_percent_failures_fail_with_a_readable_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='1s', max_failure_rate=0.01"))
    result, report = run_json(pytester, "--deployment-url=mock?failure_rate=0.2&failure_status=503")
    result.assert_outcomes(failed=1)
    (check,) = report["checks"]
    assert check["verdict"] == "failed"
    # The mock fails every fifth request exactly.
    assert check["failures"] == check["probes"] // 5
    assert check["failure_rate"] == pytest.approx(0.2, abs=0.05)
    result.stdout.fnmatch_lines(
        [
            "*observatory check failed: failure rate *% >= max_failure_rate 1.00%*",
            "*probes in 1.0s*failed*",
            "*top errors:*",
            "*x http_5xx: HTTP 503 from /v1/chat/completions: mock failure*",
            "*first failure: *after start on mock-gpt-4o*: http_5xx: HTTP 503*",
            "*mock-gpt-4o: * probes, * failed*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_five_percent_failing_gateway_fails_a_one_percent_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='1s', concurrency=2"))
    result, report = run_json(pytester, "--deployment-url=mock?failure_rate=0.05")
    result.assert_outcomes(failed=1)
    assert report["checks"][0]["errors"] == {
        "http_5xx: HTTP 500 from /v1/chat/completions: mock failure (injected, status 500)": (
            report["checks"][0]["failures"]
        )
    }


def test_zero_threshold_allows_no_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='2s', probes=40, max_failure_rate=0"))
    assert pytester.runpytest("--deployment-url=mock").ret == 0
    result = pytester.runpytest("--deployment-url=mock?failure_rate=0.025")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*failure rate 2.50% >= max_failure_rate 0.00% (1 of 40*"])


def test_sync_probe_with_blocking_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_observatory import SyncDeployment

        @pytest.mark.observatory(duration="1s", concurrency=3)
        def test_sync(deployment, model):
            assert isinstance(deployment, SyncDeployment)
            assert deployment.chat(model, "hi")["choices"]
            assert model in deployment.models()
            assert len(deployment.embeddings(model, ["a", "b"])["data"]) == 2
        """
    )
    result, report = run_json(pytester, "--deployment-url=mock")
    result.assert_outcomes(passed=1)
    assert report["checks"][0]["probes"] > 10


def test_probe_exceptions_of_any_kind_are_data(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import itertools
        import pytest

        calls = itertools.count()

        @pytest.mark.observatory(duration="5s", probes=40, max_failure_rate=0.9)
        async def test_mixed(deployment, model):
            n = next(calls)
            if n % 4 == 1:
                assert n < 0, "numbers went wrong"
            if n % 4 == 2:
                raise KeyError("missing")
            if n % 4 == 3:
                pytest.fail("explicit failure")
        """
    )
    result, report = run_json(pytester, "--deployment-url=mock")
    result.assert_outcomes(passed=1)
    check = report["checks"][0]
    assert check["probes"] == 40 and check["failures"] == 30
    assert check["error_categories"] == {"assertion": 20, "other": 10}
    assert check["errors"]["other: KeyError: 'missing'"] == 10


def test_models_are_used_round_robin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        seen = []

        @pytest.mark.observatory(duration="10s", probes=7, models=["a", "b", "c"])
        def test_cycle(model):
            seen.append(model)

        def test_order():
            assert seen == ["a", "b", "c", "a", "b", "c", "a"]
        """
    )
    result = pytester.runpytest("--deployment-url=mock", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_marker_models_win_over_option_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        seen = set()

        @pytest.mark.observatory(duration="10s", probes=4)
        def test_cli_models(model):
            seen.add(model)

        def test_seen():
            assert seen == {"x", "y"}
        """
    )
    pytester.runpytest("--deployment-url=mock", "--models=x,y").assert_outcomes(passed=2)


def test_one_client_for_every_probe_of_every_check(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway]
) -> None:
    mock = gateway()
    pytester.makepyfile(
        """
        import pytest

        clients = set()

        @pytest.mark.observatory(duration="1s", interval="10ms")
        async def test_first(deployment, observatory_client, model):
            clients.add(id(observatory_client))
            assert deployment.client is observatory_client
            await deployment.chat(model, "one")

        @pytest.mark.observatory(duration="1s", interval="10ms")
        def test_second(deployment, observatory_client, model):
            clients.add(id(observatory_client))
            deployment.chat(model, "two")

        @pytest.mark.observatory(duration="1s", interval="10ms")
        async def test_raw_client(observatory_client, model):
            clients.add(id(observatory_client))
            response = await observatory_client.get("models")
            response.raise_for_status()

        def test_same_object():
            assert len(clients) == 1
        """
    )
    result = pytester.runpytest(f"--deployment-url={mock.url}", "--models=mock-gpt-4o")
    result.assert_outcomes(passed=4)
    stats = mock.stats()
    assert stats.requests > 100
    assert stats.connections == 1


def test_duration_override_shortens_a_three_hour_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='3h'"))
    result, report = run_json(pytester, "--deployment-url=mock", "--observatory-duration=1s")
    result.assert_outcomes(passed=1)
    assert 1.0 <= report["checks"][0]["duration_s"] < 10


def test_json_report_schema(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        ASYNC_CHAT.format(args="duration='1s', max_failure_rate=0.5")
        + """
@pytest.mark.observatory(duration="1s")
def test_skipped_by_probe(deployment):
    pytest.skip("model not deployed here")
"""
    )
    result, report = run_json(pytester, "--deployment-url=mock?failure_rate=0.1")
    result.assert_outcomes(passed=1, skipped=1)
    assert report["version"] == 1
    assert report["deployment_url"] == "mock?failure_rate=0.1"
    chat, skipped = report["checks"]
    assert chat["nodeid"] == "test_json_report_schema.py::test_chat"
    for key in (
        "verdict",
        "duration_s",
        "probes",
        "failures",
        "failure_rate",
        "max_failure_rate",
        "errors",
        "first_failure",
        "latency_ms",
        "models",
    ):
        assert key in chat
    assert chat["max_failure_rate"] == 0.5
    assert set(chat["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert chat["latency_ms"]["p50"] <= chat["latency_ms"]["p95"] <= chat["latency_ms"]["max"]
    assert set(chat["first_failure"]) == {"t_s", "model", "error"}
    # Every 10th request fails: the 10th probe, on the second of the two models.
    assert chat["first_failure"]["model"] == "mock-gpt-4o-mini"
    for stats in chat["models"].values():
        assert set(stats) >= {"probes", "failures", "failure_rate"}
    assert sum(m["probes"] for m in chat["models"].values()) == chat["probes"]
    assert skipped["verdict"] == "skipped"
    result.stdout.fnmatch_lines(["*- observatory report: *report.json -*"])


def test_skipped_checks_are_reported_as_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='3h'"))
    report = pytester.path / "out" / "report.json"
    pytester.runpytest(f"--observatory-report={report}").assert_outcomes(skipped=1)
    data = json.loads(report.read_text())
    assert data["deployment_url"] is None
    assert [c["verdict"] for c in data["checks"]] == ["skipped"]


def test_unreachable_deployment_is_a_failed_check_not_a_crash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='1s', interval='100ms'"))
    result, report = run_json(pytester, "--deployment-url=http://127.0.0.1:9", "--models=m")
    result.assert_outcomes(failed=1)
    check = report["checks"][0]
    assert check["failure_rate"] == 1.0
    assert list(check["error_categories"]) == ["connection_refused"]


def test_api_key_is_sent_and_never_leaks(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway], secret_key: str
) -> None:
    mock = gateway(api_key=secret_key)
    pytester.makepyfile(
        ASYNC_CHAT.format(args="duration='1s'")
        + """
@pytest.mark.observatory(duration="1s", max_failure_rate=0.5)
async def test_echo(pytestconfig, model):
    key = pytestconfig.getoption("observatory_deployment_api_key")
    raise RuntimeError("gateway said: bad key Bearer " + key)
"""
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url={mock.url}",
        f"--deployment-api-key={secret_key}",
        "--models=mock-gpt-4o",
        f"--observatory-report={report}",
        "-rA",
    )
    result.assert_outcomes(passed=1, failed=1)
    for text in (result.stdout.str(), result.stderr.str(), report.read_text()):
        assert secret_key not in text
    assert "bad key Bearer ***" in report.read_text()


def test_the_summary_shows_with_q_and_hides_with_qq(pytester: pytest.Pytester) -> None:
    """Like pytest's own summaries: -q keeps them, -qq drops them."""
    pytester.makepyfile(ASYNC_CHAT.format(args="duration='200ms'"))
    result = pytester.runpytest("--deployment-url=mock", "-q")
    result.stdout.fnmatch_lines(["*= observatory =*", "PASSED*test_chat"])
    result = pytester.runpytest("--deployment-url=mock", "-qq")
    assert "observatory" not in result.stdout.str()


@pytest.mark.parametrize(
    "argv",
    [
        ["-p", "no:asyncio"],
        ["-p", "asyncio", "-o", "asyncio_mode=strict"],
        ["-p", "asyncio", "-o", "asyncio_mode=auto"],
    ],
    ids=["without-pytest-asyncio", "asyncio-strict", "asyncio-auto"],
)
def test_async_and_sync_checks_under_every_asyncio_setup(
    pytester: pytest.Pytester, argv: list[str]
) -> None:
    pytester.makepyfile(
        ASYNC_CHAT.format(args="duration='500ms'")
        + """
@pytest.mark.observatory(duration="500ms")
@pytest.mark.asyncio
async def test_marked_asyncio(deployment, model):
    await deployment.chat(model, "x")

@pytest.mark.observatory(duration="500ms")
def test_sync(deployment, model):
    deployment.chat(model, "x")
""".replace("@pytest.mark.asyncio\n", "@pytest.mark.asyncio\n" if "no:asyncio" not in argv else "")
    )
    result = pytester.runpytest("--deployment-url=mock", *argv)
    result.assert_outcomes(passed=3)


def test_results_cross_from_xdist_workers_to_one_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        ASYNC_CHAT.format(args="duration='1s'")
        + """
@pytest.mark.observatory(duration="1s", max_failure_rate=0.5)
def test_sync(deployment, model):
    deployment.chat(model, "x")
"""
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-n", "2", "--deployment-url=mock", f"--observatory-report={report}"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= observatory =*"])
    result.stdout.fnmatch_lines(["PASSED*::test_chat"])
    result.stdout.fnmatch_lines(["PASSED*::test_sync"])
    checks = json.loads(report.read_text())["checks"]
    assert sorted(c["nodeid"].split("::")[1] for c in checks) == ["test_chat", "test_sync"]
    assert all(c["probes"] > 10 and c["latency_ms"]["p50"] for c in checks)


def test_a_hung_sync_probe_is_counted_and_does_not_hang_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest

        release = threading.Event()

        @pytest.mark.observatory(duration="300ms", request_timeout="300ms", max_failure_rate=0.9)
        def test_hangs(model):
            release.wait(30)  # far longer than the check and its grace

        def test_after():
            release.set()
        """
    )
    report = pytester.path / "report.json"
    started = time.monotonic()
    result = pytester.runpytest("--deployment-url=mock", f"--observatory-report={report}")
    assert time.monotonic() - started < 10, "the session waited for the hung probe"
    result.assert_outcomes(failed=1, passed=1)
    (check,) = json.loads(report.read_text())["checks"]
    assert check["probes"] == 1 and check["failures"] == 1
    assert check["errors"] == {"timeout: probe still running 0.3s after the check's end (hung)": 1}
    assert check["duration_s"] < 2
