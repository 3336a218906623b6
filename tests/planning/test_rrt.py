"""RRT, RRT-Connect and RRT*: exact edges, determinism, real maps and every failure type."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import Point, box

from mapl_robotics.errors import (GoalInCollisionError, GoalUnreachableError,
                                  InvalidCoordinateError, OutOfBoundsError, PlannerConfigError,
                                  PlanningError, PlanningTimeoutError, StartInCollisionError)
from mapl_robotics.geometry import World
from mapl_robotics.planning import ALGORITHMS, PlannerSettings, plan_path, search_path
from mapl_robotics.planning.edges import edges_free

from planning_reference import free_pairs, geos_path_clear

THIN_RADIUS_M = 0.1


@pytest.fixture(scope='module')
def thin_post() -> World:
    """A disc obstacle of radius 0.2 m at (1.5, 0) on the straight line from (0,0) to (3,0)."""
    return World(bounds_m=(-1, -2, 4, 2), obstacles=[Point(1.5, 0.0).buffer(0.2)],
                 name='thin_post')


def test_edge_past_thin_obstacle_rejected(thin_post):
    checker = thin_post.checker(THIN_RADIUS_M)
    assert not checker.segments_free([[0.0, 0.0]], [[3.0, 0.0]])[0]
    assert not edges_free(checker, np.array([[0.0, 0.0]]), np.array([[3.0, 0.0]]))[0]
    assert not edges_free(checker, np.array([[0.0, 0.0]]), np.array([[3.0, 0.0]]),
                          probe=False)[0]


@pytest.mark.parametrize('algorithm', ALGORITHMS)
@pytest.mark.parametrize('step_size_m', [0.05, 0.7, 3.0, 50.0])
def test_paths_avoid_thin_obstacle_for_any_step(thin_post, algorithm, step_size_m):
    settings = PlannerSettings(algorithm=algorithm, step_size_m=step_size_m,
                               max_iterations=50_000, time_budget_s=20.0,
                               rrt_star_refine_iterations=50)
    result = plan_path(thin_post.checker(THIN_RADIUS_M), (0.0, 0.0), (3.0, 0.0),
                       settings=settings, rng=np.random.default_rng(3))
    assert geos_path_clear(thin_post, THIN_RADIUS_M, result.raw_xy_m)
    assert geos_path_clear(thin_post, THIN_RADIUS_M, result.xy_m)
    assert len(result.xy_m) >= 3


def test_zero_length_edge_is_a_point_check(thin_post):
    checker = thin_post.checker(THIN_RADIUS_M)
    # 0.25 m from the post's centre: 0.05 m from its surface, closer than the radius.
    near = np.array([[1.5, 0.25]])
    assert not edges_free(checker, near, near)[0]
    far = np.array([[0.0, 1.5]])
    assert edges_free(checker, far, far)[0]


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_same_seed_same_path(two_walls, algorithm):
    settings = PlannerSettings(algorithm=algorithm, time_budget_s=30.0,
                               rrt_star_refine_iterations=100)
    checker = two_walls.checker(0.3)
    first = plan_path(checker, (1, 1), (19, 9), settings=settings,
                      rng=np.random.default_rng(42))
    second = plan_path(checker, (1, 1), (19, 9), settings=settings,
                       rng=np.random.default_rng(42))
    assert np.array_equal(first.raw_xy_m, second.raw_xy_m)
    assert np.array_equal(first.xy_m, second.xy_m)
    assert first.iterations == second.iterations


def test_different_seeds_explore_differently(two_walls):
    checker = two_walls.checker(0.3)
    settings = PlannerSettings(step_size_m=2.0)
    raws = {plan_path(checker, (1, 1), (19, 9), settings=settings,
                      rng=np.random.default_rng(seed)).raw_xy_m.tobytes()
            for seed in range(4)}
    assert len(raws) > 1


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_real_maps_paths_exactly_free(nav2_warehouse, movingai_warehouse, movingai_tasks,
                                      algorithm):
    radius_m = 0.25
    settings = PlannerSettings(algorithm=algorithm, time_budget_s=30.0,
                               rrt_star_refine_iterations=100)
    queries = [(nav2_warehouse, pair) for pair in
               free_pairs(nav2_warehouse, radius_m, count=2, seed=7, min_distance_m=15.0)]
    long_tasks = [task for task in movingai_tasks
                  if 15.0 < math.dist(task.start_xy_m, task.goal_xy_m) < 30.0][:2]
    queries += [(movingai_warehouse, np.array([task.start_xy_m, task.goal_xy_m]))
                for task in long_tasks]
    for index, (world, pair) in enumerate(queries):
        result = plan_path(world.checker(radius_m), pair[0], pair[1], settings=settings,
                           rng=np.random.default_rng(index))
        for path in (result.raw_xy_m, result.xy_m):
            assert np.array_equal(path[0], pair[0])
            assert np.array_equal(path[-1], pair[1])
            assert world.checker(radius_m).path_free(path)
            assert geos_path_clear(world, radius_m, path)
        assert result.length_m <= result.raw_length_m + 1e-9


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_straight_line_found_first(two_walls, algorithm):
    settings = PlannerSettings(algorithm=algorithm)
    result = plan_path(two_walls.checker(0.3), (1, 8), (4, 9), settings=settings,
                       rng=np.random.default_rng(0))
    assert result.iterations <= settings.connect_batch
    assert result.raw_xy_m.tolist() == [[1.0, 8.0], [4.0, 9.0]]


def test_start_in_collision(two_walls):
    with pytest.raises(StartInCollisionError) as caught:
        plan_path(two_walls.checker(0.3), (5.5, 3.0), (19, 9), rng=np.random.default_rng(0))
    assert '(5.500, 3.000)' in str(caught.value)
    assert 'radius 0.300' in str(caught.value)


def test_start_too_close_to_border(two_walls):
    with pytest.raises(StartInCollisionError):
        plan_path(two_walls.checker(0.3), (0.1, 5.0), (19, 9), rng=np.random.default_rng(0))


def test_goal_in_collision(two_walls):
    with pytest.raises(GoalInCollisionError) as caught:
        plan_path(two_walls.checker(0.3), (1, 1), (12.5, 5.0), rng=np.random.default_rng(0))
    assert '(12.500, 5.000)' in str(caught.value)


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_enclosed_goal_unreachable(algorithm):
    ring = box(10, 2, 16, 8).difference(box(11, 3, 15, 7))
    world = World(bounds_m=(0, 0, 20, 10), obstacles=[ring], name='walled_in')
    settings = PlannerSettings(algorithm=algorithm, max_iterations=400, time_budget_s=30.0)
    with pytest.raises(GoalUnreachableError) as caught:
        plan_path(world.checker(0.3), (2, 5), (13, 5), settings=settings,
                  rng=np.random.default_rng(0))
    assert 'separate free regions' in str(caught.value)


def test_gap_narrower_than_robot_unreachable():
    # Two walls leave a 0.5 m gap; a robot of radius 0.3 m (0.6 m wide) cannot pass.
    walls = [box(9, 0, 10, 4.75), box(9, 5.25, 10, 10)]
    world = World(bounds_m=(0, 0, 20, 10), obstacles=walls, name='narrow_gap')
    settings = PlannerSettings(max_iterations=400)
    with pytest.raises(GoalUnreachableError):
        plan_path(world.checker(0.3), (2, 5), (18, 5), settings=settings,
                  rng=np.random.default_rng(0))
    # A robot of radius 0.2 m fits through the same gap.
    result = plan_path(world.checker(0.2), (2, 5), (18, 5), rng=np.random.default_rng(0))
    assert geos_path_clear(world, 0.2, result.xy_m)


def test_iteration_budget_spent_is_timeout(nav2_warehouse):
    pair = free_pairs(nav2_warehouse, 0.25, count=1, seed=11, min_distance_m=30.0)[0]
    checker = nav2_warehouse.checker(0.25)
    assert not checker.segments_free(pair[:1], pair[1:])[0]
    settings = PlannerSettings(max_iterations=1, step_size_m=0.5)
    with pytest.raises(PlanningTimeoutError) as caught:
        plan_path(checker, pair[0], pair[1], settings=settings, rng=np.random.default_rng(0))
    assert 'max_iterations' in str(caught.value)
    assert isinstance(caught.value, TimeoutError)


def test_time_budget_spent_is_timeout(nav2_warehouse):
    pair = free_pairs(nav2_warehouse, 0.25, count=1, seed=11, min_distance_m=30.0)[0]
    settings = PlannerSettings(time_budget_s=1e-9)
    with pytest.raises(PlanningTimeoutError) as caught:
        search_path(nav2_warehouse.checker(0.25), pair[0], pair[1], settings=settings,
                    rng=np.random.default_rng(0))
    assert 'time_budget_s' in str(caught.value)


@pytest.mark.parametrize('bad', [(math.nan, 1.0), (1.0, math.inf), (-math.inf, 0.0)])
def test_non_finite_start_or_goal(two_walls, bad):
    checker = two_walls.checker(0.3)
    with pytest.raises(InvalidCoordinateError) as caught:
        plan_path(checker, bad, (19, 9), rng=np.random.default_rng(0))
    assert 'start' in str(caught.value)
    with pytest.raises(InvalidCoordinateError) as caught:
        plan_path(checker, (1, 1), bad, rng=np.random.default_rng(0))
    assert 'goal' in str(caught.value)


def test_start_outside_map(two_walls):
    with pytest.raises(OutOfBoundsError) as caught:
        plan_path(two_walls.checker(0.3), (-5, 1), (19, 9), rng=np.random.default_rng(0))
    assert 'outside map' in str(caught.value)


def test_failures_share_planning_error(two_walls):
    for start, goal in [((5.5, 3.0), (19, 9)), ((1, 1), (12.5, 5.0))]:
        with pytest.raises(PlanningError):
            plan_path(two_walls.checker(0.3), start, goal, rng=np.random.default_rng(0))


@pytest.mark.parametrize('bad_rng', [None, 3, np.random.RandomState(0)])
@pytest.mark.parametrize('function', [plan_path, search_path])
def test_rng_must_be_generator(two_walls, function, bad_rng):
    with pytest.raises(PlannerConfigError) as caught:
        function(two_walls.checker(0.3), (1, 1), (19, 9), settings=PlannerSettings(),
                 rng=bad_rng)
    assert function.__name__ in str(caught.value)
    assert 'numpy.random.default_rng(seed)' in str(caught.value)


@pytest.fixture(scope='module')
def serpentine() -> World:
    """A 50 x 30 m map whose 8 alternating walls leave 5 m gaps, so a path weaves 216 m."""
    walls = ([box(10 * i + 4, 0, 10 * i + 6, 25) for i in range(4)]
             + [box(10 * i + 9, 5, 10 * i + 11, 30) for i in range(4)])
    return World(bounds_m=(0, 0, 50, 30), obstacles=walls, name='serpentine')


@pytest.mark.parametrize('algorithm', ['rrt', 'rrt_star'])
@pytest.mark.parametrize('seed', range(4))
def test_serpentine_solved_within_cap(serpentine, algorithm, seed):
    # The time budget is generous because the machine may be loaded, so the iteration cap
    # decides. Samples that land in walls and steps rejected whole instead of shortened made
    # these searches take 11,000 to 15,000 iterations, and under load more than 5 s.
    settings = PlannerSettings(algorithm=algorithm, time_budget_s=60.0, max_iterations=12_000)
    result = plan_path(serpentine.checker(0.3), (1, 1), (49, 29), settings=settings,
                       rng=np.random.default_rng(seed))
    assert geos_path_clear(serpentine, 0.3, result.xy_m)
    assert result.length_m < 230.0
