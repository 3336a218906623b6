"""Moving obstacles: constant-velocity and timed-waypoint motion models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mapl_robotics.errors import InvalidCoordinateError, TrajectoryError
from mapl_robotics.geometry import (ConstantVelocity, MovingObstacle, TimedWaypoints,
                                    Trajectory, find_conflict)


def test_constant_velocity_moves_from_t0():
    motion = ConstantVelocity(start_xy_m=(1.0, 2.0), velocity_mps=(0.5, 0.0), t0_s=2.0)
    prediction = motion.predict(0.0, 10.0)
    assert prediction.start_time_s == 0.0
    assert prediction.end_time_s == 10.0
    assert prediction.position_at(1.0) == pytest.approx([1.0, 2.0])
    assert prediction.position_at(2.0) == pytest.approx([1.0, 2.0])
    assert prediction.position_at(6.0) == pytest.approx([3.0, 2.0])
    assert prediction.position_at(10.0) == pytest.approx([5.0, 2.0])


def test_constant_velocity_stops():
    motion = ConstantVelocity(start_xy_m=(0.0, 0.0), velocity_mps=(1.0, 1.0), t_stop_s=3.0)
    prediction = motion.predict(0.0, 10.0)
    assert prediction.position_at(2.0) == pytest.approx([2.0, 2.0])
    assert prediction.position_at(8.0) == pytest.approx([3.0, 3.0])
    late = motion.predict(5.0, 9.0)
    assert late.position_at(6.0) == pytest.approx([3.0, 3.0])


def test_constant_velocity_before_start_time():
    motion = ConstantVelocity(start_xy_m=(0.0, 0.0), velocity_mps=(1.0, 0.0), t0_s=20.0)
    prediction = motion.predict(0.0, 10.0)
    assert prediction.position_at(10.0) == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize('kwargs, error, message', [
    ({'start_xy_m': (math.nan, 0.0), 'velocity_mps': (1.0, 0.0)}, InvalidCoordinateError,
     'start_xy_m'),
    ({'start_xy_m': (0.0, 0.0), 'velocity_mps': (1.0,)}, InvalidCoordinateError,
     'velocity_mps'),
    ({'start_xy_m': (0.0, 0.0), 'velocity_mps': (1.0, 0.0), 't0_s': 5.0, 't_stop_s': 4.0},
     TrajectoryError, 't_stop_s'),
])
def test_constant_velocity_rejects_bad_values(kwargs, error, message):
    with pytest.raises(error, match=message):
        ConstantVelocity(**kwargs)


def test_timed_waypoints_interpolate_and_hold():
    motion = TimedWaypoints(waypoints=((0.0, 0.0, 0.0), (2.0, 2.0, 0.0), (4.0, 2.0, 2.0)))
    prediction = motion.predict(-1.0, 6.0)
    assert prediction.position_at(-1.0) == pytest.approx([0.0, 0.0])
    assert prediction.position_at(1.0) == pytest.approx([1.0, 0.0])
    assert prediction.position_at(3.0) == pytest.approx([2.0, 1.0])
    assert prediction.position_at(6.0) == pytest.approx([2.0, 2.0])
    assert prediction.end_time_s == 6.0


def test_closed_loop_repeats():
    square = ((0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 1.0, 1.0), (3.0, 0.0, 1.0),
              (4.0, 0.0, 0.0))
    motion = TimedWaypoints(waypoints=square, loop=True)
    prediction = motion.predict(0.0, 12.0)
    for t_s in (0.5, 1.5, 2.5, 3.5):
        expected = prediction.position_at(t_s)
        assert prediction.position_at(t_s + 4.0) == pytest.approx(expected)
        assert prediction.position_at(t_s + 8.0) == pytest.approx(expected)


def test_open_loop_closes_with_average_speed():
    # Two legs of 1 m in 1 s each; the way back (sqrt(2) m) takes sqrt(2) s.
    motion = TimedWaypoints(waypoints=((0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 1.0, 1.0)),
                            loop=True)
    period_s = 2.0 + math.sqrt(2.0)
    prediction = motion.predict(0.0, 3 * period_s)
    assert prediction.position_at(period_s) == pytest.approx([0.0, 0.0])
    assert prediction.position_at(period_s + 1.0) == pytest.approx([1.0, 0.0])
    assert prediction.position_at(2.0 + math.sqrt(2.0) / 2) == pytest.approx([0.5, 0.5])


def test_loop_prediction_late_in_a_long_run():
    # A 1 s loop predicted three hours in: the window must still follow the loop.
    motion = TimedWaypoints(waypoints=((0.0, 0.0, 0.0), (0.5, 1.0, 0.0), (1.0, 0.0, 0.0)),
                            loop=True)
    t_start_s = 3 * 3600.0
    prediction = motion.predict(t_start_s, t_start_s + 2.0)
    assert len(prediction) < 20
    assert prediction.position_at(t_start_s + 0.25) == pytest.approx([0.5, 0.0])
    assert prediction.position_at(t_start_s + 1.5) == pytest.approx([1.0, 0.0])


def test_timed_waypoints_reject_bad_rows():
    with pytest.raises(TrajectoryError, match='waypoints'):
        TimedWaypoints(waypoints=())
    with pytest.raises(TrajectoryError, match='waypoints'):
        TimedWaypoints(waypoints=((0.0, 1.0),))
    with pytest.raises(TrajectoryError, match='strictly increase'):
        TimedWaypoints(waypoints=((1.0, 0.0, 0.0), (1.0, 1.0, 0.0)))


@pytest.mark.parametrize('waypoints', [
    ((0.0, (10.0, 9.5)), (5.0, (1.0, 1.0))),
    ((0.0, 1.0, 2.0), (1.0, 'x', 2.0)),
    ((0.0, 1.0, 2.0), None),
    ((0.0, True, 2.0),),
    'abc',
    5,
])
def test_timed_waypoints_reject_malformed_rows(waypoints):
    with pytest.raises(TrajectoryError, match=r'\(t_s, x_m, y_m\)'):
        TimedWaypoints(waypoints=waypoints)


@pytest.mark.parametrize('velocity', [(1.0, (2.0,)), 'ab', None, (1.0, '2')])
def test_constant_velocity_rejects_malformed_pair(velocity):
    with pytest.raises(InvalidCoordinateError, match='velocity_mps=.* in m/s'):
        ConstantVelocity(start_xy_m=(0.0, 0.0), velocity_mps=velocity)


def test_timed_waypoints_accept_numpy_rows():
    motion = TimedWaypoints(waypoints=np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 2.0]]))
    assert motion.waypoints == ((0.0, 1.0, 2.0), (2.0, 3.0, 2.0))
    assert motion.predict(0.0, 2.0).position_at(1.0) == pytest.approx([2.0, 2.0])


def test_moving_obstacle_conflict_with_robot():
    person = MovingObstacle('p1', 0.25, ConstantVelocity(start_xy_m=(5.0, -5.0),
                                                         velocity_mps=(0.0, 1.0)))
    robot = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (10.0, 10.0, 0.0, 0.0)])
    prediction = person.predict(0.0, 10.0)
    conflict = find_conflict(robot, 0.3, prediction, person.radius_m)
    assert conflict is not None
    assert conflict.time_s == pytest.approx(5.0)
    assert person.position_at(5.0) == pytest.approx([5.0, 0.0])
    assert find_conflict(robot.shifted(3.0), 0.3, prediction, person.radius_m) is None


@pytest.mark.parametrize('radius_m', [0.0, -1.0, math.nan])
def test_moving_obstacle_rejects_bad_radius(radius_m):
    with pytest.raises(InvalidCoordinateError, match='radius_m'):
        MovingObstacle('p1', radius_m, ConstantVelocity(start_xy_m=(0, 0), velocity_mps=(0, 0)))


def test_prediction_of_zero_length_window():
    motion = ConstantVelocity(start_xy_m=(0.0, 0.0), velocity_mps=(1.0, 0.0))
    prediction = motion.predict(3.0, 3.0)
    assert len(prediction) == 1
    assert np.allclose(prediction.position_at(3.0), [3.0, 0.0])
