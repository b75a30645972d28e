"""Load-shape arithmetic without a network or a clock: the profile (k6 stages, ramps, a sweep's
staircase), which lanes are active when, when arrival k is due, the knee rule, and which stage
the recovery stage is compared with."""

from __future__ import annotations

import math

import pytest

from pytest_observatory.load import Profile
from pytest_observatory.load.knee import find_knee, saturation
from pytest_observatory.load.report import recovery_baseline
from pytest_observatory.marker import CheckSpec, Stage

SPIKE = Profile(((2.0, 10), (5.0, 10), (1.0, 100), (2.0, 100), (1.0, 10)))


def active_lanes(profile: Profile, t: float) -> int:
    lanes = math.ceil(profile.peak)
    return sum(profile.first_time_above(lane, t) <= t for lane in range(lanes))


def test_stage_values_move_linearly_from_the_previous_target() -> None:
    assert SPIKE.duration_s == 11.0
    assert [SPIKE.value(t) for t in (0, 1, 2, 5, 7, 7.5, 8, 9, 10.5, 11, 12)] == [
        0,
        5,
        10,
        10,
        10,
        55,
        100,
        100,
        55,
        10,
        10,
    ]


@pytest.mark.parametrize("t", [0.5, 1.1, 3.0, 7.25, 7.55, 9.0, 10.2, 10.9])
def test_active_lanes_follow_the_target(t: float) -> None:
    """Lane i runs while the target exceeds i (from the moment a rising target reaches it)."""
    assert active_lanes(SPIKE, t) == math.ceil(SPIKE.value(t))


def test_a_lane_waits_for_its_turn_and_stops_for_good_when_the_target_drops() -> None:
    assert SPIKE.first_time_above(50, 0) == pytest.approx(7.0 + 40 / 90)
    assert SPIKE.first_time_above(50, 10.9) == math.inf
    ramp_down = Profile(((1.0, 4), (1.0, 0)))
    assert ramp_down.first_time_above(0, 1.99) == 1.99
    assert ramp_down.first_time_above(0, 2.0) == math.inf


def test_a_plain_ramp_staggers_lanes_as_before() -> None:
    ramp = Profile.ramp(4, 1.0, 10.0)
    assert [ramp.first_time_above(lane, 0) for lane in range(4)] == [0, 0.25, 0.5, 0.75]
    assert ramp.first_time_above(4, 0) == math.inf


def test_arrivals_follow_the_rate_profile() -> None:
    rate = Profile(((2.0, 10), (3.0, 10)))  # 0->10/s over 2 s, then 10/s
    assert rate.integral(2.0) == pytest.approx(10)
    assert rate.integral(5.0) == pytest.approx(40)
    for count in (0, 1, 5, 10, 25, 40):
        assert rate.integral(rate.time_of(count)) == pytest.approx(count)
    assert rate.time_of(41) == math.inf
    assert rate.time_of(5) == pytest.approx(math.sqrt(2))


def test_staircase_holds_each_level_for_a_step() -> None:
    stairs = Profile.staircase([1, 2, 4], 1.0)
    assert [stairs.value(t) for t in (0, 0.5, 1, 1.5, 2.5)] == [1, 1, 2, 2, 4]
    assert [active_lanes(stairs, t) for t in (0, 1.2, 2.9)] == [1, 2, 4]
    assert stairs.integral(3.0) == pytest.approx(7)


def level(value: float, throughput: float, p95: float, failure_rate: float = 0.0) -> dict:
    return {
        "level": value,
        "throughput_per_s": throughput,
        "p95_ms": p95,
        "failure_rate": failure_rate,
        "probes": 100,
    }


def test_knee_is_the_last_level_carried_in_proportion() -> None:
    levels = [level(1, 50, 20), level(2, 98, 21), level(4, 190, 22), level(8, 195, 43)]
    assert find_knee(levels, 0.01) == 2
    knee = saturation(levels, 0.01, "concurrency")
    assert knee["level"] == 4
    assert knee["line"] == (
        "saturation: concurrency 4 (190 req/s, p95 22 ms); at 8: +3% throughput, p95 +95%, "
        "0.0% failed"
    )


def test_knee_needs_both_flat_throughput_and_rising_latency() -> None:
    # throughput flat but latency flat too: a client-side limit, not the deployment's knee
    assert find_knee([level(1, 50, 20), level(2, 52, 21)], 0.01) is None
    # latency up but throughput still in proportion: not saturated yet
    assert find_knee([level(1, 50, 20), level(2, 100, 30)], 0.01) is None
    assert saturation([level(1, 50, 20), level(2, 100, 30)], 0.01, "rate")["line"] == (
        "saturation: not reached up to rate 2"
    )


def test_errors_mark_the_knee_too() -> None:
    levels = [level(1, 50, 20), level(2, 100, 20), level(4, 200, 20, failure_rate=0.05)]
    assert find_knee(levels, 0.01) == 1


def spec_with(*targets: float) -> CheckSpec:
    return CheckSpec(duration_s=len(targets), stages=tuple(Stage(1.0, t) for t in targets))


def test_recovery_is_compared_with_the_hold_before_the_spike() -> None:
    assert recovery_baseline(spec_with(10, 10, 100, 100, 10)) == 1
    assert recovery_baseline(spec_with(10, 100, 10)) == 0
    assert recovery_baseline(spec_with(5, 20, 100, 10)) == 0
    assert recovery_baseline(spec_with(10)) is None


def test_no_arrival_while_the_rate_is_zero() -> None:
    paused = Profile(((1.0, 0), (1.0, 10)))  # a pause, then a ramp to 10/s
    assert paused.time_of(0) == 1.0
    assert paused.time_of(5) == pytest.approx(2.0)
    assert paused.time_of(6) == math.inf
