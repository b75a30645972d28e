"""``--deployment-metrics-url``: sample the deployment's Prometheus metrics once per report
window (and at least ten times) while a check runs, into a ResourceWatch (resources.py).

The sampler is a task of its own beside the probes on the session loop, with its own client
and a short timeout, and the text is parsed in a worker thread: a metrics page of a busy
LiteLLM runs to hundreds of kilobytes, and parsing it on the loop would delay the probes it
is meant to watch. A metrics endpoint that is down, slow or answers garbage is counted and
noted, never a probe failure and never a stalled check: the deployment under test is the
gateway, not its monitoring.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .redact import redact_url
from .resources import MEMORY_METRIC, ResourceWatch
from .target import Target

if TYPE_CHECKING:
    from .marker import CheckSpec
    from .runtime import DeploymentRuntime

MOCK_METRICS = "mock"  # the embedded mock's /metrics (with --deployment-url=mock)
DEFAULT_PATH = "/metrics"
SAMPLE_TIMEOUT_BOUNDS_S = (1.0, 5.0)  # the interval, clamped to these
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PROBLEM_CHARS = 160
SAMPLES_PER_RUN = 10


def resolve_metrics_url(raw: str, target: Target) -> str:
    """'mock' and a path such as '/metrics' are relative to the deployment's root (its URL
    without /v1), so one value serves the mock, LiteLLM and vLLM alike."""
    path = DEFAULT_PATH if raw == MOCK_METRICS else raw
    if not path.startswith("/"):
        return raw
    parts = urlsplit(target.api_base)
    root = parts.path[: -len("v1/")] if parts.path.endswith("/v1/") else parts.path
    return f"{parts.scheme}://{parts.netloc}{root.rstrip('/')}{path}"


def sampler_for(runtime: DeploymentRuntime, spec: CheckSpec) -> MetricsSampler | None:
    """The check's sampler, or None without --deployment-metrics-url. The deployment's key
    goes along only to the deployment's own origin (LiteLLM may guard /metrics with it).

    Once per report window, and at least SAMPLES_PER_RUN times: a smoke run of a 3-hour suite
    (``--observatory-duration=30s``: three 10 s windows) still gets a growth figure."""
    settings = runtime.settings
    if settings.metrics_url is None:
        return None
    interval_s = min(spec.window_s, spec.duration_s / SAMPLES_PER_RUN)
    target = runtime.target
    url = resolve_metrics_url(settings.metrics_url, target)
    auth = target.auth_header(settings.api_key) if _same_origin(url, target.api_base) else None
    headers = {"Authorization": auth} if auth else {}
    return MetricsSampler(url, settings.watch_metrics, interval_s, headers, runtime.redact)


def _same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class MetricsSampler:
    """One check's sampling: every ``interval_s`` from its start, plus one at its end."""

    def __init__(
        self,
        url: str,
        names: Iterable[str],
        interval_s: float,
        headers: dict[str, str],
        redact: Callable[[str], str],
    ) -> None:
        self._url = url
        self._headers = headers
        self._redact = redact
        self._interval_s = interval_s
        low, high = SAMPLE_TIMEOUT_BOUNDS_S
        self._timeout_s = min(max(interval_s, low), high)
        self.watch = ResourceWatch(
            url=redact_url(url), names=tuple(dict.fromkeys((MEMORY_METRIC, *names)))
        )
        self._stopping = False

    async def around(self, main: Coroutine[Any, Any, None]) -> None:
        """Run ``main`` (the check) with sampling beside it. Times count from here, within a
        millisecond of the check's own start; its clock stops with the probes, this one goes
        on to the sample at the end."""
        import httpx  # with the first watched check only

        async with httpx.AsyncClient(
            headers=self._headers, timeout=self._timeout_s, follow_redirects=True
        ) as client:
            start = time.perf_counter()

            def elapsed_s() -> float:
                return time.perf_counter() - start

            sampler = asyncio.ensure_future(self._every_interval(client, elapsed_s))
            try:
                await main
            finally:
                # httpx (anyio) may turn a cancelled connect into a ConnectError: the flag,
                # not the cancellation alone, ends the sampling.
                self._stopping = True
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
            self._stopping = False
            await self._sample(client, elapsed_s)  # the figures as the check ends

    async def _every_interval(self, client: Any, elapsed_s: Callable[[], float]) -> None:
        index = 0
        while not self._stopping:
            await self._sample(client, elapsed_s)
            index = max(index + 1, math.floor(elapsed_s() / self._interval_s) + 1)
            await asyncio.sleep(max(0.0, index * self._interval_s - elapsed_s()))

    async def _sample(self, client: Any, elapsed_s: Callable[[], float]) -> None:
        t_s = elapsed_s()
        try:
            text = await asyncio.wait_for(self._fetch(client), self._timeout_s)
            values = await asyncio.to_thread(parse_values, text, self.watch.names)
        except Exception as exc:  # httpx's and the parser's errors: noted, never raised
            if self._stopping:  # a cancellation in disguise
                raise asyncio.CancelledError from None
            self.watch.fail(self._problem(exc))
        else:
            self.watch.record(round(t_s, 3), values)

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, asyncio.TimeoutError):
            return f"no answer within {self._timeout_s:g}s"
        if isinstance(exc, _Unusable) or not str(exc):
            problem = str(exc) or type(exc).__name__
        else:
            problem = f"{type(exc).__name__}: {exc}"
        return self._redact(problem)[:MAX_PROBLEM_CHARS]

    async def _fetch(self, client: Any) -> str:
        async with client.stream("GET", self._url) as response:
            if response.status_code != 200:
                raise _Unusable(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise _Unusable(f"answer over {MAX_BODY_BYTES} bytes")
        return body.decode("utf-8", errors="replace")


class _Unusable(Exception):
    """An answer that is not a metrics page (status, size, no samples at all)."""


def parse_values(text: str, names: Iterable[str]) -> dict[str, float]:
    """Each wanted name summed over its label sets (a counter also by its '_total' sample).

    Summed, not kept per label set: labels such as model or route multiply without bound over
    a long run, while the sum is what a leak or a backlog shows in.
    """
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {name: name for name in names}
    wanted.update({f"{name}_total": name for name in names if not name.endswith("_total")})
    values: dict[str, float] = {}
    seen = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            seen += 1
            name = wanted.get(sample.name)
            if name is not None and math.isfinite(sample.value):
                values[name] = values.get(name, 0.0) + sample.value
    if not seen:
        raise _Unusable("no metrics in the answer")
    return values
