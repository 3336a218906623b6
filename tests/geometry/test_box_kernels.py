"""Exact box distances: the compiled checks on rectangle worlds agree with GEOS."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Polygon, box

from mapl_robotics.geometry import field_kernels
from mapl_robotics.geometry.box_kernels import BoxIndex
from mapl_robotics.geometry.world import World

from collision_reference import exact_points_free, exact_segments_free


def _box_world(rng: np.random.Generator) -> World:
    boxes = []
    for _ in range(40):
        x, y = rng.uniform((0.5, 0.5), (19.0, 9.0))
        width, height = rng.uniform(0.05, 2.0, size=2)
        boxes.append(box(x, y, min(x + width, 19.9), min(y + height, 9.9)))
    return World(bounds_m=(0.0, 0.0, 20.0, 10.0), obstacles=boxes)


def test_index_only_for_rectangles():
    rectangles = World(bounds_m=(0, 0, 10, 10), obstacles=[box(1, 1, 2, 3)])
    triangle = World(bounds_m=(0, 0, 10, 10), obstacles=[Polygon([(1, 1), (2, 1), (1, 2)])])
    with_hole = World(bounds_m=(0, 0, 10, 10), obstacles=[
        Polygon([(1, 1), (5, 1), (5, 5), (1, 5)], [[(2, 2), (3, 2), (3, 3), (2, 3)]])])
    assert rectangles.box_index() is not None
    assert triangle.box_index() is None
    assert with_hole.box_index() is None


def test_index_lists_every_overlapped_bucket():
    index = BoxIndex(np.array([[0.2, 0.2, 3.7, 0.4]]), (0.0, 0.0, 4.0, 4.0))
    bucket_m = index.grid[2]
    buckets = np.flatnonzero(np.diff(index.offsets))
    columns = buckets % index.cols
    assert np.all(buckets // index.cols == 0)
    assert columns.min() == 0
    assert columns.max() == int(3.7 // bucket_m)


def test_box_worlds_agree_with_geos(rng):
    for world_index in range(3):
        world = _box_world(rng)
        assert world.box_index() is not None
        for radius_m in (0.1, 0.3):
            checker = world.checker(radius_m)
            start = rng.uniform((0.0, 0.0), (20.0, 10.0), size=(2000, 2))
            direction = rng.uniform(0.0, 2 * np.pi, size=2000)
            length = rng.uniform(0.0, 8.0, size=2000)
            end = start + length[:, None] * np.column_stack([np.cos(direction),
                                                             np.sin(direction)])
            expected = exact_segments_free(checker, start, end)
            assert np.array_equal(checker.segments_free(start, end), expected), world_index
            assert np.array_equal(checker.points_free(start),
                                  exact_points_free(checker, start)), world_index


def test_edges_grazing_a_box_at_the_radius():
    world = World(bounds_m=(0.0, 0.0, 10.0, 4.0), obstacles=[box(4.0, 1.0, 6.0, 2.0)])
    checker = world.checker(0.5)
    # Along the top face: free at exactly the radius, blocked just inside it.
    assert checker.segments_free([[1.0, 2.5]], [[9.0, 2.5]])[0]
    assert not checker.segments_free([[1.0, 2.4999]], [[9.0, 2.4999]])[0]
    # Past the corner (6, 2) diagonally: the closest point is the corner itself.
    offset = 0.5 / np.sqrt(2.0)
    assert checker.segments_free([[6.0 + offset - 1.0, 2.0 + offset + 1.0]],
                                 [[6.0 + offset + 1.0, 2.0 + offset - 1.0]])[0]
    assert not checker.segments_free([[5.9 + offset - 1.0, 2.0 + offset + 1.0]],
                                     [[5.9 + offset + 1.0, 2.0 + offset - 1.0]])[0]


def test_edge_code_agrees_with_geos(rng):
    world = _box_world(rng)
    checker = world.checker(0.25)
    check = checker.compiled_check()
    start = rng.uniform((0.0, 0.0), (20.0, 10.0), size=(300, 2))
    end = rng.uniform((0.0, 0.0), (20.0, 10.0), size=(300, 2))
    expected = exact_segments_free(checker, start, end)
    for index in range(len(start)):
        code = field_kernels.edge_code(check, *start[index], *end[index])
        if code != field_kernels.UNDECIDED:
            assert (code == field_kernels.FREE) == expected[index], index
