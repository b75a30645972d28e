"""The ``observatory`` marker: parsed strictly, once, into a frozen CheckSpec.

Like pytest-timeout's ``_parse_marker``, positional and unknown arguments are errors: a typo in a
threshold must never silently fall back to a default during a 3-hour run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from .durations import parse_duration
from .options import ON_DUPLICATE_CHOICES, Settings
from .sizes import PER_SECONDS, parse_size_rate

MARKER_NAME = "observatory"
MARKER_HELP = (
    "observatory(*, duration, max_failure_rate=0.01, models=None, concurrency=1, interval=None, "
    "request_timeout='60s', probes=None, rate=None, arrival='constant', ramp=None, window=None, "
    "max_window_failure_rate=None, max_p95_latency=None, max_p99_latency=None, "
    "max_ttft_p95=None, max_itl_p95=None, fail_fast=None, on_duplicate=None, stages=None, "
    "sweep=None, step=None, "
    "load='concurrency', stop_on_saturation=False, max_recovery_p95_ratio=None, "
    "max_memory_growth=None, validate=False): run the test body as a probe again and again "
    "for `duration`, keeping `concurrency` probes in flight (or starting `rate` per second), "
    "and judge the run."
)
MAX_CONCURRENCY = 4096
MAX_RATE = 100_000.0
OPEN_LOOP_IN_FLIGHT = 1024
WINDOWS_PER_RUN = 60
WINDOW_BOUNDS_S = (10.0, 600.0)
ARRIVALS = ("constant", "poisson")
LOADS = ("concurrency", "rate")
STAGE_LIMITS = ("max_failure_rate", "max_p95_latency")


@dataclass(frozen=True)
class Stage:
    """One of ``stages``: move the load linearly to ``target`` over ``duration_s`` (k6), with
    optional thresholds of its own."""

    duration_s: float
    target: float
    max_failure_rate: float | None = None
    max_p95_latency_s: float | None = None


class MarkerError(ValueError):
    """A bad marker argument; its message names the argument and the value."""


@dataclass(frozen=True)
class CheckSpec:
    """A check's settings. With ``rate`` the engine runs an open loop and ``concurrency`` caps
    the probes in flight; without it, ``concurrency`` lanes run back to back (closed loop)."""

    duration_s: float
    max_failure_rate: float = 0.01
    models: tuple[str, ...] = ()
    concurrency: int = 1
    interval_s: float = 0.0
    request_timeout_s: float = 60.0
    max_probes: int | None = None
    rate: float | None = None
    arrival: str = "constant"
    ramp_s: float = 0.0
    window_s: float = WINDOW_BOUNDS_S[0]
    max_window_failure_rate: float | None = None
    max_p95_latency_s: float | None = None
    max_p99_latency_s: float | None = None
    max_ttft_p95_s: float | None = None
    max_itl_p95_s: float | None = None  # the gaps between streamed tokens
    fail_fast: bool = False
    on_duplicate: str | None = None  # None: the session's --observatory-on-duplicate
    stages: tuple[Stage, ...] = ()
    sweep: tuple[float, ...] = ()
    step_s: float = 0.0
    load: str = "concurrency"  # what stages' targets and sweep levels count
    stop_on_saturation: bool = False
    max_recovery_p95_ratio: float | None = None
    max_memory_growth_per_h: float | None = None  # bytes per hour (--deployment-metrics-url)
    validate: bool = False  # the deployment helpers check answers against the API contract

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or self.load == "rate"


def default_window_s(duration_s: float) -> float:
    """One sixtieth of the run, clamped to [10 s, 10 min]."""
    low, high = WINDOW_BOUNDS_S
    return min(max(duration_s / WINDOWS_PER_RUN, low), high)


def parse_marker(mark: pytest.Mark, settings: Settings) -> CheckSpec:
    """Build the spec from the marker, with session settings filling models and duration."""
    if mark.args:
        raise MarkerError(f"takes keyword arguments only, got positional {mark.args!r}")
    kwargs = dict(mark.kwargs)
    unknown = sorted(set(kwargs) - _KNOWN)
    if unknown:
        raise MarkerError(
            f"unknown argument {unknown[0]}={kwargs[unknown[0]]!r} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    shaped = _load_shape(kwargs, settings)
    if shaped is not None:
        kwargs["duration"] = shaped.duration_s
    if "duration" not in kwargs:
        raise MarkerError("missing required argument duration (e.g. duration='30m')")
    duration = _positive_duration(kwargs, "duration")
    if settings.duration_override_s is not None:
        duration = settings.duration_override_s
    models = _models(kwargs.get("models")) or settings.models
    rate = _rate(kwargs.get("rate"))
    arrival = kwargs.get("arrival", "constant")
    if arrival not in ARRIVALS:
        raise MarkerError(f"arrival={arrival!r}: expected one of {', '.join(ARRIVALS)}")
    if arrival != "constant" and rate is None and kwargs.get("load") != "rate":
        raise MarkerError(f"arrival={arrival!r}: needs rate= (probes per second)")
    ramp = _duration(kwargs, "ramp", 0.0)
    if ramp > duration:
        raise MarkerError(f"ramp={kwargs['ramp']!r}: longer than the duration")
    open_loop = rate is not None or kwargs.get("load") == "rate"
    default_concurrency = OPEN_LOOP_IN_FLIGHT if open_loop else 1
    if shaped is not None and not open_loop:
        default_concurrency = max(1, math.ceil(shaped.peak))
    window = kwargs.get("window")
    max_window_rate = kwargs.get("max_window_failure_rate")
    return CheckSpec(
        duration_s=duration,
        max_failure_rate=_failure_rate("max_failure_rate", kwargs.get("max_failure_rate", 0.01)),
        models=models,
        concurrency=_bounded_int(kwargs, "concurrency", default_concurrency, 1, MAX_CONCURRENCY),
        interval_s=_duration(kwargs, "interval", 0.0),
        request_timeout_s=_positive_duration(kwargs, "request_timeout", "60s"),
        max_probes=(
            None if kwargs.get("probes") is None else _bounded_int(kwargs, "probes", 1, 1, 2**62)
        ),
        rate=rate,
        arrival=arrival,
        ramp_s=ramp,
        window_s=(
            default_window_s(duration) if window is None else _positive_duration(kwargs, "window")
        ),
        max_window_failure_rate=(
            None
            if max_window_rate is None
            else _failure_rate("max_window_failure_rate", max_window_rate)
        ),
        max_p95_latency_s=_optional_limit(kwargs, "max_p95_latency"),
        max_p99_latency_s=_optional_limit(kwargs, "max_p99_latency"),
        max_ttft_p95_s=_optional_limit(kwargs, "max_ttft_p95"),
        max_itl_p95_s=_optional_limit(kwargs, "max_itl_p95"),
        fail_fast=_fail_fast(kwargs.get("fail_fast"), settings.fail_fast),
        on_duplicate=_on_duplicate(kwargs.get("on_duplicate")),
        max_memory_growth_per_h=_memory_growth(kwargs.get("max_memory_growth")),
        validate=_validate(kwargs.get("validate", False)),
        **({} if shaped is None else shaped.fields),
    )


_KNOWN = frozenset(
    {
        "duration",
        "max_failure_rate",
        "models",
        "concurrency",
        "interval",
        "request_timeout",
        "probes",
        "rate",
        "arrival",
        "ramp",
        "window",
        "max_window_failure_rate",
        "max_p95_latency",
        "max_p99_latency",
        "max_ttft_p95",
        "max_itl_p95",
        "fail_fast",
        "on_duplicate",
        "stages",
        "sweep",
        "step",
        "load",
        "stop_on_saturation",
        "max_recovery_p95_ratio",
        "max_memory_growth",
        "validate",
    }
)


@dataclass(frozen=True)
class _Shaped:
    """Stages or a sweep, parsed: the spec fields they set and the duration they imply."""

    duration_s: float
    peak: float
    fields: dict[str, Any]


def _load_shape(kwargs: dict[str, Any], settings: Settings) -> _Shaped | None:
    """``stages`` or ``sweep`` (with ``step``), and the arguments that go with them. The
    check lasts as long as the stages or the sweep; a ``duration`` that says otherwise is an
    error, and ``--observatory-duration`` scales every stage (or the step) to fit."""
    stages_arg, sweep_arg = kwargs.get("stages"), kwargs.get("sweep")
    load = kwargs.get("load", "concurrency")
    if load not in LOADS:
        raise MarkerError(f"load={load!r}: expected one of {', '.join(LOADS)}")
    if stages_arg is None and sweep_arg is None:
        for name in ("step", "stop_on_saturation", "max_recovery_p95_ratio", "load"):
            if kwargs.get(name) is not None:
                raise MarkerError(f"{name}={kwargs[name]!r}: needs stages= or sweep=")
        return None
    if stages_arg is not None and sweep_arg is not None:
        raise MarkerError(f"sweep={sweep_arg!r}: stages= and sweep= exclude each other")
    for name in ("ramp", "rate") + (("concurrency",) if load == "concurrency" else ()):
        if kwargs.get(name) is not None:
            what = "stages" if stages_arg is not None else "sweep"
            raise MarkerError(
                f"{name}={kwargs[name]!r}: {what}= set the load (load='rate' for rates)"
            )
    high = MAX_CONCURRENCY if load == "concurrency" else MAX_RATE
    if stages_arg is not None:
        stages = _stages(stages_arg, high)
        total = sum(stage.duration_s for stage in stages)
        scale = _scale(kwargs, "stages", stages_arg, total, settings)
        stages = tuple(
            Stage(s.duration_s * scale, s.target, s.max_failure_rate, s.max_p95_latency_s)
            for s in stages
        )
        ratio = kwargs.get("max_recovery_p95_ratio")
        if ratio is not None and (
            isinstance(ratio, bool)
            or not isinstance(ratio, (int, float))
            or not (math.isfinite(ratio) and ratio >= 1)
        ):
            raise MarkerError(f"max_recovery_p95_ratio={ratio!r}: expected a number >= 1")
        if ratio is not None and len(stages) < 2:
            raise MarkerError(f"max_recovery_p95_ratio={ratio!r}: needs two stages or more")
        if kwargs.get("step") is not None or kwargs.get("stop_on_saturation") is not None:
            name = "step" if kwargs.get("step") is not None else "stop_on_saturation"
            raise MarkerError(f"{name}={kwargs[name]!r}: goes with sweep=, not stages=")
        return _Shaped(
            total * scale,
            max(s.target for s in stages),
            {
                "stages": stages,
                "load": load,
                "max_recovery_p95_ratio": None if ratio is None else float(ratio),
            },
        )
    levels = _levels(sweep_arg, high, load)
    if kwargs.get("step") is None:
        raise MarkerError(f"sweep={sweep_arg!r}: needs step= (how long each level is held)")
    step = _positive_duration(kwargs, "step")
    stop = kwargs.get("stop_on_saturation", False)
    if not isinstance(stop, bool):
        raise MarkerError(f"stop_on_saturation={stop!r}: expected True or False")
    if kwargs.get("max_recovery_p95_ratio") is not None:
        value = kwargs["max_recovery_p95_ratio"]
        raise MarkerError(f"max_recovery_p95_ratio={value!r}: goes with stages=, not sweep=")
    step *= _scale(kwargs, "sweep", sweep_arg, step * len(levels), settings)
    return _Shaped(
        step * len(levels),
        max(levels),
        {"sweep": levels, "step_s": step, "load": load, "stop_on_saturation": stop},
    )


def _scale(
    kwargs: dict[str, Any], name: str, value: object, total_s: float, settings: Settings
) -> float:
    if kwargs.get("duration") is not None:
        duration = _positive_duration(kwargs, "duration")
        if abs(duration - total_s) > 1e-6:
            raise MarkerError(
                f"duration={kwargs['duration']!r}: {name}={value!r} last {total_s:g}s; "
                "give one or the other (or the same)"
            )
    if settings.duration_override_s is None:
        return 1.0
    return settings.duration_override_s / total_s


def _stages(value: object, high: float) -> tuple[Stage, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise MarkerError(f"stages={value!r}: expected a list of (duration, target) pairs")
    stages = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
            raise MarkerError(
                f"stages={value!r}: stage {item!r} is not (duration, target) "
                "or (duration, target, {limits})"
            )
        try:
            seconds = parse_duration(item[0])
        except ValueError as exc:
            raise MarkerError(f"stages={value!r}: stage {item!r}: {exc}") from None
        target = item[1]
        if (
            isinstance(target, bool)
            or not isinstance(target, (int, float))
            or not (math.isfinite(target) and 0 <= target <= high)
        ):
            raise MarkerError(
                f"stages={value!r}: stage {item!r}: target must be a number in [0, {high:g}]"
            )
        limits = item[2] if len(item) == 3 else {}
        if not isinstance(limits, dict) or set(limits) - set(STAGE_LIMITS):
            raise MarkerError(
                f"stages={value!r}: stage {item!r}: limits must be a dict of "
                f"{', '.join(STAGE_LIMITS)}"
            )
        stage_rate = limits.get("max_failure_rate")
        stages.append(
            Stage(
                seconds,
                float(target),
                None if stage_rate is None else _failure_rate("max_failure_rate", stage_rate),
                _optional_limit(limits, "max_p95_latency"),
            )
        )
    if sum(s.duration_s for s in stages) <= 0 or max(s.target for s in stages) <= 0:
        raise MarkerError(f"stages={value!r}: no load (every duration or every target is 0)")
    return tuple(stages)


def _levels(value: object, high: float, load: str) -> tuple[float, ...]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) < 2
        or not all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v <= high for v in value
        )
    ):
        raise MarkerError(f"sweep={value!r}: expected two or more {load} levels in (0, {high:g}]")
    if load == "concurrency" and not all(isinstance(v, int) for v in value):
        raise MarkerError(f"sweep={value!r}: concurrency levels are whole numbers")
    if any(b <= a for a, b in zip(value, value[1:], strict=False)):
        raise MarkerError(f"sweep={value!r}: levels must increase")
    return tuple(float(v) for v in value)


def _duration(kwargs: dict[str, Any], name: str, default: object) -> float:
    value = kwargs.get(name)
    try:
        return parse_duration(default if value is None else value)
    except ValueError as exc:
        raise MarkerError(f"{name}={value!r}: {exc}") from None


def _positive_duration(kwargs: dict[str, Any], name: str, default: object = None) -> float:
    seconds = _duration(kwargs, name, default)
    if seconds <= 0:
        raise MarkerError(f"{name}={kwargs.get(name)!r}: must be > 0")
    return seconds


def _failure_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarkerError(f"{name}={value!r}: expected a number in [0, 1)")
    if not (math.isfinite(value) and 0 <= value < 1):
        raise MarkerError(f"{name}={value!r}: must be in [0, 1)")
    return float(value)


def _rate(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarkerError(f"rate={value!r}: expected probes per second, a number > 0")
    if not (math.isfinite(value) and 0 < value <= MAX_RATE):
        raise MarkerError(f"rate={value!r}: must be > 0 and <= {MAX_RATE:g}")
    return float(value)


def _optional_limit(kwargs: dict[str, Any], name: str) -> float | None:
    return None if kwargs.get(name) is None else _positive_duration(kwargs, name)


def _fail_fast(value: object, session: bool) -> bool:
    """The marker's True or False wins over the session's --observatory-fail-fast."""
    if value is None:
        return session
    if not isinstance(value, bool):
        raise MarkerError(f"fail_fast={value!r}: expected True or False")
    return value


def _validate(value: object) -> bool:
    if not isinstance(value, bool):
        raise MarkerError(f"validate={value!r}: expected True or False")
    return value


def _bounded_int(kwargs: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = kwargs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MarkerError(f"{name}={value!r}: expected an integer >= {low}")
    if not low <= value <= high:
        raise MarkerError(f"{name}={value!r}: must be between {low} and {high}")
    return value


def _on_duplicate(value: object) -> str | None:
    if value is not None and value not in ON_DUPLICATE_CHOICES:
        raise MarkerError(
            f"on_duplicate={value!r}: expected one of {', '.join(ON_DUPLICATE_CHOICES)}"
        )
    return value


def _memory_growth(value: object) -> float | None:
    """'50MB/h' (or /min, /s) to bytes per hour; 0 allows no growth at all."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MarkerError(f"max_memory_growth={value!r}: expected a size per hour such as '50MB/h'")
    try:
        per_hour = parse_size_rate(value, tuple(PER_SECONDS)).per_hour
    except ValueError as exc:
        raise MarkerError(f"max_memory_growth={value!r}: {exc}") from None
    assert per_hour is not None  # a rate per time unit
    return per_hour


def _models(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise MarkerError(f"models={value!r}: expected a list of model names or 'a,b'")
    models = tuple(n.strip() for n in names if n.strip())
    if not models:
        raise MarkerError(f"models={value!r}: no model names")
    return models
