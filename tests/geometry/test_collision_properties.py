"""The fast collision checks give the same results as plain shapely, on real and random maps."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from mapl_robotics.geometry.maps import load_map
from mapl_robotics.geometry.world import World

from collision_reference import exact_points_free, exact_segments_free

MAPS_DIR = Path(__file__).resolve().parents[2] / 'maps'
REAL_MAPS = {
    'nav2_warehouse': (MAPS_DIR / 'ros' / 'warehouse.yaml', None),
    'turtlebot3_world': (MAPS_DIR / 'ros' / 'turtlebot3_world.yaml', None),
    'movingai_warehouse': (MAPS_DIR / 'movingai' / 'warehouse-10-20-10-2-1' /
                           'warehouse-10-20-10-2-1.map', 1.0),
    'random_32': (MAPS_DIR / 'movingai' / 'random-32-32-10' / 'random-32-32-10.map', 0.5),
    'room_32': (MAPS_DIR / 'movingai' / 'room-32-32-4' / 'room-32-32-4.map', 1.0),
}


@pytest.fixture(scope='module')
def real_worlds() -> dict[str, World]:
    return {name: load_map(path, cell_size_m=cell) for name, (path, cell) in REAL_MAPS.items()}


def planner_like_edges(world: World, rng: np.random.Generator, count: int):
    """Return edges of mixed length, half of them starting at free points."""
    x_min, y_min, x_max, y_max = world.bounds_m
    start = rng.uniform((x_min, y_min), (x_max, y_max), size=(count, 2))
    angle = rng.uniform(-np.pi, np.pi, size=count)
    scale = 0.05 * max(world.width_m, world.height_m)
    length = rng.exponential(scale, size=count)
    end = start + length[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return start, end


@pytest.mark.parametrize('name', sorted(REAL_MAPS))
@pytest.mark.parametrize('radius_m', [0.0, 0.17, 0.3, 0.55])
def test_segments_match_shapely_on_real_maps(real_worlds, name, radius_m):
    world = real_worlds[name]
    rng = np.random.default_rng(zlib.crc32(f'{name}-{radius_m}'.encode()))
    checker = world.checker(radius_m)
    start, end = planner_like_edges(world, rng, 3000)
    # Mostly free starts, as a planner produces them.
    free_start = checker.points_free(start)
    start = np.concatenate([start[free_start], start[~free_start][:500]])
    end = np.concatenate([end[free_start], end[~free_start][:500]])
    expected = exact_segments_free(checker, start, end)
    assert np.array_equal(checker.segments_free(start, end), expected)
    single = np.array([checker.segment_free(a, b) for a, b in zip(start[:400], end[:400])])
    assert np.array_equal(single, expected[:400])


@pytest.mark.parametrize('name', sorted(REAL_MAPS))
@pytest.mark.parametrize('radius_m', [0.0, 0.17, 0.3])
def test_points_match_shapely_on_real_maps(real_worlds, name, radius_m):
    world = real_worlds[name]
    rng = np.random.default_rng(zlib.crc32(f'{name}-{radius_m}-points'.encode()))
    checker = world.checker(radius_m)
    x_min, y_min, x_max, y_max = world.bounds_m
    points = rng.uniform((x_min, y_min), (x_max, y_max), size=(5000, 2))
    expected = exact_points_free(checker, points)
    assert np.array_equal(checker.points_free(points), expected)
    single = np.array([checker.point_free(point) for point in points[:400]])
    assert np.array_equal(single, expected[:400])


def test_nav2_warehouse_has_free_and_blocked_edges(real_worlds):
    # Guards the comparison above against a degenerate sample where every result is the same.
    world = real_worlds['nav2_warehouse']
    checker = world.checker(0.3)
    start, end = planner_like_edges(world, np.random.default_rng(5), 2000)
    free = checker.segments_free(start, end)
    assert 0.1 < free.mean() < 0.9


coordinate = st.floats(min_value=-1.0, max_value=11.0, allow_nan=False, allow_infinity=False)
point = st.tuples(coordinate, coordinate)


@st.composite
def obstacle_worlds(draw) -> World:
    obstacles = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        x, y = draw(st.tuples(st.floats(0.0, 9.0), st.floats(0.0, 9.0)))
        if draw(st.booleans()):
            width, height = draw(st.tuples(st.floats(0.05, 3.0), st.floats(0.05, 3.0)))
            obstacles.append(box(x, y, x + width, y + height))
        else:
            obstacles.append(Point(x, y).buffer(draw(st.floats(0.05, 1.5)), quad_segs=8))
    return World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=obstacles)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=obstacle_worlds(), radius_m=st.floats(0.0, 1.0),
       edges=st.lists(st.tuples(point, point), min_size=1, max_size=30))
def test_random_worlds_match_shapely(world, radius_m, edges):
    checker = world.checker(radius_m)
    start = np.array([edge[0] for edge in edges])
    end = np.array([edge[1] for edge in edges])
    expected = exact_segments_free(checker, start, end)
    assert np.array_equal(checker.segments_free(start, end), expected)
    assert [checker.segment_free(a, b) for a, b in zip(start, end)] == expected.tolist()
    assert np.array_equal(checker.points_free(start), exact_points_free(checker, start))


@settings(max_examples=60, deadline=None)
@given(edges=st.lists(st.tuples(st.tuples(st.floats(-15.1, 15.08), st.floats(-25.0, 25.22)),
                                st.tuples(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))),
                      min_size=1, max_size=50),
       radius_m=st.sampled_from([0.0, 0.2, 0.35]))
# A zero-length edge 0.335 m from a wall: GEOS finds nothing near a two-point line whose points
# are equal, so the checker must treat it as a point.
@example(edges=[((14.625, 0.0), (0.0, 0.0))], radius_m=0.35)
def test_warehouse_edges_match_shapely(real_worlds, edges, radius_m):
    world = real_worlds['nav2_warehouse']
    checker = world.checker(radius_m)
    start = np.array([edge[0] for edge in edges])
    end = start + np.array([edge[1] for edge in edges])
    assert np.array_equal(checker.segments_free(start, end),
                          exact_segments_free(checker, start, end))
