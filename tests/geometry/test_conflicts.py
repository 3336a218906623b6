"""Exact closest approach and conflict checks between piecewise-linear motions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapl_robotics.errors import InvalidCoordinateError
from mapl_robotics.geometry import (Trajectory, closest_approach, conflicting_ids,
                                    find_conflict)
from mapl_robotics.geometry.conflicts import separation_profile


def line(t0, x0, y0, t1, x1, y1) -> Trajectory:
    return Trajectory.from_samples([(t0, x0, y0, 0.0), (t1, x1, y1, 0.0)])


def test_head_on_crossing():
    a = line(0, 0, 0, 2, 2, 0)
    b = line(0, 2, 0, 2, 0, 0)
    approach = closest_approach(a, b)
    assert approach.distance_m == pytest.approx(0.0)
    assert approach.time_s == pytest.approx(1.0)


def test_crossing_between_samples_is_found():
    # The paths cross at t = 0.5, between the only samples at t = 0 and t = 1.
    a = line(0, -1, 0, 1, 1, 0)
    b = line(0, 0, -1, 1, 0, 1)
    assert closest_approach(a, b).distance_m == pytest.approx(0.0)
    conflict = find_conflict(a, 0.3, b, 0.3)
    assert conflict is not None
    assert conflict.time_s == pytest.approx(0.5)
    assert conflict.required_m == pytest.approx(0.6)
    assert conflict.penetration_m == pytest.approx(0.6)


def test_parallel_lanes_keep_distance():
    a = line(0, 0, 0, 10, 10, 0)
    b = line(0, 0, 1, 10, 10, 1)
    assert closest_approach(a, b).distance_m == pytest.approx(1.0)
    assert find_conflict(a, 0.3, b, 0.3, clearance_m=0.3) is None
    assert find_conflict(a, 0.3, b, 0.3, clearance_m=0.5) is not None


def test_parked_robot_keeps_occupying_goal():
    parked = Trajectory.from_samples([(0.0, 5.0, 0.0, 0.0)])
    passer = line(10, 0, 0, 20, 10, 0)
    approach = closest_approach(parked, passer)
    assert approach.distance_m == pytest.approx(0.0)
    assert approach.time_s == pytest.approx(15.0)


def test_robot_waits_at_start_before_its_span():
    late = line(10, 0, 0, 11, 1, 0)
    crosser = line(0, 0, -1, 2, 0, 1)
    # Before t = 10 the late robot waits at its start, where the crosser passes at t = 1.
    assert closest_approach(late, crosser).distance_m == pytest.approx(0.0)
    assert closest_approach(late, crosser).time_s == pytest.approx(1.0)


def test_window_limits_the_check():
    a = line(0, -1, 0, 1, 1, 0)
    b = line(0, 0, -1, 1, 0, 1)
    outside = closest_approach(a, b, t_start_s=0.8, t_end_s=1.0)
    assert outside.time_s == pytest.approx(0.8)
    assert outside.distance_m == pytest.approx(math.hypot(0.6, 0.6))


def test_conflicting_ids_sorted():
    candidate = line(0, 0, 0, 10, 10, 0)
    others = {
        'r2': (line(0, 5, -5, 10, 5, 5), 0.3),
        'r1': (line(0, 0, 0.5, 10, 10, 0.5), 0.3),
        'r3': (line(0, 0, 5, 10, 10, 5), 0.3),
    }
    assert conflicting_ids(candidate, 0.3, others) == ['r1', 'r2']
    assert conflicting_ids(candidate, 0.1, others, clearance_m=0.0) == ['r2']


BAD_LENGTHS = [math.nan, -1.0, -1e-9, math.inf, '0.3', None, True]


@pytest.mark.parametrize('value', BAD_LENGTHS)
def test_find_conflict_rejects_bad_radius_or_clearance(value):
    # Two identical motions: any check that returned None here would pass a collision.
    same = line(0, 0, 0, 1, 1, 0)
    with pytest.raises(InvalidCoordinateError, match='radius_a_m'):
        find_conflict(same, value, same, 0.3)
    with pytest.raises(InvalidCoordinateError, match='radius_b_m'):
        find_conflict(same, 0.3, same, value)
    with pytest.raises(InvalidCoordinateError, match='clearance_m'):
        find_conflict(same, 0.3, same, 0.3, clearance_m=value)


@pytest.mark.parametrize('value', BAD_LENGTHS)
def test_conflicting_ids_rejects_bad_radius_or_clearance(value):
    same = line(0, 0, 0, 1, 1, 0)
    with pytest.raises(InvalidCoordinateError, match='radius_m'):
        conflicting_ids(same, value, {'b': (same, 0.3)})
    with pytest.raises(InvalidCoordinateError, match="others\\['b'\\]"):
        conflicting_ids(same, 0.3, {'b': (same, value)})
    with pytest.raises(InvalidCoordinateError, match='clearance_m'):
        conflicting_ids(same, 0.3, {'b': (same, 0.3)}, clearance_m=value)
    with pytest.raises(InvalidCoordinateError, match='clearance_m'):
        conflicting_ids(same, 0.3, {}, clearance_m=value)


@pytest.mark.parametrize('window', [
    {'t_start_s': math.nan}, {'t_end_s': math.nan}, {'t_start_s': -math.inf},
    {'t_end_s': math.inf}, {'t_start_s': 10.0, 't_end_s': 0.0},
])
def test_conflict_checks_reject_bad_window(window):
    same = line(0, 0, 0, 1, 1, 0)
    with pytest.raises(InvalidCoordinateError, match='t_'):
        closest_approach(same, same, **window)
    with pytest.raises(InvalidCoordinateError, match='t_'):
        find_conflict(same, 0.3, same, 0.3, **window)
    with pytest.raises(InvalidCoordinateError, match='t_'):
        conflicting_ids(same, 0.3, {'b': (same, 0.3)}, **window)


def test_zero_radius_and_numpy_numbers_accepted():
    same = line(0, 0, 0, 1, 1, 0)
    conflict = find_conflict(same, np.float32(0.0), same, np.float64(0.0),
                             clearance_m=np.float64(0.1))
    assert conflict is not None
    assert conflict.required_m == pytest.approx(0.1)
    assert conflicting_ids(same, 0, {'b': (same, np.int64(0))}, clearance_m=0.1) == ['b']


def test_separation_profile_shape():
    trajectories = [line(0, 0, 0, 1, 1, 0), line(0, 0, 1, 1, 1, 1), line(0, 3, 0, 1, 3, 0)]
    profile = separation_profile(trajectories, np.array([0.0, 0.5, 1.0]))
    assert profile.shape == (3, 3, 3)
    assert profile[0, 0, 1] == pytest.approx(1.0)
    assert profile[2, 0, 2] == pytest.approx(2.0)


waypoint = st.tuples(st.floats(0.05, 3.0), st.floats(-5.0, 5.0), st.floats(-5.0, 5.0))


def random_trajectory(t0_s: float, steps) -> Trajectory:
    times = t0_s + np.cumsum([0.0] + [step[0] for step in steps[1:]])
    xy = np.array([[step[1], step[2]] for step in steps])
    return Trajectory.from_arrays(times, xy)


@settings(max_examples=80, deadline=None)
@given(st.floats(0.0, 2.0), st.lists(waypoint, min_size=1, max_size=6),
       st.floats(0.0, 2.0), st.lists(waypoint, min_size=1, max_size=6))
def test_exact_approach_against_dense_sampling(t0_a, steps_a, t0_b, steps_b):
    a = random_trajectory(t0_a, steps_a)
    b = random_trajectory(t0_b, steps_b)
    approach = closest_approach(a, b)
    start = min(a.start_time_s, b.start_time_s)
    end = max(a.end_time_s, b.end_time_s)
    dt_s = 1e-3
    times = np.append(np.arange(start, end, dt_s), end)
    sampled = np.linalg.norm(a.position_at(times) - b.position_at(times), axis=1).min()
    # The exact minimum can never exceed a sampled one ...
    assert approach.distance_m <= sampled + 1e-9
    # ... and the distance changes at most at the relative speed, so sampling every dt_s
    # misses the minimum by at most half a step at that speed.
    relative_speed = a.max_speed_mps + b.max_speed_mps
    assert sampled - approach.distance_m <= relative_speed * dt_s / 2 + 1e-9
    assert start <= approach.time_s <= end
    at = np.linalg.norm(a.position_at(approach.time_s) - b.position_at(approach.time_s))
    assert at == pytest.approx(approach.distance_m, abs=1e-9)
