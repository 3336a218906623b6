"""Space-time planning against committed robots and moving obstacles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from mapl_robotics.errors import (BlockedByTrafficError, InvalidCoordinateError,
                                  OutOfBoundsError, PlannerConfigError, StartInCollisionError)
from mapl_robotics.geometry import (ConstantVelocity, MovingObstacle, Trajectory, World,
                                    find_conflict)
from mapl_robotics.planning import (DiscAvoidingChecker, PlannerSettings, RobotModel,
                                    earliest_conflict_time, plan_trajectory)

from planning_reference import finite_difference_limits, geos_path_clear

CLEARANCE_M = 0.1


@pytest.fixture(scope='module')
def open_room() -> World:
    return World(bounds_m=(0, 0, 20, 20), obstacles=[], name='open_room')


@pytest.fixture(scope='module')
def corridor() -> World:
    """A 20 m corridor, 1.2 m wide (y 4.4 to 5.6), between two rooms."""
    return World(bounds_m=(0, 0, 30, 10),
                 obstacles=[box(5, 0, 25, 4.4), box(5, 5.6, 25, 10)], name='corridor')


def _unhindered(world, robot, start, goal):
    return plan_trajectory(world, robot, start, goal, t_start_s=0.0,
                           rng=np.random.default_rng(0))


def _assert_conflict_free(trajectory, robot, others):
    for other, radius_m in others:
        conflict = find_conflict(trajectory, robot.radius_m, other, radius_m,
                                 clearance_m=CLEARANCE_M, t_start_s=trajectory.start_time_s)
        assert conflict is None, conflict


def test_waits_for_crossing_robot(open_room, robot):
    free = _unhindered(open_room, robot, (2, 10), (18, 10))
    crossing_time_s = float(np.interp(10.0, free.xy_m[:, 0], free.t_s))
    # The other robot crosses (10, 10) at the moment we would, then leaves the room's middle.
    other = Trajectory.from_samples([(crossing_time_s - 8.0, 10.0, 2.0, math.pi / 2),
                                     (crossing_time_s + 8.0, 10.0, 18.0, math.pi / 2)])
    assert find_conflict(free, robot.radius_m, other, 0.3, clearance_m=CLEARANCE_M)
    result = plan_trajectory(open_room, robot, (2, 10), (18, 10), t_start_s=0.0,
                             rng=np.random.default_rng(0), committed={'r2': (other, 0.3)},
                             clearance_m=CLEARANCE_M)
    _assert_conflict_free(result, robot, [(other, 0.3)])
    assert geos_path_clear(open_room, robot.radius_m, result.xy_m)
    assert np.allclose(result.xy_m[0], (2, 10))
    assert np.allclose(result.xy_m[-1], (18, 10))
    assert result.end_time_s > free.end_time_s


def test_avoids_moving_obstacle(open_room, robot):
    free = _unhindered(open_room, robot, (2, 10), (18, 10))
    crossing_time_s = float(np.interp(10.0, free.xy_m[:, 0], free.t_s))
    person = MovingObstacle('person_1', 0.35, ConstantVelocity(
        start_xy_m=(10.0, 10.0 - 1.2 * crossing_time_s), velocity_mps=(0.0, 1.2)))
    horizon = PlannerSettings().horizon_s
    prediction = person.predict(0.0, horizon)
    assert find_conflict(free, robot.radius_m, prediction, 0.35, clearance_m=CLEARANCE_M)
    result = plan_trajectory(open_room, robot, (2, 10), (18, 10), t_start_s=0.0,
                             rng=np.random.default_rng(1), moving_obstacles=[person],
                             clearance_m=CLEARANCE_M)
    assert find_conflict(result, robot.radius_m, prediction, 0.35, clearance_m=CLEARANCE_M,
                         t_start_s=0.0, t_end_s=horizon) is None
    assert geos_path_clear(open_room, robot.radius_m, result.xy_m)


def test_waits_for_oncoming_robot_in_corridor(corridor, robot):
    # The other robot drives through the corridor towards us and parks in the left room,
    # clear of our start.
    other = Trajectory.from_samples([(0.0, 27.0, 5.0, math.pi), (30.0, 2.0, 8.5, math.pi)])
    result = plan_trajectory(corridor, robot, (2.0, 1.5), (28.0, 5.0), t_start_s=0.0,
                             rng=np.random.default_rng(2), committed={'r2': (other, 0.3)},
                             clearance_m=CLEARANCE_M)
    _assert_conflict_free(result, robot, [(other, 0.3)])
    assert geos_path_clear(corridor, robot.radius_m, result.xy_m)


def test_parked_robot_in_corridor_blocks(corridor, robot):
    parked = Trajectory.from_samples([(0.0, 26.0, 5.0, math.pi), (10.0, 15.0, 5.0, math.pi)])
    settings = PlannerSettings(path_attempts=2, time_budget_s=0.5, max_iterations=2_000)
    with pytest.raises(BlockedByTrafficError) as caught:
        plan_trajectory(corridor, robot, (2.0, 5.0), (28.0, 5.0), t_start_s=0.0,
                        rng=np.random.default_rng(3), settings=settings,
                        committed={'r2': (parked, 0.3), 'r3': (
                            Trajectory.stationary((2.0, 9.0), t_start_s=0.0, t_end_s=1.0),
                            0.3)})
    assert caught.value.blocking_ids == ('r2',)
    assert 'r2' in str(caught.value)
    assert 'parked' in str(caught.value)


def test_routes_around_parked_robot(open_room, robot):
    parked = Trajectory.stationary((10.0, 10.0), t_start_s=0.0, t_end_s=1.0)
    result = plan_trajectory(open_room, robot, (2, 10), (18, 10), t_start_s=5.0,
                             rng=np.random.default_rng(4), committed={'r2': (parked, 0.3)},
                             clearance_m=CLEARANCE_M)
    _assert_conflict_free(result, robot, [(parked, 0.3)])
    assert len(result.xy_m) > 2
    # Leaving before another robot arrives at its parking spot on our path is fine.


def test_goal_taken_by_parked_robot(open_room, robot):
    parked = Trajectory.from_samples([(0.0, 5.0, 5.0, 0.0), (5.0, 18.2, 10.0, 0.0)])
    with pytest.raises(BlockedByTrafficError) as caught:
        plan_trajectory(open_room, robot, (2, 10), (18, 10), t_start_s=0.0,
                        rng=np.random.default_rng(0), committed={'r2': (parked, 0.3)})
    assert caught.value.blocking_ids == ('r2',)
    assert 'choose another goal' in str(caught.value)


def test_start_already_in_conflict(open_room, robot):
    nearby = Trajectory.stationary((2.5, 10.0), t_start_s=0.0, t_end_s=10.0)
    with pytest.raises(BlockedByTrafficError) as caught:
        plan_trajectory(open_room, robot, (2, 10), (18, 10), t_start_s=1.0,
                        rng=np.random.default_rng(0), committed={'r2': (nearby, 0.3)})
    assert caught.value.blocking_ids == ('r2',)
    assert 'already in conflict' in str(caught.value)


def test_leaves_start_before_robot_parks_there(open_room, robot):
    # r2 arrives at our start at t = 30 s and parks there; we must be gone by then.
    arriving = Trajectory.from_samples([(0.0, 18.0, 2.0, 0.0), (30.0, 2.0, 10.0, 0.0)])
    result = plan_trajectory(open_room, robot, (2, 10), (18, 18), t_start_s=0.0,
                             rng=np.random.default_rng(5), committed={'r2': (arriving, 0.3)},
                             clearance_m=CLEARANCE_M)
    _assert_conflict_free(result, robot, [(arriving, 0.3)])


@pytest.mark.parametrize('offset_m', [0.0, 1e-15, 1e-12, 1e-11, 1e-10])
@pytest.mark.parametrize('drive', [
    {},
    {'drive': 'differential', 'max_yaw_rate_radps': 1.0},
    {'drive': 'differential', 'max_yaw_rate_radps': 1.0, 'min_turn_radius_m': 0.5},
])
def test_goal_almost_at_start_stays_put(two_walls, offset_m, drive):
    # An agent replanning to a goal it has practically reached gets a stationary plan.
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.8, **drive)
    parked = Trajectory.stationary((9.0, 9.0), t_start_s=0.0, t_end_s=1.0)
    result = plan_trajectory(two_walls, robot, (1.0, 1.0), (1.0 + offset_m, 1.0),
                             t_start_s=4.0, rng=np.random.default_rng(0),
                             committed={'r2': (parked, 0.3)}, start_yaw_rad=0.5)
    assert result.start_time_s == 4.0
    assert result.duration_s == 0.0
    assert result.start_xy_m.tolist() == [1.0, 1.0]
    assert np.linalg.norm(result.end_xy_m - [1.0 + offset_m, 1.0]) <= 1e-9


def test_differential_robot_plan_respects_limits(two_walls):
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.8,
                       drive='differential', max_yaw_rate_radps=1.0)
    result = plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=3.0,
                             rng=np.random.default_rng(6), start_yaw_rad=math.pi)
    speed, accel = finite_difference_limits(result)
    assert speed <= 1.0 + 1e-9
    assert accel <= 0.8 * (1 + 1e-6)
    yaw_rate = np.abs(np.diff(np.unwrap(result.yaw_rad))) / np.diff(result.t_s)
    assert np.max(yaw_rate) <= 1.0 + 1e-9
    assert math.cos(result.yaw_rad[0] - math.pi) == pytest.approx(1.0)
    assert geos_path_clear(two_walls, 0.3, result.xy_m)


def test_static_errors_pass_through(two_walls, robot):
    rng = np.random.default_rng(0)
    with pytest.raises(StartInCollisionError):
        plan_trajectory(two_walls, robot, (5.5, 3), (19, 9), t_start_s=0.0, rng=rng)
    with pytest.raises(InvalidCoordinateError):
        plan_trajectory(two_walls, robot, (math.nan, 3), (19, 9), t_start_s=0.0, rng=rng)
    with pytest.raises(OutOfBoundsError):
        plan_trajectory(two_walls, robot, (1, 1), (25, 9), t_start_s=0.0, rng=rng)
    with pytest.raises(InvalidCoordinateError):
        plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=math.inf, rng=rng)


@pytest.mark.parametrize('arguments, fragment', [
    ({'goal_xy_m': ('a', 'b')}, "goal ('a', 'b') must be two finite numbers"),
    ({'t_start_s': None}, 't_start_s=None must be a finite fleet time'),
    ({'t_start_s': True}, 't_start_s=True must be a finite fleet time'),
    ({'start_yaw_rad': math.nan}, 'start_yaw_rad=nan must be a finite heading'),
    ({'goal_xy_m': (math.nan, 1.0)}, 'goal (nan, 1.000) must be two finite numbers'),
])
def test_malformed_arguments_named(two_walls, robot, arguments, fragment):
    call = {'start_xy_m': (1.0, 1.0), 'goal_xy_m': (19.0, 9.0), 't_start_s': 0.0}
    call.update(arguments)
    with pytest.raises(InvalidCoordinateError) as raised:
        plan_trajectory(two_walls, robot, call.pop('start_xy_m'), call.pop('goal_xy_m'),
                        rng=np.random.default_rng(0), **call)
    assert fragment in str(raised.value)


@pytest.mark.parametrize('committed, fragment', [
    ({'r2': 'not a pair'}, 'must be a (Trajectory, radius_m) pair'),
    ({'r2': ([(0, 1, 1, 0)], 0.3)}, 'not a Trajectory'),
    ({'r2': (Trajectory.stationary((9, 9), t_start_s=0, t_end_s=1), -1.0)}, 'radius_m=-1.0'),
])
def test_bad_committed_entries(two_walls, robot, committed, fragment):
    with pytest.raises(PlannerConfigError) as caught:
        plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=0.0,
                        rng=np.random.default_rng(0), committed=committed)
    assert fragment in str(caught.value)


@pytest.mark.parametrize('rng', [None, 3, np.random.RandomState(0), 'seed'])
def test_rng_must_be_generator(two_walls, robot, rng):
    with pytest.raises(PlannerConfigError, match='numpy.random.default_rng'):
        plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=0.0, rng=rng)


def test_negative_clearance_rejected(two_walls, robot):
    with pytest.raises(PlannerConfigError):
        plan_trajectory(two_walls, robot, (1, 1), (19, 9), t_start_s=0.0,
                        rng=np.random.default_rng(0), clearance_m=-0.1)


def test_disc_avoiding_checker_exact(open_room):
    checker = DiscAvoidingChecker(open_room.checker(0.3), [(10.0, 10.0)], [1.0])
    assert not checker.segment_free((5, 10), (15, 10))
    assert checker.segment_free((5, 11.0), (15, 11.0))
    assert not checker.segment_free((5, 10.999), (15, 10.999))
    assert not checker.point_free((10.5, 10.5))
    assert checker.point_free((11.0, 11.0))


def test_compiled_disc_test_matches_checker(open_room):
    from mapl_robotics.planning.connect_kernel import clear_of_discs

    rng = np.random.default_rng(11)
    checker = DiscAvoidingChecker(open_room.checker(0.3), rng.uniform(2.0, 18.0, (5, 2)),
                                  rng.uniform(0.5, 2.0, 5))
    discs = checker.keep_out_discs()
    segments = rng.uniform(0.0, 20.0, (400, 4))
    segments[:50, 2:] = segments[:50, :2]
    expected = checker._segments_clear(segments[:, :2], segments[:, 2:])
    compiled = np.array([clear_of_discs(discs, *segment) for segment in segments])
    assert 0 < expected.sum() < len(expected)
    assert np.array_equal(compiled, expected)


def test_plan_around_discs_uses_compiled_search(monkeypatch):
    from mapl_robotics.planning import plan_path, rrt

    world = World(bounds_m=(0, 0, 20, 20), obstacles=[box(9.0, 14.0, 11.0, 20.0)])
    checker = DiscAvoidingChecker(world.checker(0.3), [(10.0, 10.0), (10.0, 4.0)], [3.0, 2.0])

    def no_batched(*_args, **_kwargs):
        raise AssertionError('the batched search ran')

    monkeypatch.setattr(rrt, '_batched_rrt_connect', no_batched)
    result = plan_path(checker, (2.0, 10.0), (18.0, 10.0), rng=np.random.default_rng(5),
                       settings=PlannerSettings(algorithm='rrt_connect'))
    assert checker.path_free(result.xy_m)
    assert np.allclose(result.xy_m[0], (2.0, 10.0))
    assert np.allclose(result.xy_m[-1], (18.0, 10.0))


@settings(max_examples=60, deadline=None)
@given(ax=st.floats(-5, 5), ay=st.floats(-5, 5), bx=st.floats(-5, 5), by=st.floats(-5, 5),
       cx=st.floats(-5, 5), cy=st.floats(-5, 5), delay_s=st.floats(-3, 3),
       required_m=st.floats(0.1, 3.0))
def test_earliest_conflict_matches_closest_approach(ax, ay, bx, by, cx, cy, delay_s,
                                                    required_m):
    first = Trajectory.from_samples([(0, ax, ay, 0), (2, bx, by, 0), (4, cx, cy, 0)])
    second = Trajectory.from_samples([(delay_s, cx, cy, 0), (delay_s + 3, ax, by, 0)])
    time_s = earliest_conflict_time(first, second, required_m, t_start_s=-5.0)
    conflict = find_conflict(first, 0.0, second, 0.0, clearance_m=required_m,
                             t_start_s=-5.0)
    if conflict is None:
        assert time_s is None or np.linalg.norm(
            first.position_at(time_s) - second.position_at(time_s)) >= required_m - 1e-6
    else:
        assert time_s is not None
        assert time_s <= conflict.time_s + 1e-9
        gap = np.linalg.norm(first.position_at(time_s) - second.position_at(time_s))
        assert gap <= required_m + 1e-6


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), count=st.integers(1, 3))
def test_random_traffic_conflict_free_or_blocked(open_room, seed, count):
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.8)
    rng = np.random.default_rng(seed)
    committed = {}
    for index in range(count):
        start = rng.uniform(1, 19, size=2)
        end = rng.uniform(1, 19, size=2)
        begin_s = rng.uniform(0, 10)
        duration_s = np.linalg.norm(end - start) / 0.8 + 0.1
        committed[f'r{index}'] = (Trajectory.from_arrays([begin_s, begin_s + duration_s],
                                                         [start, end]), 0.3)
    settings_ = PlannerSettings(time_budget_s=0.5, path_attempts=2)
    try:
        result = plan_trajectory(open_room, robot, (1.0, 1.0), (19.0, 19.0), t_start_s=0.0,
                                 rng=np.random.default_rng(seed), committed=committed,
                                 settings=settings_, clearance_m=CLEARANCE_M)
    except BlockedByTrafficError as error:
        assert error.blocking_ids
        assert set(error.blocking_ids) <= set(committed)
        return
    _assert_conflict_free(result, robot, list(committed.values()))
    assert geos_path_clear(open_room, robot.radius_m, result.xy_m)


def test_box_filter_keeps_every_first_conflict():
    from mapl_robotics.planning.spacetime import (_Other, _SpaceTimeProblem,
                                                  earliest_conflict_time)

    rng = np.random.default_rng(7)
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)

    def random_trajectory(t0_s):
        xy = rng.uniform(0.0, 12.0, size=(4, 2))
        t_s = t0_s + np.cumsum(rng.uniform(0.5, 3.0, size=4))
        return Trajectory.from_samples([(t, x, y, 0.0) for t, (x, y) in zip(t_s, xy)])

    for _ in range(200):
        others = [_Other(f'o{index}', random_trajectory(0.0), float(rng.uniform(0.1, 0.5)),
                         True, None) for index in range(6)]
        problem = _SpaceTimeProblem(robot, others, t_start_s=0.0, clearance_m=0.1,
                                    settings=PlannerSettings(), start_yaw_rad=None)
        candidate = random_trajectory(0.0)
        times = [earliest_conflict_time(candidate, other.trajectory, problem.required_m(other),
                                        t_start_s=0.0) for other in others]
        found = [time_s for time_s in times if time_s is not None]
        report = problem.first_conflict(candidate)
        if not found:
            assert report is None
        else:
            assert report is not None
            assert report.time_s == min(found)
