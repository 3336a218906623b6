"""Time parameterization: speed, acceleration and yaw-rate limits checked from the samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapl_robotics.errors import InvalidCoordinateError, PlannerConfigError
from mapl_robotics.planning import RobotModel, corner_indices, time_parameterize

from planning_reference import finite_difference_limits

TOLERANCE = 1e-6


def _yaw_rates(trajectory):
    yaw = np.unwrap(trajectory.yaw_rad)
    return np.abs(np.diff(yaw)) / np.diff(trajectory.t_s)


def _passes_through(trajectory, xy):
    for vertex in np.asarray(xy, dtype=float):
        distance = np.min(np.linalg.norm(trajectory.xy_m - vertex, axis=1))
        if distance > 1e-9:
            return False
    return True


paths = st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=2, max_size=8)
robots = st.builds(RobotModel, radius_m=st.just(0.3), max_speed_mps=st.floats(0.1, 3.0),
                   max_accel_mps2=st.floats(0.1, 3.0),
                   drive=st.sampled_from(['holonomic', 'differential']),
                   max_yaw_rate_radps=st.floats(0.2, 4.0))


@settings(max_examples=80, deadline=None)
@given(path=paths, robot=robots, rule=st.sampled_from(['stop', 'deflection']),
       sample_dt_s=st.floats(0.05, 0.5), t_start_s=st.floats(-100, 100))
def test_limits_hold_for_any_path(path, robot, rule, sample_dt_s, t_start_s):
    trajectory = time_parameterize(path, robot=robot, t_start_s=t_start_s,
                                   sample_dt_s=sample_dt_s, corner_rule=rule)
    speed, accel = finite_difference_limits(trajectory)
    assert speed <= robot.max_speed_mps * (1 + TOLERANCE)
    assert accel <= robot.max_accel_mps2 * (1 + TOLERANCE) + TOLERANCE
    assert trajectory.start_time_s == t_start_s
    assert _passes_through(trajectory, path)
    assert np.allclose(trajectory.xy_m[-1], np.asarray(path[-1], dtype=float), atol=1e-9)
    if robot.is_differential and len(trajectory) > 1:
        assert np.max(_yaw_rates(trajectory)) <= robot.max_yaw_rate_radps * (1 + TOLERANCE)


def test_straight_edge_trapezoid():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    trajectory = time_parameterize([(0, 0), (4, 0)], robot=robot, t_start_s=10.0)
    # 2 s to reach 1 m/s over 1 m, 2 m of cruise, 2 s to stop over 1 m.
    assert trajectory.duration_s == pytest.approx(6.0)
    assert trajectory.position_at(12.0) == pytest.approx([1.0, 0.0])
    assert trajectory.position_at(14.0) == pytest.approx([3.0, 0.0])
    assert trajectory.max_speed_mps == pytest.approx(1.0)


def test_short_edge_triangle():
    robot = RobotModel(radius_m=0.3, max_speed_mps=2.0, max_accel_mps2=1.0)
    trajectory = time_parameterize([(0, 0), (1, 0)], robot=robot, t_start_s=0.0)
    # Peak speed sqrt(a * L) = 1 m/s, reached after 1 s.
    assert trajectory.duration_s == pytest.approx(2.0)
    speed, _ = finite_difference_limits(trajectory)
    assert speed <= 1.0 + 1e-9


def test_stop_rule_rests_at_corner():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    trajectory = time_parameterize([(0, 0), (4, 0), (4, 4)], robot=robot, t_start_s=0.0)
    index = int(np.flatnonzero(np.all(trajectory.xy_m == [4.0, 0.0], axis=1))[0])
    before = trajectory.xy_m[index] - trajectory.xy_m[index - 1]
    after = trajectory.xy_m[index + 1] - trajectory.xy_m[index]
    assert np.linalg.norm(before) / (trajectory.t_s[index] - trajectory.t_s[index - 1]) < 0.11
    assert np.linalg.norm(after) / (trajectory.t_s[index + 1] - trajectory.t_s[index]) < 0.11
    assert trajectory.duration_s == pytest.approx(12.0)


def test_deflection_faster_on_shallow_corner():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    path = [(0, 0), (4, 0), (8, 0.5)]
    stop = time_parameterize(path, robot=robot, t_start_s=0.0, corner_rule='stop')
    deflect = time_parameterize(path, robot=robot, t_start_s=0.0, corner_rule='deflection')
    assert deflect.duration_s < stop.duration_s - 1.0
    _, accel = finite_difference_limits(deflect)
    assert accel <= 0.5 * (1 + TOLERANCE)


def test_deflection_stops_at_sharp_corner():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    path = [(0, 0), (4, 0), (4, 4)]
    stop = time_parameterize(path, robot=robot, t_start_s=0.0, corner_rule='stop')
    deflect = time_parameterize(path, robot=robot, t_start_s=0.0, corner_rule='deflection')
    assert deflect.duration_s == pytest.approx(stop.duration_s)


def test_differential_turns_in_place():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5,
                       drive='differential', max_yaw_rate_radps=math.pi / 4)
    holonomic = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    path = [(0, 0), (4, 0), (4, 4)]
    turning = time_parameterize(path, robot=robot, t_start_s=0.0, start_yaw_rad=math.pi / 2)
    free = time_parameterize(path, robot=holonomic, t_start_s=0.0)
    # Two quarter turns (start and corner) at pi/4 rad/s take 4 s.
    assert turning.duration_s == pytest.approx(free.duration_s + 4.0)
    assert turning.yaw_rad[0] == pytest.approx(math.pi / 2)
    assert np.max(_yaw_rates(turning)) <= math.pi / 4 * (1 + TOLERANCE)
    # While turning, the robot does not move.
    at_corner = np.all(np.isclose(turning.xy_m, [4.0, 0.0]), axis=1)
    assert np.count_nonzero(at_corner) >= 2
    # It drives along its heading: yaw matches the direction of every moving interval.
    moving = np.linalg.norm(np.diff(turning.xy_m, axis=0), axis=1) > 1e-9
    direction = np.diff(turning.xy_m, axis=0)[moving]
    heading = np.arctan2(direction[:, 1], direction[:, 0])
    assert np.allclose(np.cos(heading - turning.yaw_rad[1:][moving]), 1.0)


def test_waits_delay_and_keep_limits():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    path = [(0, 0), (4, 0), (8, 0)]
    plain = time_parameterize(path, robot=robot, t_start_s=0.0)
    waited = time_parameterize(path, robot=robot, t_start_s=0.0, waits_s={0: 1.5, 1: 2.0})
    assert waited.duration_s > plain.duration_s + 3.5 - 1e-9
    assert waited.position_at(1.5) == pytest.approx([0.0, 0.0])
    _, accel = finite_difference_limits(waited)
    assert accel <= 0.5 * (1 + TOLERANCE)


def test_single_point_path():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    trajectory = time_parameterize([(2, 3)], robot=robot, t_start_s=5.0, waits_s={0: 2.0})
    assert trajectory.start_time_s == 5.0
    assert trajectory.end_time_s == 7.0
    assert trajectory.position_at(6.0) == pytest.approx([2.0, 3.0])


def test_corner_indices_ignore_collinear():
    assert corner_indices([(0, 0), (1, 0), (2, 0), (2, 1)]).tolist() == [2]


@pytest.mark.parametrize('kwargs, error', [
    (dict(xy_m=[(0, 0), (math.nan, 1)]), InvalidCoordinateError),
    (dict(xy_m=np.zeros((0, 2))), InvalidCoordinateError),
    (dict(xy_m=[(0, 0), (1, 0)], t_start_s=math.inf), InvalidCoordinateError),
    (dict(xy_m=[(0, 0), (1, 0)], sample_dt_s=0.0), PlannerConfigError),
    (dict(xy_m=[(0, 0), (1, 0)], corner_rule='glide'), PlannerConfigError),
    (dict(xy_m=[(0, 0), (1, 0)], waits_s={5: 1.0}), PlannerConfigError),
    (dict(xy_m=[(0, 0), (1, 0)], waits_s={0: -1.0}), PlannerConfigError),
])
def test_bad_input_rejected(kwargs, error):
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    arguments = dict(robot=robot, t_start_s=0.0)
    arguments.update(kwargs)
    with pytest.raises(error):
        time_parameterize(**arguments)
