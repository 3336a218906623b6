"""Time budget: what it covers, and unreachable goals that fail before the search starts.

Wall-clock bounds here are the behaviour under test, so they allow three times the budget
plus 2 s for a loaded machine.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from shapely.geometry import box

from mapl_robotics.errors import GoalUnreachableError, PlanningTimeoutError
from mapl_robotics.geometry import World
from mapl_robotics.geometry.maps import load_map
from mapl_robotics.planning import (ALGORITHMS, PlannerSettings, plan_path, prepare_checker,
                                    rrt, shortcut_smooth)

from planning_reference import geos_path_clear


def _slack_s(budget_s: float) -> float:
    return 3.0 * budget_s + 2.0


@pytest.fixture(scope='module')
def tight_gap() -> World:
    """A wall with a gap exactly as wide as a 0.6 m robot. Touching counts as collision, so no
    path exists, but the reachability grid cannot prove it, so a search runs until its budget
    is spent."""
    walls = [box(9, 0, 10, 4.7), box(9, 5.3, 10, 10)]
    return World(bounds_m=(0, 0, 20, 10), obstacles=walls, name='tight_gap')


@pytest.fixture(scope='module')
def speckle(tmp_path_factory) -> World:
    """A 20 x 20 m map_server map at 5 cm with 2 % single occupied pixels."""
    folder = tmp_path_factory.mktemp('speckle')
    rng = np.random.default_rng(0)
    pixels = np.where(rng.random((400, 400)) < 0.02, 0, 254).astype(np.uint8)
    (folder / 'speckle.pgm').write_bytes(b'P5\n400 400\n255\n' + pixels.tobytes())
    (folder / 'speckle.yaml').write_text(
        'image: speckle.pgm\nresolution: 0.05\norigin: [0.0, 0.0, 0.0]\nnegate: 0\n'
        'occupied_thresh: 0.65\nfree_thresh: 0.196\n')
    return load_map(folder / 'speckle.yaml')


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_spent_budget_bounds_search(tight_gap, algorithm):
    checker = tight_gap.checker(0.3)
    prepare_checker(checker)
    budget_s = 0.5
    settings = PlannerSettings(algorithm=algorithm, time_budget_s=budget_s,
                               max_iterations=10_000_000)
    started_s = time.perf_counter()
    with pytest.raises(PlanningTimeoutError):
        plan_path(checker, (2, 5), (18, 5), settings=settings, rng=np.random.default_rng(0))
    assert time.perf_counter() - started_s <= _slack_s(budget_s)


@pytest.mark.parametrize('budget_s', [0.01, 0.5])
def test_speckle_map_within_budget(speckle, budget_s):
    checker = speckle.checker(0.1)
    prepare_checker(checker)
    # The first free points of a 5 cm lattice near two opposite corners.
    lattice = np.stack(np.meshgrid(np.arange(0.5, 3, 0.05), np.arange(0.5, 3, 0.05)),
                       axis=-1).reshape(-1, 2)
    start = lattice[np.flatnonzero(checker.points_free(lattice))[0]]
    goal = 20.0 - lattice[np.flatnonzero(checker.points_free(20.0 - lattice))[0]]
    settings = PlannerSettings(time_budget_s=budget_s, max_iterations=10_000_000)
    started_s = time.perf_counter()
    try:
        result = plan_path(checker, start, goal, settings=settings,
                           rng=np.random.default_rng(0))
    except PlanningTimeoutError:
        pass
    else:
        assert checker.path_free(result.xy_m)
    assert time.perf_counter() - started_s <= _slack_s(budget_s)


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_unreachable_goal_fails_before_search(algorithm):
    ring = box(10, 2, 16, 8).difference(box(11, 3, 15, 7))
    world = World(bounds_m=(0, 0, 20, 10), obstacles=[ring], name='walled_in')
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    settings = PlannerSettings(algorithm=algorithm, time_budget_s=600.0)
    with pytest.raises(GoalUnreachableError):
        plan_path(world.checker(0.3), (2, 5), (13, 5), settings=settings, rng=rng)
    # No sample was drawn, so the search never started.
    assert rng.bit_generator.state == state


def test_prepared_checker_serves_tiny_budget():
    # A fresh world: everything the first search needs is built by prepare_checker.
    world = World(bounds_m=(0, 0, 20, 10), obstacles=[box(5, 0, 6, 7), box(12, 3, 13, 10)],
                  name='fresh_two_walls')
    checker = world.checker(0.3)
    prepare_checker(checker)
    budget_s = 0.01
    started_s = time.perf_counter()
    try:
        result = plan_path(checker, (1, 1), (19, 9),
                           settings=PlannerSettings(time_budget_s=budget_s),
                           rng=np.random.default_rng(0))
    except PlanningTimeoutError:
        pass
    else:
        assert geos_path_clear(world, 0.3, result.xy_m)
    assert time.perf_counter() - started_s <= _slack_s(budget_s)


def test_smoothing_past_deadline_returns_path(two_walls):
    path = np.array([(1.0, 1.0), (5.5, 8.5), (12.5, 1.5), (19.0, 9.0)])
    checker = two_walls.checker(0.3)
    assert checker.path_free(path)
    smoothed = shortcut_smooth(checker, path, rng=np.random.default_rng(0), iterations=4,
                               deadline_s=time.perf_counter() - 1.0)
    assert np.array_equal(smoothed, path)
    unlimited = shortcut_smooth(checker, path, rng=np.random.default_rng(0), iterations=4)
    assert len(unlimited) < len(path) or not np.array_equal(unlimited, path)


@pytest.mark.parametrize('seed', range(3))
def test_compiled_chunks_do_not_change_result(two_walls, monkeypatch, seed):
    # The compiled RRT-Connect sizes its chunks from measured time, so the chunk ends vary
    # from run to run; the path and the iteration count must not.
    settings = PlannerSettings(time_budget_s=30.0)
    results = []
    for chunk_s in (1e-12, 10.0):
        monkeypatch.setattr(rrt, '_CHUNK_S', chunk_s)
        results.append(plan_path(two_walls.checker(0.3), (1, 1), (19, 9), settings=settings,
                                 rng=np.random.default_rng(seed)))
    assert np.array_equal(results[0].raw_xy_m, results[1].raw_xy_m)
    assert results[0].iterations == results[1].iterations
