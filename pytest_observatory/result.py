"""CheckResult: the plain-data outcome of one check, the only thing reporters ever read.

Built-in types only (nested parts are dicts and lists, as they appear in the JSON report), so it
crosses from an xdist worker to the controller on a test report and lands in JSON unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

# crashed: the xdist worker running the check died; the controller reports what it knew.
Verdict = Literal["passed", "failed", "interrupted", "skipped", "crashed"]
JSON = dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    nodeid: str
    verdict: Verdict
    duration_s: float = 0.0
    probes: int = 0
    failures: int = 0
    failure_rate: float = 0.0
    max_failure_rate: float | None = None
    errors: JSON = field(default_factory=dict)
    error_categories: JSON = field(default_factory=dict)
    first_failure: JSON | None = None
    latency_ms: JSON = field(default_factory=dict)
    models: JSON = field(default_factory=dict)
    windows: list[JSON] = field(default_factory=list)
    onset: JSON | None = None
    http: JSON | None = None
    ttft_ms: JSON | None = None
    itl_ms: JSON | None = None
    tpot_ms: JSON | None = None
    tokens_per_s: JSON | None = None
    streams: JSON | None = None
    load: JSON = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    queued_s: float = 0.0  # waited for a duplicate or a slot before the run; not in duration_s
    started_at: str | None = None  # wall clock, ISO 8601 UTC (utc_iso); None when never run
    ended_at: str | None = None
    baseline: JSON | None = None  # deltas against --observatory-baseline (history/compare.py)
    stopped_early: JSON | None = None  # fail-fast: reason, t_s, probes, failures
    stages: list[JSON] | None = None  # one row per stage (load/rows.py)
    sweep: JSON | None = None  # levels (rows) and knee (load/knee.py)
    failure_samples: list[JSON] | None = None  # a few failures with request ids (tracing.py)
    tokens: JSON | None = None  # prompt/completion tokens, total and per model (usage.py)

    def to_dict(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def utc_iso(epoch_s: float | None = None) -> str:
    """Wall-clock time as ISO 8601 UTC with milliseconds, e.g. '2026-11-26T05:10:03.125Z'."""
    moment = (
        datetime.now(timezone.utc)
        if epoch_s is None
        else datetime.fromtimestamp(epoch_s, timezone.utc)
    )
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
