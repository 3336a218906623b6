"""Shortcut smoothing: never invalid, never longer, deterministic given the generator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from mapl_robotics.errors import PlanningError
from mapl_robotics.geometry import World
from mapl_robotics.planning import (PlannerSettings, path_length_m, remove_redundant_vertices,
                                    search_path, shortcut_smooth)

from planning_reference import geos_path_clear


def _random_world(seed: int) -> World:
    rng = np.random.default_rng(seed)
    obstacles = []
    for _ in range(8):
        x, y = rng.uniform((2, 0), (18, 10))
        width, height = rng.uniform(0.3, 3.0, size=2)
        obstacles.append(box(x, y, x + width, y + height))
    return World(bounds_m=(0, 0, 20, 10), obstacles=obstacles, name=f'random_{seed}')


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(world_seed=st.integers(0, 10_000), plan_seed=st.integers(0, 10_000),
       smooth_seed=st.integers(0, 10_000), iterations=st.integers(0, 12),
       batch=st.integers(1, 48))
def test_smoothing_keeps_path_valid_and_not_longer(world_seed, plan_seed, smooth_seed,
                                                   iterations, batch):
    world = _random_world(world_seed)
    checker = world.checker(0.25)
    start, goal = np.array([0.5, 0.5]), np.array([19.5, 9.5])
    assume(checker.point_free(start) and checker.point_free(goal))
    try:
        raw, *_ = search_path(checker, start, goal,
                              settings=PlannerSettings(step_size_m=1.5),
                              rng=np.random.default_rng(plan_seed))
    except PlanningError:
        # A random world may wall the goal off; smoothing is what this test is about.
        assume(False)
    smoothed = shortcut_smooth(checker, raw, rng=np.random.default_rng(smooth_seed),
                               iterations=iterations, batch=batch)
    assert np.array_equal(smoothed[0], start)
    assert np.array_equal(smoothed[-1], goal)
    assert path_length_m(smoothed) <= path_length_m(raw) + 1e-9
    assert geos_path_clear(world, 0.25, smoothed)


def test_smoothing_deterministic_given_generator(two_walls):
    checker = two_walls.checker(0.3)
    raw, *_ = search_path(checker, (1, 1), (19, 9), settings=PlannerSettings(step_size_m=1.0),
                          rng=np.random.default_rng(0))
    first = shortcut_smooth(checker, raw, rng=np.random.default_rng(9))
    second = shortcut_smooth(checker, raw, rng=np.random.default_rng(9))
    assert np.array_equal(first, second)


def test_smoothing_shortens_a_detour(two_walls):
    checker = two_walls.checker(0.3)
    detour = np.array([[1.0, 8.0], [1.0, 9.5], [3.0, 9.5], [3.0, 8.5], [4.0, 8.0]])
    smoothed = shortcut_smooth(checker, detour, rng=np.random.default_rng(0))
    assert smoothed.shape == (2, 2)
    assert path_length_m(smoothed) == pytest.approx(3.0)


def test_vertex_pass_keeps_needed_corners(two_walls):
    checker = two_walls.checker(0.3)
    # Around the top of the first wall (x 5..6, y 0..7): the corner vertices are needed.
    path = np.array([[4.0, 2.0], [4.5, 7.5], [6.5, 7.5], [7.0, 2.0]])
    reduced = remove_redundant_vertices(checker, path)
    assert geos_path_clear(two_walls, 0.3, reduced)
    assert len(reduced) >= 3


def test_long_path_vertex_pass(two_walls):
    checker = two_walls.checker(0.3)
    # Forty collinear-ish vertices along the free bottom corridor right of the first wall.
    xs = np.linspace(7.0, 11.5, 40)
    path = np.column_stack([xs, 1.0 + 0.2 * np.sin(xs * 5)])
    reduced = remove_redundant_vertices(checker, path)
    assert reduced.shape == (2, 2)
    assert geos_path_clear(two_walls, 0.3, reduced)
