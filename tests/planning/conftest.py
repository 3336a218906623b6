"""Fixtures for the planning tests: real warehouse maps, small synthetic worlds and an exact
reference check that uses GEOS alone (no clearance field)."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from mapl_robotics.geometry import World
from mapl_robotics.geometry.maps import load_map, load_scenario
from mapl_robotics.planning import RobotModel

from tests.conftest import MAPS_DIR

MOVINGAI_DIR = MAPS_DIR / 'movingai' / 'warehouse-10-20-10-2-1'
MOVINGAI_CELL_M = 1.0


@pytest.fixture(scope='session')
def nav2_warehouse() -> World:
    return load_map(MAPS_DIR / 'ros' / 'warehouse.yaml')


@pytest.fixture(scope='session')
def movingai_warehouse() -> World:
    return load_map(MOVINGAI_DIR / 'warehouse-10-20-10-2-1.map', cell_size_m=MOVINGAI_CELL_M)


@pytest.fixture(scope='session')
def movingai_tasks():
    return load_scenario(MOVINGAI_DIR / 'warehouse-10-20-10-2-1-random-1.scen',
                         cell_size_m=MOVINGAI_CELL_M)


@pytest.fixture(scope='session')
def two_walls() -> World:
    """A 20 x 10 m room with two staggered walls, so every path has to weave."""
    return World(bounds_m=(0, 0, 20, 10), obstacles=[box(5, 0, 6, 7), box(12, 3, 13, 10)],
                 name='two_walls')


@pytest.fixture
def robot() -> RobotModel:
    return RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.8)
