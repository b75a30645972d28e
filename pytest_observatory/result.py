"""CheckResult: the plain-data outcome of one check, the only thing reporters ever read.

Built-in types only, so it crosses from an xdist worker to the controller on a test report and
lands in JSON unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["passed", "failed", "interrupted", "skipped"]
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class LatencySummary:
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ModelSummary:
    probes: int
    failures: int
    failure_rate: float
    latency_ms: LatencySummary = field(default_factory=LatencySummary)


@dataclass(frozen=True)
class FirstFailure:
    t_s: float
    model: str | None
    error: str


@dataclass(frozen=True)
class CheckResult:
    nodeid: str
    verdict: Verdict
    duration_s: float = 0.0
    probes: int = 0
    failures: int = 0
    failure_rate: float = 0.0
    max_failure_rate: float | None = None
    errors: Mapping[str, int] = field(default_factory=dict)
    error_categories: Mapping[str, int] = field(default_factory=dict)
    first_failure: FirstFailure | None = None
    latency_ms: LatencySummary = field(default_factory=LatencySummary)
    models: Mapping[str, ModelSummary] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        first = data.get("first_failure")
        return cls(
            nodeid=data["nodeid"],
            verdict=data["verdict"],
            duration_s=data["duration_s"],
            probes=data["probes"],
            failures=data["failures"],
            failure_rate=data["failure_rate"],
            max_failure_rate=data["max_failure_rate"],
            errors=dict(data["errors"]),
            error_categories=dict(data["error_categories"]),
            first_failure=FirstFailure(**first) if first else None,
            latency_ms=LatencySummary(**data["latency_ms"]),
            models={
                name: ModelSummary(
                    probes=m["probes"],
                    failures=m["failures"],
                    failure_rate=m["failure_rate"],
                    latency_ms=LatencySummary(**m["latency_ms"]),
                )
                for name, m in data["models"].items()
            },
            reasons=tuple(data.get("reasons", ())),
        )
