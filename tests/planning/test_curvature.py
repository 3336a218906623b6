"""Rounded corners for differential drive with a minimum turning radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from mapl_robotics.errors import PlannerConfigError
from mapl_robotics.geometry import World
from mapl_robotics.planning import (PlannerSettings, RobotModel, arc_speed_mps,
                                    plan_trajectory, round_corners, time_parameterize)

from planning_reference import finite_difference_limits, geos_path_clear

ROOM = World(bounds_m=(0, 0, 20, 20), obstacles=[], name='room')


def _robot(radius_m=1.0, yaw_rate_radps=1.0):
    return RobotModel(radius_m=0.3, max_speed_mps=1.5, max_accel_mps2=1.0,
                      drive='differential', max_yaw_rate_radps=yaw_rate_radps,
                      min_turn_radius_m=radius_m)


def test_right_angle_becomes_tangent_arc():
    rounded = round_corners(ROOM.checker(0.3), [(2, 2), (10, 2), (10, 10)], robot=_robot(),
                            sample_dt_s=0.2)
    assert rounded.rounded_corners == 1
    arc = rounded.xy_m[1:-1]
    # The arc of radius 1 m tangent to both edges has its centre at (9, 3).
    assert np.allclose(np.linalg.norm(arc - [9.0, 3.0], axis=1), 1.0)
    assert np.allclose(arc[0], [9.0, 2.0])
    assert np.allclose(arc[-1], [10.0, 3.0])
    assert rounded.arc_edges.tolist() == [False] + [True] * (len(arc) - 1) + [False]


def test_arc_that_collides_keeps_the_corner():
    # A post just inside the corner, where the arc would pass.
    world = World(bounds_m=(0, 0, 20, 20), obstacles=[Point(9.4, 2.6).buffer(0.05)])
    checker = world.checker(0.3)
    path = [(2, 2), (10, 1.5), (10.5, 10)]
    assert checker.path_free(path) or True
    rounded = round_corners(checker, [(2, 1.5), (10, 1.5), (10, 10)], robot=_robot(2.0),
                            sample_dt_s=0.2)
    assert rounded.rounded_corners == 0
    assert rounded.xy_m.tolist() == [[2.0, 1.5], [10.0, 1.5], [10.0, 10.0]]


def test_arc_too_large_for_edge_keeps_corner():
    rounded = round_corners(ROOM.checker(0.3), [(2, 2), (3, 2), (3, 10)], robot=_robot(3.0),
                            sample_dt_s=0.2)
    assert rounded.rounded_corners == 0


def test_zero_radius_leaves_path():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0,
                       drive='differential')
    path = [(2, 2), (10, 2), (10, 10)]
    rounded = round_corners(ROOM.checker(0.3), path, robot=robot, sample_dt_s=0.2)
    assert rounded.xy_m.tolist() == [[2.0, 2.0], [10.0, 2.0], [10.0, 10.0]]
    assert not rounded.arc_edges.any()


@settings(max_examples=60, deadline=None)
# A short first edge leaves the arc entry below the arc speed. A chord that speeds up in short
# samples there breaks the acceleration and yaw-rate limits next to the corner.
@example(points=[(1.0, 1.0), (1.75, 1.125), (3.0, 1.0)], radius_m=2.0, yaw_rate_radps=3.0,
         sample_dt_s=0.05, rule='stop')
@example(points=[(1.0, 1.0), (1.75, 1.125), (3.0, 1.0)], radius_m=1.5, yaw_rate_radps=1.0,
         sample_dt_s=0.25, rule='stop')
@example(points=[(2.0, 1.0), (2.0, 2.0), (1.0, 5.0)], radius_m=3.0, yaw_rate_radps=2.0,
         sample_dt_s=0.125, rule='deflection')
@given(points=st.lists(st.tuples(st.floats(1, 19), st.floats(1, 19)), min_size=3, max_size=6),
       radius_m=st.floats(0.2, 3.0), yaw_rate_radps=st.floats(0.3, 3.0),
       sample_dt_s=st.floats(0.05, 0.4), rule=st.sampled_from(['stop', 'deflection']))
def test_rounded_trajectory_within_limits(points, radius_m, yaw_rate_radps, sample_dt_s, rule):
    xy = np.asarray(points)
    assume(np.all(np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-3))
    robot = _robot(radius_m, yaw_rate_radps)
    rounded = round_corners(ROOM.checker(0.3), xy, robot=robot, sample_dt_s=sample_dt_s)
    trajectory = time_parameterize(rounded.xy_m, robot=robot, t_start_s=0.0,
                                   sample_dt_s=sample_dt_s, corner_rule=rule,
                                   arc_edges=rounded.arc_edges)
    speed, accel = finite_difference_limits(trajectory)
    assert speed <= robot.max_speed_mps * (1 + 1e-6)
    assert accel <= robot.max_accel_mps2 * (1 + 1e-6)
    yaw_rate = np.abs(np.diff(np.unwrap(trajectory.yaw_rad))) / np.diff(trajectory.t_s)
    assert np.max(yaw_rate) <= yaw_rate_radps * (1 + 1e-6)
    assert np.allclose(trajectory.xy_m[-1], xy[-1])


def test_arc_driven_at_one_speed():
    robot = _robot(2.0, 3.0)
    rounded = round_corners(ROOM.checker(0.3), [(1, 1), (1.75, 1.125), (3, 1)], robot=robot,
                            sample_dt_s=0.05)
    trajectory = time_parameterize(rounded.xy_m, robot=robot, t_start_s=0.0, sample_dt_s=0.05,
                                   arc_edges=rounded.arc_edges)
    # Each arc vertex is one sample, and the chords between them take one interval each.
    arc_xy = rounded.xy_m[1:-1]
    rows = [int(np.flatnonzero(np.all(np.abs(trajectory.xy_m - xy) < 1e-9, axis=1))[0])
            for xy in arc_xy]
    assert np.all(np.diff(rows) == 1)
    chord_m = np.linalg.norm(np.diff(arc_xy, axis=0), axis=1)
    chord_speed_mps = chord_m / np.diff(trajectory.t_s[rows])
    assert np.allclose(chord_speed_mps, chord_speed_mps[0], rtol=1e-9)
    assert chord_speed_mps[0] <= arc_speed_mps(robot, float(chord_m[0])) * (1 + 1e-9)


@pytest.mark.parametrize('rule', ['stop', 'deflection'])
def test_wait_on_arc_stays_within_limits(rule):
    robot = _robot(1.0, 1.0)
    rounded = round_corners(ROOM.checker(0.3), [(2, 2), (10, 2), (10, 10)], robot=robot,
                            sample_dt_s=0.2)
    middle = len(rounded.xy_m) // 2
    assert rounded.arc_edges[middle - 1]
    assert rounded.arc_edges[middle]
    trajectory = time_parameterize(rounded.xy_m, robot=robot, t_start_s=0.0, sample_dt_s=0.2,
                                   corner_rule=rule, arc_edges=rounded.arc_edges,
                                   waits_s={middle: 1.5})
    speed, accel = finite_difference_limits(trajectory)
    assert speed <= robot.max_speed_mps * (1 + 1e-6)
    assert accel <= robot.max_accel_mps2 * (1 + 1e-6)
    yaw_rate = np.abs(np.diff(np.unwrap(trajectory.yaw_rad))) / np.diff(trajectory.t_s)
    assert np.max(yaw_rate) <= 1.0 * (1 + 1e-6)
    at_middle = np.all(np.abs(trajectory.xy_m - rounded.xy_m[middle]) < 1e-9, axis=1)
    assert np.ptp(trajectory.t_s[at_middle]) >= 1.5 - 1e-9


def test_rounding_saves_time_over_turning_in_place():
    rounded_robot = _robot(1.0)
    turning_robot = _robot(0.0)
    path = [(2, 2), (10, 2), (10, 10), (2, 10)]
    rounded = round_corners(ROOM.checker(0.3), path, robot=rounded_robot, sample_dt_s=0.2)
    fast = time_parameterize(rounded.xy_m, robot=rounded_robot, t_start_s=0.0,
                             arc_edges=rounded.arc_edges)
    slow = time_parameterize(path, robot=turning_robot, t_start_s=0.0)
    assert fast.duration_s < slow.duration_s


def test_arc_edges_need_turning_radius():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)
    with pytest.raises(PlannerConfigError):
        time_parameterize([(0, 0), (1, 0), (2, 1)], robot=robot, t_start_s=0.0,
                          arc_edges=[False, True])
    with pytest.raises(PlannerConfigError):
        time_parameterize([(0, 0), (1, 0), (2, 1)], robot=_robot(), t_start_s=0.0,
                          arc_edges=[True])


def test_arc_edges_follow_dropped_repeated_vertices():
    robot = _robot()
    rounded = round_corners(ROOM.checker(0.3), [(2, 2), (10, 2), (10, 10)], robot=robot,
                            sample_dt_s=0.2)
    # The same path with a near-repeat of its first and last vertices, each adding an edge.
    xy = np.vstack([rounded.xy_m[:1], rounded.xy_m[:1] + [1e-12, 0.0], rounded.xy_m[1:],
                    rounded.xy_m[-1:] + [0.0, 1e-11]])
    flags = np.concatenate([[True], rounded.arc_edges, [False]])
    expected = time_parameterize(rounded.xy_m, robot=robot, t_start_s=0.0,
                                 arc_edges=rounded.arc_edges)
    result = time_parameterize(xy, robot=robot, t_start_s=0.0, arc_edges=flags)
    assert result.duration_s == pytest.approx(expected.duration_s, rel=1e-9)
    assert len(result) == len(expected)
    assert np.allclose(result.xy_m, expected.xy_m, atol=1e-9)
    with pytest.raises(PlannerConfigError, match='flags'):
        time_parameterize(xy, robot=robot, t_start_s=0.0, arc_edges=rounded.arc_edges)


def test_arc_edges_on_path_of_one_repeated_point():
    trajectory = time_parameterize([(3, 4), (3, 4 + 1e-11)], robot=_robot(), t_start_s=2.0,
                                   arc_edges=[False])
    assert trajectory.to_list() == [[2.0, 3.0, 4.0, 0.0]]


def test_plan_trajectory_rounds_corners(two_walls):
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.8,
                       drive='differential', max_yaw_rate_radps=1.0, min_turn_radius_m=0.5)
    result = plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=0.0,
                             rng=np.random.default_rng(6),
                             settings=PlannerSettings(corner_rule='deflection'))
    assert geos_path_clear(two_walls, 0.3, result.xy_m)
    speed, accel = finite_difference_limits(result)
    assert speed <= 1.0 * (1 + 1e-6)
    assert accel <= 0.8 * (1 + 1e-6)
    yaw_rate = np.abs(np.diff(np.unwrap(result.yaw_rad))) / np.diff(result.t_s)
    assert np.max(yaw_rate) <= 1.0 * (1 + 1e-6)
    assert math.dist(result.xy_m[-1], (19, 9)) < 1e-9
