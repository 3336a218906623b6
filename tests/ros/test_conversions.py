"""Trajectory, world and yaw conversions to ROS messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import Quaternion
from shapely.geometry import box

from mapl_robotics.errors import InvalidCoordinateError, TrajectoryError
from mapl_robotics.geometry import ConstantVelocity, MovingObstacle, Trajectory, World
from mapl_robotics.ros.conversions import (occupancy_grid_from_world, path_to_trajectory,
                                           quaternion_to_yaw, trajectory_to_path,
                                           yaw_to_quaternion)
from mapl_robotics.ros.markers import (footprint_marker, marker_array, moving_obstacle_markers,
                                       plan_markers)
from mapl_robotics.ros.time_conversion import FleetTimeBase, stamp_to_ns

STAMP_NS = 1553575413247045598


@pytest.mark.parametrize('yaw_rad', [0.0, 0.3, -2.0, math.pi - 1e-9, -math.pi + 1e-9])
def test_yaw_quaternion_round_trip(yaw_rad):
    assert quaternion_to_yaw(yaw_to_quaternion(yaw_rad)) == pytest.approx(yaw_rad, abs=1e-9)


def test_quaternion_to_yaw_normalizes():
    scaled = Quaternion(x=0.0, y=0.0, z=2.0 * math.sin(0.25), w=2.0 * math.cos(0.25))
    assert quaternion_to_yaw(scaled) == pytest.approx(0.5)


@pytest.mark.parametrize('quaternion', [
    Quaternion(x=0.0, y=0.0, z=0.0, w=0.0),
    Quaternion(x=float('nan'), y=0.0, z=0.0, w=1.0),
])
def test_quaternion_to_yaw_rejects(quaternion):
    with pytest.raises(InvalidCoordinateError):
        quaternion_to_yaw(quaternion)


def test_path_poses_carry_due_times():
    base = FleetTimeBase.starting_at(STAMP_NS)
    trajectory = Trajectory.from_samples([(0.247045598, 0.0, 0.0, 0.0), (1.5, 1.0, 0.0, 0.0),
                                          (3.25, 1.0, 2.0, math.pi / 2)])
    path = trajectory_to_path(trajectory, time_base=base, stamp_ns=STAMP_NS)
    assert path.header.frame_id == 'map'
    assert stamp_to_ns(path.header.stamp) == STAMP_NS
    stamps = [stamp_to_ns(pose.header.stamp) for pose in path.poses]
    assert stamps == [STAMP_NS, base.epoch_ns + 1_500_000_000, base.epoch_ns + 3_250_000_000]
    assert all(pose.header.frame_id == 'map' for pose in path.poses)
    assert path.poses[2].pose.position.y == 2.0
    assert quaternion_to_yaw(path.poses[2].pose.orientation) == pytest.approx(math.pi / 2)
    back = path_to_trajectory(path, time_base=base)
    assert np.array_equal(back.t_s, trajectory.t_s)
    assert np.array_equal(back.xy_m, trajectory.xy_m)
    assert np.allclose(back.yaw_rad, trajectory.yaw_rad, atol=1e-12)


def test_path_to_trajectory_rejects_decreasing_stamps():
    base = FleetTimeBase(epoch_ns=0)
    trajectory = Trajectory.from_samples([(1.0, 0.0, 0.0, 0.0), (2.0, 1.0, 0.0, 0.0)])
    path = trajectory_to_path(trajectory, time_base=base, stamp_ns=0)
    path.poses = list(reversed(path.poses))
    with pytest.raises(TrajectoryError):
        path_to_trajectory(path, time_base=base)


def test_occupancy_grid_marks_obstacles():
    world = World(bounds_m=(0.0, 0.0, 4.0, 2.0), obstacles=[box(3.0, 0.0, 4.0, 1.0)])
    grid = occupancy_grid_from_world(world, resolution_m=0.5, stamp_ns=STAMP_NS)
    assert (grid.info.width, grid.info.height) == (8, 4)
    assert grid.info.resolution == pytest.approx(0.5)
    assert (grid.info.origin.position.x, grid.info.origin.position.y) == (0.0, 0.0)
    cells = np.asarray(grid.data, dtype=np.int8).reshape(4, 8)
    # Row 0 is at y_min: the obstacle fills columns 6-7 of rows 0-1.
    assert np.all(cells[0:2, 6:8] == 100)
    assert np.all(cells[:, 0:5] == 0)
    assert np.all(cells[2:4, 6:8] == 0)
    assert stamp_to_ns(grid.header.stamp) == STAMP_NS


def test_plan_markers_stable_ids_and_points():
    plans = {'robot_b': Trajectory.from_samples([(0, 0, 0, 0), (1, 1, 1, 0)]),
             'robot_a': Trajectory.from_samples([(0, 2, 2, 0), (1, 3, 3, 0)])}
    markers = plan_markers(plans, stamp_ns=5)
    assert [(m.ns, m.id, m.text) for m in markers] == [('plans', 0, 'robot_a'),
                                                        ('plans', 1, 'robot_b')]
    assert [(p.x, p.y) for p in markers[1].points] == [(0.0, 0.0), (1.0, 1.0)]


def test_footprint_and_obstacle_markers():
    footprint = footprint_marker(name='robot_0', xy_m=(1.0, 2.0), radius_m=0.3, stamp_ns=1)
    assert (footprint.pose.position.x, footprint.pose.position.y) == (1.0, 2.0)
    assert footprint.scale.x == pytest.approx(0.6)
    person = MovingObstacle('person_0', 0.25, ConstantVelocity((0.0, 0.0), (1.0, 0.0)))
    markers = moving_obstacle_markers([person], t_s=2.0, horizon_s=3.0, stamp_ns=1)
    body, line = markers
    assert body.pose.position.x == pytest.approx(2.0)
    assert line.points[-1].x == pytest.approx(5.0)
    array = marker_array(markers, clear_first=True)
    assert array.markers[0].action == array.markers[0].DELETEALL
    assert len(array.markers) == 3
