"""Collision detection: PyBullet contacts, swept checks, event counting."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from mapl_robotics.geometry import World
from mapl_robotics.sim.collisions import CollisionMonitor, segment_pair_min_distance
from mapl_robotics.sim.moving import MovingObstacleBody
from mapl_robotics.sim.robots import DiffDriveRobot
from mapl_robotics.sim.world import SimWorld

STEP_S = 1.0 / 60.0


@pytest.fixture
def wall_world():
    # A 5 cm thick wall across the corridor at x in [1.0, 1.05].
    world = World(bounds_m=(-1.0, -1.0, 3.0, 1.0), obstacles=[box(1.0, -1.0, 1.05, 1.0)],
                  name='thin wall')
    with SimWorld(world) as sim_world:
        yield world, sim_world


def _robot(sim_world, robot_id, xy, radius_m, yaw=0.0, speed_mps=1.0):
    return DiffDriveRobot(sim_world.client_id, robot_id=robot_id, radius_m=radius_m,
                          start_xy_m=xy, start_yaw_rad=yaw, max_speed_mps=speed_mps,
                          max_accel_mps2=1000.0)


def _monitor(world, sim_world, robots, obstacles=()):
    for robot in robots:
        sim_world.register(robot.body_id, _robot_info(robot.robot_id), group=1, mask=7)
    return CollisionMonitor(sim_world, world, robot_ids=[r.robot_id for r in robots],
                            robot_body_ids=[r.body_id for r in robots],
                            robot_radii_m=[r.radius_m for r in robots],
                            obstacle_ids=[o.obstacle_id for o in obstacles],
                            obstacle_radii_m=[o.radius_m for o in obstacles])


def _robot_info(robot_id):
    from mapl_robotics.sim.world import BodyInfo
    return BodyInfo(kind='robot', name=robot_id)


def test_fast_robot_through_thin_wall_detected(wall_world):
    world, sim_world = wall_world
    radius_m = 0.01
    speed_mps = 5.0
    step_m = speed_mps * STEP_S
    # Start so that one step jumps from just before the wall to just after it.
    start_x = 1.0 - radius_m - 0.005 - 6 * step_m
    robot = _robot(sim_world, 'fast', (start_x, 0.0), radius_m, speed_mps=speed_mps)
    robot.state.speed_mps = speed_mps
    monitor = _monitor(world, sim_world, [robot])
    contact_steps = []
    events = []
    for step in range(1, 10):
        previous = robot.state.xy_m[None, :]
        robot.step(speed_mps, 0.0, STEP_S)
        current = robot.state.xy_m[None, :]
        contact_steps.extend(info for info in sim_world.contacts()
                             if info[2] < -monitor.bullet_tolerance_m)
        events.extend(monitor.check(step * STEP_S, previous, current))
    assert robot.state.x_m > 1.05 + radius_m, 'the robot must end up past the wall'
    # No pose ever overlaps the wall: contacts alone would miss this collision.
    assert contact_steps == []
    assert len(events) == 1
    assert events[0].kind == 'robot-static'
    assert events[0].detected_by == 'swept'


def test_robot_resting_on_wall_is_contact(wall_world):
    world, sim_world = wall_world
    robot = _robot(sim_world, 'r0', (0.9, 0.0), 0.25)
    monitor = _monitor(world, sim_world, [robot])
    xy = robot.state.xy_m[None, :]
    events = monitor.check(0.0, xy, xy)
    kinds = {(event.kind, event.detected_by) for event in events}
    assert ('robot-static', 'contact') in kinds or ('robot-static', 'swept') in kinds
    assert monitor.counts['robot-static'] == 1


@pytest.mark.parametrize('gap_m', [0.0, 0.0005, 0.01])
def test_touching_wall_is_no_collision(wall_world, gap_m):
    world, sim_world = wall_world
    robot = _robot(sim_world, 'r0', (1.0 - 0.25 - gap_m, 0.0), 0.25)
    monitor = _monitor(world, sim_world, [robot])
    xy = robot.state.xy_m[None, :]
    assert monitor.check(0.0, xy, xy) == []


@pytest.mark.parametrize('depth_m', [0.005, 0.05])
def test_overlap_beyond_tolerance_is_collision(wall_world, depth_m):
    world, sim_world = wall_world
    robot = _robot(sim_world, 'r0', (1.0 - 0.25 + depth_m, 0.0), 0.25)
    monitor = _monitor(world, sim_world, [robot])
    xy = robot.state.xy_m[None, :]
    detectors = {event.detected_by for event in monitor.check(0.0, xy, xy)}
    assert monitor.counts['robot-static'] == 1
    assert detectors == {'contact'}


def test_robots_crossing_between_steps_detected(wall_world):
    world, sim_world = wall_world
    a = _robot(sim_world, 'a', (-0.5, 0.5), 0.05)
    b = _robot(sim_world, 'b', (0.5, 0.5), 0.05)
    monitor = _monitor(world, sim_world, [a, b])
    previous = np.array([[-0.5, 0.5], [0.5, 0.5]])
    # Both jump past each other in one step; their end poses are 1 m apart again.
    a.place((0.5, 0.5), 0.0)
    b.place((-0.5, 0.5), 0.0)
    current = np.array([[0.5, 0.5], [-0.5, 0.5]])
    events = monitor.check(STEP_S, previous, current)
    assert [(e.kind, e.robot_id, e.other_id, e.detected_by) for e in events] == [
        ('robot-robot', 'a', 'b', 'swept')]
    assert monitor.robot_robot.gap_m == pytest.approx(-0.1)


def test_collision_episode_counts_once(wall_world):
    world, sim_world = wall_world
    a = _robot(sim_world, 'a', (-0.5, 0.0), 0.2)
    b = _robot(sim_world, 'b', (-0.2, 0.0), 0.2)
    monitor = _monitor(world, sim_world, [a, b])
    xy = np.array([[-0.5, 0.0], [-0.2, 0.0]])
    for step in range(5):
        monitor.check(step * STEP_S, xy, xy)
    assert monitor.counts['robot-robot'] == 1
    far = np.array([[-0.7, 0.0], [-0.2, 0.0]])
    a.place((-0.7, 0.0), 0.0)
    monitor.check(6 * STEP_S, xy, far)  # leaves the overlap during this step
    monitor.check(7 * STEP_S, far, far)  # apart for one whole step
    assert monitor.counts['robot-robot'] == 1
    a.place((-0.5, 0.0), 0.0)
    monitor.check(8 * STEP_S, far, xy)
    assert monitor.counts['robot-robot'] == 2


def test_moving_obstacle_hit_detected(wall_world):
    from mapl_robotics.geometry import ConstantVelocity, MovingObstacle
    world, sim_world = wall_world
    robot = _robot(sim_world, 'r0', (0.0, 0.0), 0.2)
    person = MovingObstacle('person', 0.3, ConstantVelocity(start_xy_m=(0.0, 0.9),
                                                            velocity_mps=(0.0, -1.0)))
    body = MovingObstacleBody(sim_world, person, t_end_s=5.0)
    monitor = _monitor(world, sim_world, [robot], [body])
    xy = robot.state.xy_m[None, :]
    found = []
    previous_obstacle = body.move_to_time(0.0)[None, :].copy()
    for step in range(1, 60):
        t_s = step * STEP_S
        current_obstacle = body.move_to_time(t_s)[None, :].copy()
        found += monitor.check(t_s, xy, xy, previous_obstacle, current_obstacle)
        previous_obstacle = current_obstacle
    assert [(e.kind, e.other_id) for e in found] == [('robot-moving', 'person')]
    # The person reaches the robot's disc after 0.4 s of walking.
    assert found[0].time_s == pytest.approx(0.4, abs=STEP_S + 1e-9)


def test_segment_pair_min_distance_closed_form():
    distance, fraction = segment_pair_min_distance(
        np.array([0.0, 0.0]), np.array([2.0, 0.0]), np.array([2.0, 1.0]), np.array([0.0, 1.0]))
    assert float(distance) == pytest.approx(1.0)
    assert float(fraction) == pytest.approx(0.5)
