"""Compiled RRT-Connect and path tightening: exact paths on box and polygon worlds."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Point, box

from mapl_robotics.geometry import World
from mapl_robotics.planning import PlannerSettings, plan_path
from mapl_robotics.planning import smoothing_kernel

from planning_reference import geos_path_clear


def _slalom() -> World:
    walls = [box(4.0, 0.0, 4.5, 7.0), box(9.0, 3.0, 9.5, 10.0), box(14.0, 0.0, 14.5, 7.0)]
    return World(bounds_m=(0.0, 0.0, 20.0, 10.0), obstacles=walls)


def test_slalom_paths_exact_and_tight():
    world = _slalom()
    checker = world.checker(0.3)
    for seed in range(5):
        result = plan_path(checker, (1.0, 1.0), (19.0, 9.0), settings=PlannerSettings(),
                           rng=np.random.default_rng(seed))
        assert geos_path_clear(world, 0.3, result.raw_xy_m)
        assert geos_path_clear(world, 0.3, result.xy_m)
        assert result.length_m <= result.raw_length_m + 1e-9
        # A loose bound on a taut path, which bends round the three wall ends.
        assert result.length_m < 32.0


def test_polygon_world_without_box_index():
    discs = [Point(x, y).buffer(0.8) for x, y in ((5, 5), (10, 3), (10, 7), (15, 5))]
    world = World(bounds_m=(0.0, 0.0, 20.0, 10.0), obstacles=discs)
    assert world.box_index() is None
    checker = world.checker(0.4)
    for seed in range(5):
        result = plan_path(checker, (1.0, 5.0), (19.0, 5.0), rng=np.random.default_rng(seed))
        assert geos_path_clear(world, 0.4, result.xy_m)


def test_tighten_keeps_ends_and_never_lengthens():
    world = _slalom()
    checker = world.checker(0.3)
    path = np.array([[1.0, 1.0], [2.0, 8.5], [6.0, 8.5], [7.0, 1.5], [12.0, 1.5],
                     [11.0, 8.5], [16.0, 8.5], [19.0, 9.0]])
    assert checker.path_free(path)
    tight = smoothing_kernel.tighten_path(checker.compiled_check(), path, 16, 1e-2, 64, 0.125)
    assert np.array_equal(tight[0], path[0])
    assert np.array_equal(tight[-1], path[-1])
    assert geos_path_clear(world, 0.3, tight)
    length = np.sum(np.linalg.norm(np.diff(tight, axis=0), axis=1))
    assert length < np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))
