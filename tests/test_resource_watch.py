"""The memory and resource watch: --deployment-metrics-url sampled per window, growth per hour
by least squares, max_memory_growth, and the mock's /metrics with its leak knob."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_observatory.metrics_watch import parse_values
from pytest_observatory.mock.__main__ import parse_command_line
from pytest_observatory.mock.metrics import BASE_RESIDENT_BYTES, resident_bytes
from pytest_observatory.mock.settings import MockSettings
from pytest_observatory.resources import (
    MEMORY_METRIC,
    ResourceWatch,
    Series,
    growth_per_h,
    slope_per_s,
    with_resources,
)
from pytest_observatory.result import CheckResult
from pytest_observatory.sizes import SizeRate, parse_size_rate

CHECK = """
import pytest

@pytest.mark.observatory(duration="{duration}", window="0.5s", max_memory_growth="{limit}")
def test_chat(deployment, model):
    deployment.chat(model, "hi", max_tokens=2)
"""


def run_watched(
    pytester: pytest.Pytester, url: str, metrics_url: str, *argv: str, duration: str = "3s"
) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_watched=CHECK.format(duration=duration, limit="50MB/h"))
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url={url}",
        f"--deployment-metrics-url={metrics_url}",
        f"--observatory-report={report}",
        *argv,
    )
    check: dict[str, Any] = json.loads(report.read_text())["checks"][0]
    return result, check


# --- growth maths, on exact series ---------------------------------------------------------


def test_least_squares_slope_of_exact_series() -> None:
    assert slope_per_s([(0, 100), (1, 110), (2, 120)]) == pytest.approx(10.0)
    # Noise around a flat line: 0.4/s exactly (cov 2 / var 5), not last minus first (2/3 s).
    assert slope_per_s([(0, 0), (1, 2), (2, 0), (3, 2)]) == pytest.approx(0.4)
    assert slope_per_s([(5, 1)]) is None
    assert slope_per_s([(5, 1), (5, 2)]) is None  # no spread in time


def test_growth_per_hour_needs_three_samples_over_a_second() -> None:
    assert growth_per_h([(0, 0), (1, 1), (2, 2)]) == pytest.approx(3600.0)
    assert growth_per_h([(0, 0), (2, 2)]) is None
    assert growth_per_h([(0, 0), (0.2, 1), (0.4, 2)]) is None


def test_series_stays_bounded_and_spread_over_the_whole_run() -> None:
    series = Series(max_points=8)
    for i in range(10_000):
        series.add(float(i), float(i))
    times = [t for t, _ in series.points]
    assert 4 <= len(times) < 8
    assert times[0] == 0.0 and times[-1] > 5_000  # still covers the run, not its start
    steps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert len(steps) == 1  # evenly spaced after every decimation
    assert slope_per_s(series.points) == pytest.approx(1.0)


def test_too_few_samples_is_a_note_not_a_verdict() -> None:
    watch = ResourceWatch("http://gw/metrics", (MEMORY_METRIC,))
    watch.record(0.0, {MEMORY_METRIC: 1e9})
    watch.record(0.5, {MEMORY_METRIC: 9e9})
    result = with_resources(CheckResult("t", "passed"), watch, 50e6)
    assert result.verdict == "passed" and not result.reasons
    assert result.notes == [
        "max_memory_growth 50.0 MB/h not judged: 2 memory samples over 500ms (needs 3 over 1.0s)"
    ]
    assert result.resources is not None
    assert result.resources["growth_per_h"] == {MEMORY_METRIC: None}


def test_a_limit_without_a_metrics_page_is_a_note() -> None:
    result = with_resources(CheckResult("t", "passed"), None, 50e6)
    assert result.verdict == "passed" and result.resources is None
    assert result.notes == [
        "max_memory_growth 50.0 MB/h not judged: no metrics page (--deployment-metrics-url)"
    ]
    assert with_resources(CheckResult("t", "passed"), None, None).notes == []
    assert with_resources(CheckResult("t", "skipped"), None, 50e6).notes == []


def test_growth_over_the_limit_fails_a_passed_check_only() -> None:
    watch = ResourceWatch("http://gw/metrics", (MEMORY_METRIC,))
    for t in range(4):
        watch.record(float(t), {MEMORY_METRIC: 1e9 + 1e5 * t})  # 360 MB/h
    failed = with_resources(CheckResult("t", "passed"), watch, 50e6)
    assert failed.verdict == "failed"
    assert failed.reasons == [
        "memory growth 360.0 MB/h > max_memory_growth 50.0 MB/h "
        "(process_resident_memory_bytes, least squares over 4 samples)"
    ]
    assert with_resources(CheckResult("t", "interrupted"), watch, 50e6).verdict == "interrupted"
    assert with_resources(CheckResult("t", "passed"), watch, 400e6).verdict == "passed"
    assert with_resources(CheckResult("t", "passed"), watch, None).verdict == "passed"


def test_prometheus_values_summed_over_label_sets() -> None:
    text = (
        "# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes 2.5e+08\n"
        "# TYPE litellm_requests counter\n"
        'litellm_requests_total{model="a"} 3\n'
        'litellm_requests_total{model="b"} 4\n'
        'vllm:num_requests_running{engine="0"} 2\n'
        'vllm:num_requests_running{engine="1"} NaN\n'
    )
    names = (MEMORY_METRIC, "litellm_requests", "vllm:num_requests_running", "absent")
    assert parse_values(text, names) == {
        MEMORY_METRIC: 2.5e8,
        "litellm_requests": 7.0,
        "vllm:num_requests_running": 2.0,
    }
    with pytest.raises(ValueError):
        parse_values("<html><body>Sign in</body></html>", names)


# --- sizes and the mock's leak knob --------------------------------------------------------


def test_size_rates() -> None:
    assert parse_size_rate("50MB/h").per_hour == 50e6
    assert parse_size_rate("1MiB/s").per_hour == 1024**2 * 3600
    assert parse_size_rate("1.5 kB / min").per_hour == 1500 * 60
    assert parse_size_rate("4KiB/request") == SizeRate(4096, "request")
    assert parse_size_rate("4KiB/request").per_hour is None


def test_leak_knob_in_url_and_command_line_forms() -> None:
    from_url = MockSettings.from_query("leak=10MB/s")
    _, from_cli, _, _ = parse_command_line(["--leak", "10MB/s"])
    assert from_url.leak == from_cli.leak == SizeRate(10e6, "s")
    assert resident_bytes(from_url, requests=0, elapsed_s=2.0) == BASE_RESIDENT_BYTES + 20e6
    per_request = MockSettings.from_query("leak=1KiB/request")
    assert resident_bytes(per_request, requests=10, elapsed_s=99) == BASE_RESIDENT_BYTES + 10240
    assert resident_bytes(MockSettings(), requests=10, elapsed_s=99) == BASE_RESIDENT_BYTES
    with pytest.raises(ValueError, match=r"mock setting leak='10MB': expected SIZE/s"):
        MockSettings.from_query("leak=10MB")


# --- whole sessions against the mock -------------------------------------------------------


def test_leaking_mock_is_caught_with_its_rate(pytester: pytest.Pytester) -> None:
    html = pytester.path / "report.html"
    result, check = run_watched(
        pytester,
        "mock?leak=20MB/s",
        "mock",
        "--observatory-watch-metric=mock_requests",
        f"--observatory-html={html}",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*memory growth * GB/h > max_memory_growth 50.0 MB/h "
            "(process_resident_memory_bytes, least squares over * samples)*",
            "*metrics: http://127.0.0.1:*/metrics (* samples)",
            "*process_resident_memory_bytes: * MB at the end, growth +* GB/h "
            "(max_memory_growth 50.0 MB/h)",
            "*mock_requests: * at the end, growth +*/h",
        ]
    )
    resources = check["resources"]
    assert check["verdict"] == "failed"
    assert resources["max_memory_growth_per_h"] == 50e6
    assert resources["samples"] >= 5 and resources["failed_samples"] == 0
    # 20 MB/s is 72 GB/h; the mock's clock and the sampler's differ by a request's latency.
    assert resources["growth_per_h"][MEMORY_METRIC] == pytest.approx(72e9, rel=0.15)
    memory = resources["series"][MEMORY_METRIC]
    assert memory[0][0] < 0.3 and memory[-1][0] >= 3.0  # from the start to the end
    requests = resources["series"]["mock_requests"]
    assert requests[-1][1] >= check["probes"]  # counted on the mock, the last after the run
    page = html.read_text()
    assert "process_resident_memory_bytes (MB)" in page and "mock_requests (value)" in page


def test_flat_mock_passes_with_zero_growth(pytester: pytest.Pytester) -> None:
    result, check = run_watched(pytester, "mock", "/metrics")
    result.assert_outcomes(passed=1)
    resources = check["resources"]
    assert resources["growth_per_h"] == {MEMORY_METRIC: 0.0}
    assert {v for _, v in resources["series"][MEMORY_METRIC]} == {BASE_RESIDENT_BYTES}
    assert not check["notes"]


class _MetricsHandler(BaseHTTPRequestHandler):
    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[_MetricsHandler], release: threading.Event) -> Iterator[int]:
    """A loopback metrics page; ``release`` is set when the test ends. Yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def slow_metrics() -> Iterator[str]:
    """A metrics page that answers only after 30 s (or when the test ends)."""
    release = threading.Event()

    class Slow(_MetricsHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            release.wait(30)

    for port in _serve(Slow, release):
        yield f"http://127.0.0.1:{port}/metrics"


@pytest.fixture
def guarded_metrics() -> Iterator[str]:
    """A metrics page behind basic auth, reached through a redirect (/metrics -> /metrics/)."""
    expected = "Basic " + base64.b64encode(b"watcher:pw-GUARD-41c2").decode()

    class Guarded(_MetricsHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/metrics":
                self.send(307, b"", {"Location": "/metrics/"})
            elif self.headers.get("Authorization") != expected:
                self.send(401, b"unauthorized")
            else:
                self.send(200, b"process_resident_memory_bytes 1.25e+08\n")

    for port in _serve(Guarded, threading.Event()):
        yield f"http://watcher:pw-GUARD-41c2@127.0.0.1:{port}/metrics"


def test_metrics_page_behind_basic_auth_and_a_redirect(
    pytester: pytest.Pytester, guarded_metrics: str
) -> None:
    result, check = run_watched(pytester, "mock", guarded_metrics, duration="1s")
    result.assert_outcomes(passed=1)
    resources = check["resources"]
    assert resources["failed_samples"] == 0 and resources["samples"] >= 3
    assert {v for _, v in resources["series"][MEMORY_METRIC]} == {1.25e8}
    assert "pw-GUARD-41c2" not in result.stdout.str() + json.dumps(check)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("fault", ["down", "garbage", "slow"])
def test_broken_metrics_endpoint_is_a_note_not_a_failure(
    pytester: pytest.Pytester, slow_metrics: str, fault: str
) -> None:
    metrics_url = {
        "down": f"http://127.0.0.1:{closed_port()}/metrics",
        "garbage": "/health",  # the mock's JSON health answer
        "slow": slow_metrics,
    }[fault]
    problem = {
        "down": "ConnectError: *",
        "garbage": "ValueError: *",
        "slow": "no answer within 1s",
    }[fault]
    result, check = run_watched(pytester, "mock", metrics_url, duration="2s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"*note: metrics http://127.0.0.1:*: * of * samples failed (first: {problem})"]
    )
    resources = check["resources"]
    assert resources["failed_samples"] == resources["samples"] >= 2
    assert resources["series"] == {} and resources["growth_per_h"] == {}
    assert check["probes"] > 0 and check["failures"] == 0
    assert any(
        "max_memory_growth 50.0 MB/h not judged: 0 memory samples" in n for n in check["notes"]
    )


def test_metrics_url_secrets_never_shown(pytester: pytest.Pytester) -> None:
    user, password, token = "metricsuser", "pw-METRICS-5e1d", "tok-METRICS-93ab"
    url = f"http://{user}:{password}@127.0.0.1:{closed_port()}/metrics?token={token}"
    result, check = run_watched(pytester, "mock", url, duration="1s")
    result.assert_outcomes(passed=1)
    shown = result.stdout.str() + result.stderr.str() + (pytester.path / "report.json").read_text()
    for secret in (user, password, token):
        assert secret not in shown
    assert check["resources"]["url"].startswith("http://***@127.0.0.1:")
    assert check["resources"]["url"].endswith("/metrics?token=***")


# --- options (bad values: tests/test_bad_input.py) -----------------------------------------


def test_watch_metric_is_repeatable_and_has_env_and_ini_twins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nobservatory_deployment_metrics_url = mock\n")
    monkeypatch.setenv("OBSERVATORY_WATCH_METRIC", "from_env")
    pytester.makeconftest(
        """
        import pytest
        from pytest_observatory.plugin import SETTINGS_KEY

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            settings = config.stash[SETTINGS_KEY]
            print("watch:", settings.metrics_url, ",".join(settings.watch_metrics))
        """
    )
    pytester.makepyfile("def test_nothing(): pass")
    argv = ("--deployment-url=mock", "-s")
    flags = ("--observatory-watch-metric=a,b", "--observatory-watch-metric=c")
    pytester.runpytest(*argv, *flags).stdout.fnmatch_lines(["watch: mock a,b,c"])
    pytester.runpytest(*argv).stdout.fnmatch_lines(["watch: mock from_env"])
