"""PyBullet world built from a geometry World."""

from __future__ import annotations

import pybullet
import pytest
from shapely.geometry import Polygon, box

from mapl_robotics.geometry import World
from mapl_robotics.sim.world import SimWorld, _triangles


def test_world_uses_its_own_client():
    world = World(bounds_m=(0, 0, 4, 4), obstacles=[box(1, 1, 2, 2)])
    with SimWorld(world) as first, SimWorld(world) as second:
        assert first.client_id != second.client_id
        assert pybullet.isConnected(physicsClientId=first.client_id)
        # Four walls plus two triangles for the square.
        assert len(first.bodies) == 6
    assert not pybullet.isConnected(physicsClientId=first.client_id)


def test_polygon_with_hole_tiles_exactly():
    ring = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]])
    triangles = _triangles(ring)
    area = sum(Polygon(t).area for t in triangles)
    assert area == pytest.approx(ring.area)


def test_static_body_blocks_robot_contact():
    from mapl_robotics.sim.robots import DiffDriveRobot
    from mapl_robotics.sim.world import BodyInfo
    world = World(bounds_m=(0, 0, 4, 4), obstacles=[Polygon([(1, 1), (3, 1), (2, 3)])])
    with SimWorld(world) as sim:
        robot = DiffDriveRobot(sim.client_id, robot_id='r0', radius_m=0.2,
                               start_xy_m=(2.0, 1.5), max_speed_mps=1.0, max_accel_mps2=1.0)
        sim.register(robot.body_id, BodyInfo('robot', 'r0'), group=1, mask=7)
        kinds = {(a.kind, b.kind) for a, b, distance in sim.contacts() if distance < 0}
        assert ('robot', 'static') in kinds or ('static', 'robot') in kinds
        robot.place((0.5, 3.5), 0.0)
        assert [c for c in sim.contacts() if c[2] < -0.003] == []
