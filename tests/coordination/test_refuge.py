"""Refuge search and wish delays used by yielding robots and turn holders."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from mapl_robotics.coordination.refuge import (delayed, distance_to_path, escape_delay_s,
                                               plan_to_refuge, refuge_candidates)
from mapl_robotics.errors import GoalUnreachableError
from mapl_robotics.geometry import World
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.planning import PlannerSettings, RobotModel, plan_trajectory

# A dead-end corridor along y = 0.5 m with a passing bay above x = 4.5 to 6 m.
CORRIDOR = World(bounds_m=(0.0, 0.0, 10.0, 2.4),
                 obstacles=[box(0.0, 1.0, 4.5, 2.4), box(6.0, 1.0, 10.0, 2.4)])
ROBOT = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)
WISH_PATH = np.array([[9.5, 0.5], [0.5, 0.5]])
REQUIRED_M = 0.3 + 0.3 + 0.1


def test_distance_to_path_exact():
    path = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]]
    points = [[1.0, 1.0], [3.0, 1.0], [-1.0, 0.0], [2.0, 3.0]]
    assert distance_to_path(points, path).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_distance_to_path_degenerate():
    assert distance_to_path([[3.0, 4.0]], [[0.0, 0.0]]).tolist() == [5.0]
    # A repeated vertex (zero-length segment) is a point, not a division by zero.
    assert distance_to_path([[0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]).tolist() == [2.0]


def test_refuge_candidates_clear_the_wish():
    checker = CORRIDOR.checker(ROBOT.radius_m)
    start = np.array([0.5, 0.5])
    candidates = refuge_candidates(checker, start, wish_path_xy_m=WISH_PATH,
                                   required_m=REQUIRED_M, occupied=[], reach_m=10.0,
                                   samples=2048, rng=np.random.default_rng(3))
    assert len(candidates) > 0
    assert np.all(distance_to_path(candidates, WISH_PATH) >= REQUIRED_M)
    assert np.all(checker.points_free(candidates))
    # Only the bay is clear of a wish along the whole corridor.
    assert np.all((candidates[:, 0] > 4.5) & (candidates[:, 0] < 6.0))
    distances = np.linalg.norm(candidates - start, axis=1)
    assert np.all(np.diff(distances) >= 0.0)


def test_refuge_candidates_skip_occupied_discs():
    checker = CORRIDOR.checker(ROBOT.radius_m)
    occupied = [((5.25, 1.7), 2.0)]
    candidates = refuge_candidates(checker, (0.5, 0.5), wish_path_xy_m=WISH_PATH,
                                   required_m=REQUIRED_M, occupied=occupied, reach_m=10.0,
                                   samples=2048, rng=np.random.default_rng(3))
    assert len(candidates) == 0


def test_refuge_candidates_repeat_with_seed():
    checker = CORRIDOR.checker(ROBOT.radius_m)
    first, second = (refuge_candidates(checker, (0.5, 0.5), wish_path_xy_m=WISH_PATH,
                                       required_m=REQUIRED_M, occupied=[], reach_m=10.0,
                                       samples=512, rng=np.random.default_rng(11))
                     for _ in range(2))
    assert np.array_equal(first, second)


def test_plan_to_refuge_reaches_bay():
    rng = np.random.default_rng(5)
    settings = PlannerSettings(time_budget_s=0.5)

    def plan_to(goal_xy):
        return plan_trajectory(CORRIDOR, ROBOT, (0.5, 0.5), goal_xy, t_start_s=0.0, rng=rng,
                               settings=settings)

    plan = plan_to_refuge(plan_to, CORRIDOR.checker(ROBOT.radius_m), (0.5, 0.5),
                          wish_path_xy_m=WISH_PATH, required_m=REQUIRED_M, occupied=[],
                          rng=rng, initial_reach_m=1.2)
    assert plan is not None
    assert distance_to_path(plan.end_xy_m[None, :], WISH_PATH)[0] >= REQUIRED_M
    assert 4.5 < plan.end_xy_m[0] < 6.0


def test_plan_to_refuge_bounded_attempts():
    goals = []

    def plan_to(goal_xy):
        goals.append(goal_xy)
        raise GoalUnreachableError(f'no path to {goal_xy}')

    plan = plan_to_refuge(plan_to, CORRIDOR.checker(ROBOT.radius_m), (0.5, 0.5),
                          wish_path_xy_m=WISH_PATH, required_m=REQUIRED_M, occupied=[],
                          rng=np.random.default_rng(5), initial_reach_m=1.2, max_plans=3)
    assert plan is None
    assert 1 <= len(goals) <= 3


def test_delayed_holds_then_moves_unchanged():
    motion = Trajectory.from_samples([(1.0, 0.0, 0.0, 0.0), (3.0, 2.0, 0.0, 0.0)])
    delayed_motion = delayed(motion, 1.5)
    assert delayed_motion.start_time_s == 1.0
    assert np.allclose(delayed_motion.position_at(2.5), [0.0, 0.0])
    assert np.allclose(delayed_motion.position_at(3.5), [1.0, 0.0])
    assert delayed_motion.end_time_s == pytest.approx(4.5)
    assert delayed(motion, 0.0) is motion


def test_escape_delay_waits_for_blocker():
    wish = Trajectory.from_samples([(0.0, 9.5, 0.5, np.pi), (9.0, 0.5, 0.5, np.pi)])
    # The blocker waits at the wish's end until t = 2 s, then reaches the bay at t = 6 s.
    escape = Trajectory.from_samples([(0.0, 0.5, 0.5, 0.0), (2.0, 0.5, 0.5, 0.0),
                                      (5.0, 5.25, 0.5, 0.0), (6.0, 5.25, 1.7, 0.0)])
    delay_s = escape_delay_s(wish, 0.3, escape, 0.3, clearance_m=0.1)
    assert delay_s is not None and delay_s > 0.0
    assert escape_delay_s(wish, 0.3, escape.shifted(-100.0), 0.3, clearance_m=0.1) == 0.0
    stays = Trajectory.stationary((0.5, 0.5), t_start_s=0.0, t_end_s=1.0)
    assert escape_delay_s(wish, 0.3, stays, 0.3, clearance_m=0.1) is None
