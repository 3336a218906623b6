"""Clearance field: its bounds must hold for every point, and its edge decisions be proven."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from mapl_robotics.geometry.field_checks import classify_segments, march_segment
from mapl_robotics.geometry.maps import load_map
from mapl_robotics.geometry.occupancy import OccupancyGrid
from mapl_robotics.geometry import world as world_module
from mapl_robotics.geometry.world import World

from collision_reference import exact_segments_free

MAPS_DIR = Path(__file__).resolve().parents[2] / 'maps'


def rotated_grid_world(rng: np.random.Generator) -> World:
    data = np.where(rng.random((25, 35)) < 0.2, 100, 0).astype(np.int8)
    grid = OccupancyGrid(data=data, resolution_m=0.2, origin_xy_m=(3.0, -2.0),
                         origin_yaw_rad=0.7)
    return World.from_occupancy_grid(grid)


@pytest.fixture(scope='module')
def worlds() -> dict[str, World]:
    rng = np.random.default_rng(42)
    return {
        'nav2_warehouse': load_map(MAPS_DIR / 'ros' / 'warehouse.yaml'),
        'room_32': load_map(MAPS_DIR / 'movingai' / 'room-32-32-4' / 'room-32-32-4.map',
                            cell_size_m=0.7),
        'polygons': World(bounds_m=(0.0, 0.0, 12.0, 7.0),
                          obstacles=[Point(3.0, 3.0).buffer(1.2), box(6.0, 1.0, 6.4, 6.0),
                                     shapely.Polygon([(8, 1), (11, 2), (9, 5)])]),
        'rotated_grid': rotated_grid_world(rng),
    }


def distance_to_obstacles(world: World, xy: np.ndarray) -> np.ndarray:
    """Return the distance of each point to the obstacles or to the outside of the bounds."""
    points = shapely.points(xy)
    obstacles = shapely.distance(points, world.obstacle_union)
    outside = shapely.distance(points, box(*world.bounds_m).exterior)
    return np.minimum(obstacles, outside)


@pytest.mark.parametrize('name', ['nav2_warehouse', 'room_32', 'polygons', 'rotated_grid'])
def test_bounds_enclose_true_distance(worlds, name):
    world = worlds[name]
    field = world.clearance_field()
    rng = np.random.default_rng(7)
    x_min, y_min, x_max, y_max = world.bounds_m
    xy = rng.uniform((x_min, y_min), (x_max, y_max), size=(4000, 2))
    truth = distance_to_obstacles(world, xy)
    lower, upper = field.bounds(xy)
    assert np.all(lower <= truth + 1e-9)
    assert np.all(upper >= truth - 1e-9)
    loose_lower, loose_upper = field.bounds_inside(xy)
    assert np.all(loose_lower <= truth + 1e-9)
    assert np.all(loose_upper >= truth - 1e-9)
    for point, low, high in zip(xy[:300], truth[:300], truth[:300]):
        scalar_lower, scalar_upper = field.bounds_at(*point)
        assert scalar_lower <= low + 1e-9
        assert scalar_upper >= high - 1e-9


@pytest.mark.parametrize('name', ['nav2_warehouse', 'polygons'])
def test_bounds_are_useful(worlds, name):
    # Guards the test above against trivial bounds such as (-inf, inf).
    world = worlds[name]
    rng = np.random.default_rng(8)
    x_min, y_min, x_max, y_max = world.bounds_m
    xy = rng.uniform((x_min, y_min), (x_max, y_max), size=(2000, 2))
    truth = distance_to_obstacles(world, xy)
    lower, upper = world.clearance_field().bounds(xy)
    cell_m = max(world.clearance_field().cell_size_xy_m)
    assert np.median(truth - lower) < 2.0 * cell_m
    assert np.median(upper - truth) < 2.0 * cell_m


@pytest.mark.parametrize('name', ['nav2_warehouse', 'room_32', 'polygons'])
@pytest.mark.parametrize('radius_m', [0.0, 0.3])
def test_segment_decisions_are_proven(worlds, name, radius_m):
    world = worlds[name]
    checker = world.checker(radius_m)
    field = world.clearance_field()
    rng = np.random.default_rng(9)
    x_min, y_min, x_max, y_max = world.bounds_m
    r = radius_m
    start = rng.uniform((x_min + r, y_min + r), (x_max - r, y_max - r), size=(2000, 2))
    end = np.clip(start + rng.normal(0.0, 2.0, size=(2000, 2)), (x_min + r, y_min + r),
                  (x_max - r, y_max - r))
    lines = shapely.linestrings(np.stack([start, end], axis=1))
    distance = shapely.distance(lines, world.obstacle_union)
    free, blocked = classify_segments(field, start, end, radius_m=r, margin_m=1e-9,
                                      coarse_spacing_m=0.5, fine_spacing_m=0.05)
    assert not np.any(free & blocked)
    assert np.all(distance[free] >= r)
    assert np.all(distance[blocked] < r)
    if radius_m > 0.0:
        # A zero radius never proves a collision (touching is then a hit, and the bounds are
        # widened by rounding), so only positive radii must decide most edges.
        assert free.mean() + blocked.mean() > 0.6
    for index in range(300):
        decided = march_segment(field, *start[index], *end[index], radius_m=r,
                                margin_m=1e-9, probe_spacing_m=0.1, max_steps=12,
                                max_probes=8)
        if decided is True:
            assert distance[index] >= r
        elif decided is False:
            assert distance[index] < r


def test_float32_bounds_stay_conservative():
    # Far from the origin float32 spacing grows; the rounding must still widen the bounds.
    world = World(bounds_m=(1000.0, 2000.0, 1010.0, 2004.0),
                  obstacles=[box(1004.0, 2001.0, 1004.5, 2003.0)])
    field = world.clearance_field()
    xy = np.array([[1003.0, 2002.0], [1006.25, 2002.0], [1004.25, 2000.4]])
    truth = distance_to_obstacles(world, xy)
    lower, upper = field.bounds(xy)
    assert np.all(lower <= truth)
    assert np.all(upper >= truth)
    assert not math.isinf(float(upper.max()))


@pytest.mark.parametrize('yaw_rad', [0.0, 0.4])
def test_coarsened_field_of_large_grid(monkeypatch, yaw_rad):
    # A grid above the cell budget gets a field of blocks; results must not change.
    monkeypatch.setattr(world_module, 'FIELD_MAX_CELLS', 3000)
    rng = np.random.default_rng(11)
    data = np.where(rng.random((83, 97)) < 0.08, 100, 0).astype(np.int8)
    grid = OccupancyGrid(data=data, resolution_m=0.1, origin_xy_m=(0.0, 0.0),
                         origin_yaw_rad=yaw_rad)
    world = World.from_occupancy_grid(grid)
    field = world.clearance_field()
    assert field.cell_count <= 3000 * 1.3
    assert field.cell_size_xy_m[0] > 0.1
    x_min, y_min, x_max, y_max = world.bounds_m
    xy = rng.uniform((x_min, y_min), (x_max, y_max), size=(3000, 2))
    truth = distance_to_obstacles(world, xy)
    lower, upper = field.bounds(xy)
    assert np.all(lower <= truth + 1e-9)
    assert np.all(upper >= truth - 1e-9)
    checker = world.checker(0.15)
    end = xy + rng.normal(0.0, 1.0, size=xy.shape)
    assert np.array_equal(checker.segments_free(xy, end),
                          exact_segments_free(checker, xy, end))
