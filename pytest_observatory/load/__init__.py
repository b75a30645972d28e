"""Load shapes: how a check's probes are started over time (STYLE.md, item 3). One module per
shape, all driven by a piecewise-linear profile (profile.py): closed lanes (lanes.py), open
arrivals (arrivals.py), stages (stages.py) and sweeps (sweep.py) with their knee (knee.py)."""

from __future__ import annotations

from ..marker import CheckSpec
from ..stats import Phase
from .arrivals import OpenArrivals
from .lanes import ClosedLanes
from .profile import Profile
from .protocol import Driver, LoadShape
from .stages import Stages
from .sweep import Sweep

__all__ = ["Driver", "LoadShape", "Profile", "shape_for"]

STAGGER_S = 1.0


def shape_for(spec: CheckSpec) -> tuple[LoadShape, list[Phase]]:
    """The spec's shape and the recorder phases it reports rows for (none for a plain check)."""
    if spec.sweep:
        profile = Profile.staircase(spec.sweep, spec.step_s)
    elif spec.stages:
        profile = Profile(tuple((stage.duration_s, stage.target) for stage in spec.stages))
    elif spec.rate is not None:
        profile = Profile.ramp(spec.rate, spec.ramp_s, spec.duration_s)
    else:
        # Without a ramp, lane starts are spread over a second (a tenth of a shorter check).
        spread_s = spec.ramp_s or min(STAGGER_S, spec.duration_s / 10)
        profile = Profile.ramp(spec.concurrency, spread_s, spec.duration_s)
    driver: LoadShape = (
        OpenArrivals(profile, spec.arrival, spec.concurrency)
        if spec.open_loop
        else ClosedLanes(profile, spec.interval_s)
    )
    if spec.sweep:
        sweep = Sweep(
            spec.sweep, spec.step_s, driver, spec.stop_on_saturation, spec.max_failure_rate
        )
        return sweep, sweep.phases()
    if spec.stages:
        stages = Stages(profile, driver)
        return stages, stages.phases()
    return driver, []
