"""World and CollisionChecker: exact swept-disc semantics, grids, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from mapl_robotics.errors import (EmptyMapError, InvalidCoordinateError, InvalidGeometryError,
                                  OutOfBoundsError)
from mapl_robotics.geometry.maps import disc_polygon, load_map
from mapl_robotics.geometry.occupancy import OccupancyGrid, mask_rectangles
from mapl_robotics.geometry.world import World

from collision_reference import exact_points_free, exact_segments_free


@pytest.fixture(scope='module')
def disc_world() -> World:
    return World(bounds_m=(-1.0, -1.0, 4.0, 1.0),
                 obstacles=[disc_polygon((1.5, 0.0), radius_m=0.2)])


@pytest.mark.parametrize('pieces', [1, 2, 3, 5, 7, 10, 64])
def test_edge_past_disc_rejected_for_any_step(disc_world, pieces):
    checker = disc_world.checker(0.1)
    waypoints = np.column_stack([np.linspace(0.0, 3.0, pieces + 1), np.zeros(pieces + 1)])
    assert not checker.path_free(waypoints)
    assert not checker.segment_free((0.0, 0.0), (3.0, 0.0))
    assert not np.all(checker.segments_free(waypoints[:-1], waypoints[1:]))


def test_edge_rejected_with_no_sample_inside(disc_world):
    # Both ends are far from the disc, so only the swept check can see the collision.
    checker = disc_world.checker(0.05)
    assert checker.point_free((0.0, 0.0))
    assert checker.point_free((3.0, 0.0))
    assert not checker.segment_free((0.0, 0.0), (3.0, 0.0))


def test_edge_beside_disc_free(disc_world):
    checker = disc_world.checker(0.1)
    assert checker.segment_free((0.0, 0.5), (3.0, 0.5))
    assert checker.segments_free([[0.0, 0.5]], [[3.0, 0.5]])[0]


def test_touching_at_radius_is_free():
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=[box(4.0, 4.0, 6.0, 6.0)])
    checker = world.checker(0.5)
    assert checker.point_free((3.5, 5.0))
    assert not checker.point_free((3.6, 5.0))
    assert checker.segment_free((1.0, 3.5), (9.0, 3.5))
    assert not checker.segment_free((1.0, 3.6), (9.0, 3.6))


def test_bounds_keep_disc_inside():
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0))
    checker = world.checker(0.5)
    assert checker.point_free((0.5, 0.5))
    assert not checker.point_free((0.49, 5.0))
    assert not checker.segment_free((5.0, 5.0), (9.6, 5.0))


def test_non_finite_queries_are_not_free(disc_world):
    checker = disc_world.checker(0.1)
    assert not checker.point_free((math.nan, 0.0))
    assert not checker.segment_free((0.0, 0.5), (math.inf, 0.5))
    free = checker.points_free([[0.0, 0.5], [math.nan, 0.5], [0.0, -math.inf]])
    assert free.tolist() == [True, False, False]


def test_checker_cached_per_radius(disc_world):
    assert disc_world.checker(0.1) is disc_world.checker(0.1)
    assert disc_world.checker(0.1) is not disc_world.checker(0.2)


@pytest.mark.parametrize('radius_m', [-0.1, math.nan, math.inf])
def test_checker_rejects_bad_radius(disc_world, radius_m):
    with pytest.raises(InvalidCoordinateError, match='radius_m'):
        disc_world.checker(radius_m)


def test_require_inside_errors():
    world = World(bounds_m=(0.0, 0.0, 10.0, 5.0))
    assert world.require_inside((1.0, 2.0)).tolist() == [1.0, 2.0]
    with pytest.raises(InvalidCoordinateError, match='nan'):
        world.require_inside((math.nan, 1.0), what='start')
    with pytest.raises(InvalidCoordinateError, match='finite'):
        world.require_inside((math.inf, 1.0))
    with pytest.raises(OutOfBoundsError, match=r'start \(11\.000, 1\.000\).*outside'):
        world.require_inside((11.0, 1.0), what='start')


def test_world_rejects_bad_bounds():
    with pytest.raises(InvalidCoordinateError, match='bounds_m'):
        World(bounds_m=(0.0, 0.0, math.nan, 1.0))
    with pytest.raises(EmptyMapError, match='no area'):
        World(bounds_m=(0.0, 0.0, 0.0, 1.0))


def test_world_without_free_area_rejected():
    with pytest.raises(EmptyMapError, match='no free area'):
        World(bounds_m=(0.0, 0.0, 1.0, 1.0), obstacles=[box(-1.0, -1.0, 2.0, 2.0)])


def test_world_rejects_invalid_polygon():
    bowtie = Polygon([(0, 0), (1, 1), (0, 1), (1, 0)])
    with pytest.raises(InvalidGeometryError, match='repair_polygon'):
        World(bounds_m=(-1.0, -1.0, 2.0, 2.0), obstacles=[bowtie])


def test_world_pickles_with_same_answers(disc_world, rng):
    start = rng.uniform((-1.0, -1.0), (4.0, 1.0), size=(200, 2))
    end = rng.uniform((-1.0, -1.0), (4.0, 1.0), size=(200, 2))
    expected = disc_world.checker(0.15).segments_free(start, end)
    copy = pickle.loads(pickle.dumps(disc_world))
    assert copy.bounds_m == disc_world.bounds_m
    assert np.array_equal(copy.checker(0.15).segments_free(start, end), expected)


def test_mask_rectangles_cover_cells_exactly(rng):
    mask = rng.random((37, 53)) < 0.4
    rectangles = mask_rectangles(mask)
    painted = np.zeros(mask.shape, dtype=int)
    for col0, row0, col1, row1 in rectangles:
        painted[row0:row1, col0:col1] += 1
    assert painted.max() == 1
    assert np.array_equal(painted.astype(bool), mask)


def test_mask_rectangles_merge_runs():
    mask = np.zeros((100, 100), dtype=bool)
    mask[10:60, 20:30] = True
    assert mask_rectangles(mask).tolist() == [[20, 10, 30, 60]]
    assert mask_rectangles(np.zeros((3, 3), dtype=bool)).shape == (0, 4)


def test_grid_world_cells_and_area():
    data = np.zeros((4, 6), dtype=np.int8)
    data[1, 2] = 100
    data[3, 5] = -1
    grid = OccupancyGrid(data=data, resolution_m=0.5, origin_xy_m=(10.0, 20.0))
    world = World.from_occupancy_grid(grid)
    assert world.bounds_m == (10.0, 20.0, 13.0, 22.0)
    assert world.free_area_m2 == pytest.approx(22 * 0.25)
    checker = world.checker(0.0)
    # Cell (row 1, col 2) spans x in [11, 11.5], y in [20.5, 21].
    assert not checker.point_free((11.25, 20.75))
    assert checker.point_free((11.75, 20.75))
    # The unknown cell is an obstacle by default and free on request.
    assert not checker.point_free((12.75, 21.75))
    lenient = World.from_occupancy_grid(grid, unknown_is_obstacle=False)
    assert lenient.checker(0.0).point_free((12.75, 21.75))


def test_grid_world_without_free_cell_rejected():
    grid = OccupancyGrid(data=np.full((3, 3), -1, dtype=np.int8), resolution_m=1.0)
    with pytest.raises(EmptyMapError, match='unknown_is_obstacle=False'):
        World.from_occupancy_grid(grid)


def test_rotated_grid_world():
    data = np.zeros((10, 20), dtype=np.int8)
    data[0, 0] = 100
    yaw = math.pi / 6
    grid = OccupancyGrid(data=data, resolution_m=0.1, origin_xy_m=(1.0, 2.0), origin_yaw_rad=yaw)
    world = World.from_occupancy_grid(grid)
    corners = grid.corners_xy_m()
    assert world.bounds_m == pytest.approx((corners[:, 0].min(), corners[:, 1].min(),
                                            corners[:, 0].max(), corners[:, 1].max()))
    checker = world.checker(0.0)
    occupied_centre = grid.cell_centres_xy_m([0], [0])[0]
    assert occupied_centre == pytest.approx(
        [1.0 + 0.05 * math.cos(yaw) - 0.05 * math.sin(yaw),
         2.0 + 0.05 * math.sin(yaw) + 0.05 * math.cos(yaw)])
    assert not checker.point_free(occupied_centre)
    assert checker.point_free(grid.cell_centres_xy_m([5], [10])[0])
    # Inside the bounds but outside the rotated grid: unknown, hence an obstacle.
    assert world.contains_xy([[world.bounds_m[0] + 0.01, world.bounds_m[1] + 0.01]])[0]
    assert not checker.point_free((world.bounds_m[0] + 0.01, world.bounds_m[1] + 0.01))


def test_rotated_grid_agrees_with_shapely(rng):
    data = np.where(rng.random((30, 40)) < 0.15, 100, 0).astype(np.int8)
    grid = OccupancyGrid(data=data, resolution_m=0.1, origin_xy_m=(-1.0, 0.5),
                         origin_yaw_rad=2.0)
    world = World.from_occupancy_grid(grid)
    x_min, y_min, x_max, y_max = world.bounds_m
    start = rng.uniform((x_min, y_min), (x_max, y_max), size=(3000, 2))
    end = start + rng.normal(0.0, 0.4, size=(3000, 2))
    for radius_m in (0.0, 0.04, 0.13):
        checker = world.checker(radius_m)
        assert np.array_equal(checker.segments_free(start, end),
                              exact_segments_free(checker, start, end))
        assert np.array_equal(checker.points_free(start), exact_points_free(checker, start))


def test_to_occupancy_grid_returns_source_cells():
    data = np.zeros((5, 7), dtype=np.int8)
    data[2, 3] = 100
    data[4, 6] = -1
    data[0, 0] = 40
    grid = OccupancyGrid(data=data, resolution_m=0.2, origin_xy_m=(-1.0, -2.0),
                         origin_yaw_rad=0.3)
    world = World.from_occupancy_grid(grid)
    out = world.to_occupancy_grid(resolution_m=0.2)
    assert out.data.dtype == np.int8
    assert out.origin_xy_m == (-1.0, -2.0)
    assert out.origin_yaw_rad == 0.3
    expected = np.zeros((5, 7), dtype=np.int8)
    expected[2, 3] = expected[4, 6] = expected[0, 0] = 100
    assert np.array_equal(out.data, expected)


def test_to_occupancy_grid_rasterizes_polygons():
    world = World(bounds_m=(0.0, 0.0, 4.0, 2.0), obstacles=[box(1.0, 0.0, 2.0, 1.0)])
    out = world.to_occupancy_grid(resolution_m=0.5)
    assert out.data.shape == (4, 8)
    assert out.origin_xy_m == (0.0, 0.0)
    expected = np.zeros((4, 8), dtype=np.int8)
    # Cells sharing only an edge with the box stay free.
    expected[0:2, 2:4] = 100
    assert np.array_equal(out.data, expected)


def test_to_occupancy_grid_rejects_bad_resolution():
    world = World(bounds_m=(0.0, 0.0, 4.0, 2.0))
    with pytest.raises(InvalidCoordinateError, match='resolution_m'):
        world.to_occupancy_grid(resolution_m=0.0)


def test_point_and_line_obstacles_agree_with_shapely(rng):
    obstacles = [Point(2.0, 2.0).buffer(0.5), shapely.LineString([(5, 1), (7, 4)]),
                 Point(8.0, 8.0)]
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=obstacles)
    start = rng.uniform(0.0, 10.0, size=(3000, 2))
    end = start + rng.normal(0.0, 1.0, size=(3000, 2))
    for radius_m in (0.0, 0.2, 0.7):
        checker = world.checker(radius_m)
        assert np.array_equal(checker.segments_free(start, end),
                              exact_segments_free(checker, start, end))
        assert np.array_equal(checker.points_free(start), exact_points_free(checker, start))


def test_zero_length_edge_near_obstacle():
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=[box(5.0, 0.0, 6.0, 10.0)])
    checker = world.checker(0.5)
    for x_m in (4.4, 4.5, 4.6, 4.52, 4.48):
        expected = checker.point_free((x_m, 5.0))
        assert checker.segment_free((x_m, 5.0), (x_m, 5.0)) == expected
        assert checker.segments_free([[x_m, 5.0]], [[x_m, 5.0]])[0] == expected
    assert not checker.segment_free((4.6, 5.0), (4.6, 5.0))
    assert checker.segment_free((4.4, 5.0), (4.4, 5.0))


def test_to_occupancy_grid_coarser_than_source():
    data = np.zeros((4, 6), dtype=np.int8)
    data[1, 2] = 100
    grid = OccupancyGrid(data=data, resolution_m=0.5, origin_xy_m=(-1.0, 0.0))
    world = World.from_occupancy_grid(grid)
    out = world.to_occupancy_grid(resolution_m=1.0)
    assert out.data.shape == (2, 3)
    assert out.origin_xy_m == (-1.0, 0.0)
    expected = np.zeros((2, 3), dtype=np.int8)
    expected[0, 1] = 100
    assert np.array_equal(out.data, expected)


def test_to_occupancy_grid_triangle():
    triangle = Polygon([(0.0, 0.0), (2.0, 0.0), (0.0, 2.0)])
    world = World(bounds_m=(0.0, 0.0, 3.0, 3.0), obstacles=[triangle])
    out = world.to_occupancy_grid(resolution_m=1.0)
    expected = np.zeros((3, 3), dtype=np.int8)
    # The hypotenuse passes through the corner (1, 1) of cell (1, 1): that cell only touches.
    expected[0, 0] = expected[0, 1] = expected[1, 0] = 100
    assert np.array_equal(out.data, expected)


def test_to_occupancy_grid_rejects_huge_grid():
    world = World(bounds_m=(0.0, 0.0, 1000.0, 1000.0), obstacles=[box(1.0, 1.0, 2.0, 2.0)])
    with pytest.raises(InvalidCoordinateError, match='coarser resolution'):
        world.to_occupancy_grid(resolution_m=0.001)


def test_inflated_obstacles_for_plots(disc_world):
    inflated = disc_world.checker(0.1).inflated_obstacles
    # The 0.2 m disc grows to about 0.3 m.
    assert inflated.area == pytest.approx(math.pi * 0.3 ** 2, rel=0.01)
    assert disc_world.checker(0.0).inflated_obstacles.area == pytest.approx(
        disc_world.obstacles[0].area)


def test_empty_and_malformed_batches(disc_world):
    checker = disc_world.checker(0.1)
    assert checker.points_free(np.zeros((0, 2))).shape == (0,)
    assert checker.segments_free([], []).shape == (0,)
    assert checker.points_free((0.0, 0.5)).tolist() == [True]
    with pytest.raises(InvalidCoordinateError, match='start_xy_m has 2 points'):
        checker.segments_free([[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.5]])
    with pytest.raises(InvalidCoordinateError, match=r'shape \(2, 3\)'):
        checker.points_free([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])


def test_to_occupancy_grid_keeps_unknown_unknown():
    data = np.array([[0, -1, 100, 40]], dtype=np.int8)
    grid = OccupancyGrid(data=data, resolution_m=1.0)
    lenient = World.from_occupancy_grid(grid, unknown_is_obstacle=False)
    # The robot may enter the unknown and graded cells, but they are not reported as free.
    assert lenient.to_occupancy_grid(resolution_m=1.0).data.tolist() == [[0, -1, 100, -1]]
    strict = World.from_occupancy_grid(grid)
    assert strict.to_occupancy_grid(resolution_m=1.0).data.tolist() == [[0, 100, 100, 100]]


def test_free_prefix_stops_before_disc(disc_world):
    checker = disc_world.checker(0.1)
    fraction = checker.free_prefix_fractions([[0.0, 0.0]], [[3.0, 0.0]])[0]
    # The disc edge is at x = 1.3 - 0.1 = 1.2 at the latest: 0.4 of the edge.
    assert 0.3 < fraction <= 0.4
    assert checker.segment_free((0.0, 0.0), (3.0 * fraction, 0.0))
    assert checker.free_prefix_fractions([[0.0, 0.5]], [[3.0, 0.5]])[0] == 1.0


def test_free_prefix_edge_cases(disc_world):
    checker = disc_world.checker(0.1)
    starts = [[1.5, 0.0], [math.nan, 0.0], [3.5, 0.5], [5.0, 0.5], [0.0, 0.5]]
    ends = [[3.0, 0.0], [1.0, 0.5], [3.5, 0.5], [6.0, 0.5], [0.0, 2.0]]
    fractions = checker.free_prefix_fractions(starts, ends)
    assert fractions[0] == 0.0      # start inside the disc
    assert fractions[1] == 0.0      # non-finite start
    assert fractions[2] == 1.0      # zero length at a free point
    assert fractions[3] == 0.0      # start outside the map
    # Heading out of the map: at most up to the inner bound y = 0.9.
    assert 0.0 < fractions[4] <= (0.9 - 0.5) / 1.5 + 1e-12
    empty = World(bounds_m=(0.0, 0.0, 10.0, 10.0)).checker(1.0)
    # The inner bound for a 1 m disc is x = 9: (9 - 5) / 15 of the way.
    assert empty.free_prefix_fractions([[5.0, 5.0]], [[20.0, 5.0]])[0] == pytest.approx(4 / 15)


def test_free_prefixes_are_free_on_warehouse(maps_dir):
    world = load_map(maps_dir / 'ros' / 'warehouse.yaml')
    checker = world.checker(0.25)
    rng = np.random.default_rng(21)
    x_min, y_min, x_max, y_max = world.bounds_m
    start = rng.uniform((x_min, y_min), (x_max, y_max), size=(3000, 2))
    start = start[checker.points_free(start)][:1000]
    end = start + rng.normal(0.0, 5.0, size=start.shape)
    fractions = checker.free_prefix_fractions(start, end)
    assert np.all((fractions >= 0.0) & (fractions <= 1.0))
    reached = start + fractions[:, None] * (end - start)
    moved = fractions > 0.0
    assert moved.mean() > 0.9
    assert np.all(exact_segments_free(checker, start[moved], reached[moved]))
    whole = fractions == 1.0
    assert np.all(checker.segments_free(start[whole], end[whole]))


def test_obstacle_point_list_becomes_polygon():
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=[[(1, 1), (2, 1), (2, 2)]])
    assert len(world.obstacles) == 1
    assert world.obstacles[0].area == pytest.approx(0.5)


@pytest.mark.parametrize('obstacle', [[(1, 1), (2, 1)], 'square', [(1, 1), (2, 'x'), (2, 2)]])
def test_unusable_obstacle_named(obstacle):
    with pytest.raises(InvalidGeometryError) as raised:
        World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=[obstacle])
    assert f"obstacle 0 of world 'world' is {obstacle!r}" in str(raised.value)
    assert 'shapely.Polygon' in str(raised.value)


def test_huge_coordinate_printed_short():
    world = World(bounds_m=(0.0, 0.0, 10.0, 10.0))
    with pytest.raises(OutOfBoundsError) as raised:
        world.require_inside((1e308, 1.0), what='goal')
    assert 'goal (1e+308, 1.000) m is outside' in str(raised.value)
