"""Trajectory tracking of the differential-drive controller."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import box

from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.sim.clock import SimClock
from mapl_robotics.sim.controllers import TrackingController
from mapl_robotics.sim.robots import DiffDriveRobot
from mapl_robotics.sim.world import SimWorld

STEP_S = 1.0 / 60.0


@pytest.fixture
def sim_world():
    world = World(bounds_m=(-1.0, -1.0, 5.0, 5.0), obstacles=[box(3.5, 3.5, 4.0, 4.0)])
    with SimWorld(world) as sim:
        yield sim


def _track(sim_world, trajectory, *, duration_s, start_yaw=0.0, max_speed_mps=1.0):
    robot = DiffDriveRobot(sim_world.client_id, robot_id='r0', radius_m=0.25,
                           start_xy_m=trajectory.position_at(0.0), start_yaw_rad=start_yaw,
                           max_speed_mps=max_speed_mps, max_accel_mps2=2.0,
                           max_yaw_rate_radps=2.0)
    controller = TrackingController(step_s=STEP_S)
    clock = SimClock(step_s=STEP_S)
    errors = []
    while clock.now_s() < duration_s:
        t_s = clock.now_s()
        speed, yaw_rate = controller.command(robot.state, trajectory, t_s)
        robot.step(speed, yaw_rate, STEP_S)
        clock.advance()
        errors.append(float(np.linalg.norm(robot.state.xy_m
                                           - trajectory.position_at(clock.now_s()))))
    return robot, np.asarray(errors)


def _trapezoid_leg(t0_s, start, end, yaw, *, speed_mps=1.0, accel_mps2=2.0, dt_s=0.05):
    """Return samples of a straight leg with a trapezoidal speed profile."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    length = float(np.linalg.norm(end - start))
    ramp_s = speed_mps / accel_mps2
    cruise_s = (length - speed_mps * ramp_s) / speed_mps
    total_s = 2 * ramp_s + cruise_s
    rows = []
    for t in np.arange(0.0, total_s + 1e-9, dt_s):
        if t < ramp_s:
            s = 0.5 * accel_mps2 * t * t
        elif t < ramp_s + cruise_s:
            s = 0.5 * speed_mps * ramp_s + speed_mps * (t - ramp_s)
        else:
            left = total_s - t
            s = length - 0.5 * accel_mps2 * left * left
        xy = start + (end - start) * s / length
        rows.append((t0_s + t, xy[0], xy[1], yaw))
    return rows


def test_stop_turn_go_path_tracked_closely(sim_world):
    # Drive 2 m east, turn in place for 1 s, drive 2 m north: what a differential-drive
    # time parameterization produces.
    east = _trapezoid_leg(0.0, (0.0, 0.0), (2.0, 0.0), 0.0)
    turn_end_s = east[-1][0] + 1.0
    north = _trapezoid_leg(turn_end_s, (2.0, 0.0), (2.0, 2.0), math.pi / 2)
    trajectory = Trajectory.from_samples(east + north)
    robot, errors = _track(sim_world, trajectory, duration_s=8.0)
    assert errors.max() < 0.05
    assert np.linalg.norm(robot.state.xy_m - [2.0, 2.0]) < 0.01
    assert abs(robot.state.yaw_rad - math.pi / 2) < 0.05


def test_robot_facing_away_turns_before_driving(sim_world):
    trajectory = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0),
                                          (3.0, 1.0, 0.0, 0.0)])
    robot, errors = _track(sim_world, trajectory, duration_s=6.0, start_yaw=math.pi)
    assert np.linalg.norm(robot.state.xy_m - [1.0, 0.0]) < 0.01


def test_hold_without_plan_brakes_to_stop(sim_world):
    robot = DiffDriveRobot(sim_world.client_id, robot_id='r0', radius_m=0.25,
                           start_xy_m=(0.0, 0.0), max_speed_mps=1.0, max_accel_mps2=2.0)
    robot.state.speed_mps = 1.0
    controller = TrackingController(step_s=STEP_S)
    for _ in range(60):
        robot.step(*controller.command(robot.state, None, 0.0), STEP_S)
    # Braking from 1 m/s at 2.5 m/s^2 (the base's limit with headroom) takes 0.4 s, 0.2 m.
    assert robot.state.speed_mps == 0.0
    assert robot.state.x_m == pytest.approx(0.2, abs=0.02)


def test_wheel_speed_limit_keeps_curvature(sim_world):
    robot = DiffDriveRobot(sim_world.client_id, robot_id='r0', radius_m=0.25,
                           start_xy_m=(0.0, 0.0), max_speed_mps=1.0, max_accel_mps2=100.0)
    speed, yaw_rate = robot.limit_command(1.25, 10.0, STEP_S)
    left, right = robot.wheel_speeds_radps(speed, yaw_rate)
    assert max(abs(left), abs(right)) <= robot.limits.max_wheel_speed_radps + 1e-9
    assert yaw_rate <= robot.limits.max_yaw_rate_radps + 1e-9


def test_late_robot_follows_path_not_chord(sim_world):
    # The plan turns a corner; the robot starts 2 s late. Chasing the timed reference straight
    # would cut the corner by more than a metre; the robot must stay near the path instead.
    east = _trapezoid_leg(0.0, (0.0, 0.0), (2.0, 0.0), 0.0)
    turn_end_s = east[-1][0] + 1.0
    north = _trapezoid_leg(turn_end_s, (2.0, 0.0), (2.0, 2.0), math.pi / 2)
    trajectory = Trajectory.from_samples(east + north)
    robot = DiffDriveRobot(sim_world.client_id, robot_id='r0', radius_m=0.25,
                           start_xy_m=(0.0, 0.0), max_speed_mps=1.0, max_accel_mps2=2.0,
                           max_yaw_rate_radps=2.0)
    controller = TrackingController(step_s=STEP_S)
    clock = SimClock(step_s=STEP_S, t_start_s=3.0)
    path_deviation = []
    while clock.now_s() < 12.0:
        robot.step(*controller.command(robot.state, trajectory, clock.now_s()), STEP_S)
        clock.advance()
        x, y = robot.state.x_m, robot.state.y_m
        # Distance to the L-shaped path (0,0)-(2,0)-(2,2).
        to_first = math.hypot(x - min(max(x, 0.0), 2.0), y)
        to_second = math.hypot(x - 2.0, y - min(max(y, 0.0), 2.0))
        path_deviation.append(min(to_first, to_second))
    assert max(path_deviation) < 0.1
    assert np.linalg.norm(robot.state.xy_m - [2.0, 2.0]) < 0.02
    assert controller.max_error_m > 1.0
