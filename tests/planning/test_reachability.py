"""The unreachability test is sound: it never calls a reachable goal unreachable."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from mapl_robotics.errors import PlanningError
from mapl_robotics.geometry import World
from mapl_robotics.planning import PlannerSettings, search_path
from mapl_robotics.planning.reachability import ReachabilityGrid, reachability_grid


def test_walled_in_goal_disconnected():
    ring = box(10, 2, 16, 8).difference(box(11, 3, 15, 7))
    world = World(bounds_m=(0, 0, 20, 10), obstacles=[ring])
    grid = reachability_grid(world.checker(0.3))
    assert grid.provably_disconnected((2, 5), (13, 5))
    assert not grid.provably_disconnected((2, 5), (18, 9))
    assert reachability_grid(world.checker(0.3)) is grid


def test_gap_decides_by_radius():
    walls = [box(9, 0, 10, 4.75), box(9, 5.25, 10, 10)]
    world = World(bounds_m=(0, 0, 20, 10), obstacles=walls)
    assert ReachabilityGrid(world.checker(0.3)).provably_disconnected((2, 5), (18, 5))
    assert not ReachabilityGrid(world.checker(0.2)).provably_disconnected((2, 5), (18, 5))


def test_point_robot_in_box_cells():
    ring = box(10, 2, 16, 8).difference(box(11, 3, 15, 7))
    world = World(bounds_m=(0, 0, 20, 10), obstacles=[ring])
    assert ReachabilityGrid(world.checker(0.0)).provably_disconnected((2, 5), (13, 5))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), radius_m=st.floats(0.0, 0.6))
def test_found_paths_never_called_disconnected(seed, radius_m):
    rng = np.random.default_rng(seed)
    obstacles = []
    for _ in range(12):
        x, y = rng.uniform((0, 0), (19, 9))
        width, height = rng.uniform(0.2, 2.5, size=2)
        obstacles.append(box(x, y, x + width, y + height))
    world = World(bounds_m=(0, 0, 20, 10), obstacles=obstacles)
    checker = world.checker(radius_m)
    pair = rng.uniform((0, 0), (20, 10), size=(2, 2))
    if not np.all(checker.points_free(pair)):
        return
    try:
        search_path(checker, pair[0], pair[1], settings=PlannerSettings(max_iterations=3000),
                    rng=np.random.default_rng(seed))
    except PlanningError:
        return
    assert not ReachabilityGrid(checker).provably_disconnected(pair[0], pair[1])
