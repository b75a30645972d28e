"""The mock's ``/metrics`` page (Prometheus text), with a memory leak on demand.

The memory figure is simulated, not the process's own: the mock runs inside the pytest process
(``--deployment-url=mock``), whose resident memory moves with whatever pytest does, so a
"flat" mock would not be flat. ``leak=4KiB/request`` or ``leak=10MB/s`` makes it grow at an
exact rate without allocating anything, which is what a test of the memory watch needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..sizes import PER_REQUEST
from .settings import MockSettings

BASE_RESIDENT_BYTES = 256 * 1024**2  # a plausible gateway process at rest
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def resident_bytes(settings: MockSettings, requests: int, elapsed_s: float) -> float:
    """The simulated resident memory after ``requests`` requests and ``elapsed_s`` seconds."""
    leak = settings.leak
    if leak is None:
        return BASE_RESIDENT_BYTES
    if leak.per == PER_REQUEST:
        return BASE_RESIDENT_BYTES + leak.size * requests
    per_hour = leak.per_hour or 0.0
    return BASE_RESIDENT_BYTES + per_hour * elapsed_s / 3600


def metrics_page(settings: MockSettings, requests: int, elapsed_s: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(resident_bytes(settings, requests, elapsed_s), requests))
    return generate_latest(registry)


class _Figures(Collector):
    def __init__(self, resident: float, requests: int) -> None:
        self._resident = resident
        self._requests = requests

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory size in bytes (simulated by the mock; see its leak knob).",
            value=self._resident,
        )
        yield CounterMetricFamily(
            "mock_requests", "Requests the mock gateway received.", value=self._requests
        )
