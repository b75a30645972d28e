"""Compare a check with an earlier run of it, and fail it when it regressed beyond the limits.

The comparison is a threshold like ``max_failure_rate``: it is applied where the verdict is made
(in the process that ran the check, xdist worker or not), so a regression fails the check's own
test, shows in its reasons and makes pytest's exit status non-zero. Baselines are read once per
process when the session starts, before this session has written anything to the history.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from ..durations import parse_duration
from ..result import JSON, CheckResult

LAST = "last"
# Limit name -> the figure it bounds (the same names are the history's columns).
LIMIT_FIGURES = {
    "failure_rate": "failure_rate",
    "p50": "p50_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "ttft_p95": "ttft_p95_ms",
}
FIGURES = tuple(LIMIT_FIGURES.values())
_NUMBER = r"\+?(\d+(?:\.\d+)?)"


def figures(result: CheckResult) -> dict[str, float | None]:
    """The figures a run is compared on, as stored in the history's columns."""
    latency = result.latency_ms or {}
    ttft = result.ttft_ms or {}
    return {
        "failure_rate": result.failure_rate if result.probes else None,
        "p50_ms": latency.get("p50"),
        "p95_ms": latency.get("p95"),
        "p99_ms": latency.get("p99"),
        "ttft_p95_ms": ttft.get("p95"),
    }


def models_key(result: CheckResult) -> str:
    """A check is the same check when its node id and its models are the same."""
    return ",".join(sorted(result.models))


@dataclass(frozen=True)
class RegressionLimit:
    """How much worse than the baseline a figure may get: relative (``0.2`` for 20%) or absolute
    (milliseconds for latencies, a rate difference for ``failure_rate``)."""

    name: str
    relative: float | None = None
    absolute: float | None = None
    text: str = ""

    def exceeded(self, baseline: float, current: float) -> bool:
        if self.absolute is not None:
            return current - baseline > self.absolute
        assert self.relative is not None
        if baseline <= 0:
            return current > 0
        return (current - baseline) / baseline > self.relative


def parse_max_regression(text: str) -> tuple[RegressionLimit, ...]:
    """``"p95=20%,failure_rate=+0.5pp,p99=+200ms"``; raises ValueError with a message to show."""
    limits: dict[str, RegressionLimit] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, sep, value = (item.strip() for item in part.partition("="))
        if not sep or name not in LIMIT_FIGURES:
            raise ValueError(
                f"{part!r}: expected METRIC=LIMIT with METRIC one of {', '.join(LIMIT_FIGURES)}"
            )
        if name in limits:
            raise ValueError(f"{part!r}: {name} is limited twice")
        limits[name] = _parse_limit(name, value, part)
    if not limits:
        raise ValueError("no limits in the list")
    return tuple(limits.values())


def _parse_limit(name: str, value: str, part: str) -> RegressionLimit:
    if name == "failure_rate":
        match = re.fullmatch(_NUMBER + "pp", value)
        if match is None:
            raise ValueError(
                f"{part!r}: failure_rate takes percentage points, e.g. failure_rate=+0.5pp"
            )
        return RegressionLimit(name, absolute=float(match[1]) / 100, text=f"+{match[1]}pp")
    match = re.fullmatch(_NUMBER + "%", value)
    if match is not None:
        return RegressionLimit(name, relative=float(match[1]) / 100, text=f"+{match[1]}%")
    try:
        seconds = parse_duration(value.removeprefix("+"))
    except ValueError:
        raise ValueError(
            f"{part!r}: expected a relative increase such as {name}=20% "
            f"or an absolute one such as {name}=+50ms"
        ) from None
    return RegressionLimit(name, absolute=seconds * 1000, text="+" + value.removeprefix("+"))


@dataclass(frozen=True)
class BaselineRun:
    """One earlier run of a check, as read from the history."""

    run_id: str
    label: str | None
    started_at: str | None
    verdict: str
    figures: Mapping[str, float | None]


COMPARISON_KEY = pytest.StashKey["Comparison"]()


class Comparison:
    """The session's baseline (a label or ``last``), its runs per check, and the limits."""

    def __init__(
        self,
        ref: str,
        baselines: Mapping[tuple[str, str], BaselineRun],
        limits: tuple[RegressionLimit, ...] = (),
    ) -> None:
        self.ref = ref
        self._baselines = baselines
        self._limits = limits

    def apply(self, result: CheckResult) -> CheckResult:
        """The result with its ``baseline`` deltas; failed, with reasons, when it regressed.
        Interrupted and skipped checks are not compared: their figures are not a full run."""
        if result.verdict not in ("passed", "failed"):
            return result
        base = self._baselines.get((result.nodeid, models_key(result)))
        if base is None:
            wanted = "last passed run" if self.ref == LAST else f"run labelled {self.ref!r}"
            return dataclasses.replace(
                result,
                baseline={
                    "ref": self.ref,
                    "found": False,
                    "summary": f"no baseline: no {wanted} of this check with the same models",
                },
            )
        current = figures(result)
        deltas: JSON = {}
        changes: list[str] = []
        for name in FIGURES:
            before, now = base.figures.get(name), current[name]
            if before is None or now is None:
                continue
            delta = now - before
            change = delta / before if before else None
            deltas[name] = {
                "baseline": before,
                "current": now,
                "delta": round(delta, 6),
                "change": None if change is None else round(change, 6),
            }
            changes.append(f"{_short(name)} {_delta_text(name, before, now)}")
        regressions = []
        for limit in self._limits:
            name = LIMIT_FIGURES[limit.name]
            before, now = base.figures.get(name), current[name]
            if before is not None and now is not None and limit.exceeded(before, now):
                regressions.append(
                    f"regression vs baseline: {limit.name} {_delta_text(name, before, now)} "
                    f"> max {limit.text}"
                )
        label = f" {base.label!r}" if base.label else ""
        summary = f"vs run {base.run_id}{label} of {base.started_at or '?'}: " + (
            ", ".join(changes) or "no figure to compare"
        )
        return dataclasses.replace(
            result,
            verdict="failed" if regressions else result.verdict,
            reasons=[*result.reasons, *regressions],
            baseline={
                "ref": self.ref,
                "found": True,
                "run_id": base.run_id,
                "label": base.label,
                "started_at": base.started_at,
                "deltas": deltas,
                "regressions": regressions,
                "summary": summary,
            },
        )


def _short(figure: str) -> str:
    return figure.removesuffix("_ms").replace("_", " ")


def _delta_text(figure: str, before: float, now: float) -> str:
    """'1.2 -> 51.3ms (+4175.0%)' or '0.10% -> 1.20% (+1.10pp)'."""
    if figure == "failure_rate":
        return f"{before:.2%} -> {now:.2%} ({(now - before) * 100:+.2f}pp)"
    relative = f" ({(now - before) / before:+.1%})" if before else ""
    return f"{before:.1f} -> {now:.1f}ms{relative}"
