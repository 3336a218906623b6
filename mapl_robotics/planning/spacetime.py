"""Space-time planning: a trajectory that avoids the static map, predicted moving obstacles and
the trajectories other robots have committed.

The planner separates path and timing. It plans a geometric path, time-parameterizes it, and
removes conflicts by waiting at vertices (the robot is at rest at every vertex, so a wait
never breaks the speed or acceleration limits). When waiting cannot help, it plans a
different path that avoids the place where the last conflict happened. Robots parked at the
end of their committed trajectory stay there forever, so their discs are static obstacles for
the geometric search.

Conflict windows: committed robot trajectories are checked from ``t_start_s`` on, with no end,
because both robots stay at their final poses forever. Moving obstacles are predicted and
checked over ``[t_start_s, t_start_s + settings.horizon_s]`` only, because their predictions
are not meaningful beyond that.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
from typing import Iterable, Mapping

import numpy as np

from mapl_robotics.errors import (BlockedByTrafficError, GoalUnreachableError,
                                  InvalidCoordinateError, PlannerConfigError,
                                  PlanningTimeoutError)
from mapl_robotics.geometry.conflicts import conflicting_ids
from mapl_robotics.geometry.obstacles import MovingObstacle
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.geometry.world import CollisionChecker, World
from mapl_robotics.planning.curvature import RoundedPath, round_corners
from mapl_robotics.planning.models import PlannerSettings, RobotModel, require_generator
from mapl_robotics.planning.reachability import reachability_grid
from mapl_robotics.planning.rrt import plan_path, prepare_checker, validate_endpoints
from mapl_robotics.planning.timing import time_parameterize

__all__ = ['plan_trajectory', 'DiscAvoidingChecker', 'earliest_conflict_time']

_LOG = logging.getLogger(__name__)

# Waits tried at one vertex in one round of the wait search, in seconds.
_WAIT_LADDER_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Only this many vertices before the first conflict are tried as wait places per round.
_WAIT_VERTICES = 4


class DiscAvoidingChecker:
    """A collision checker that also keeps the robot out of extra circular regions.

    Wraps a :class:`~mapl_robotics.geometry.world.CollisionChecker`. A position is blocked when
    its distance to a centre is below that region's radius. A segment is blocked when its
    closest point to a centre is. Both tests are exact.
    """

    def __init__(self, base: CollisionChecker, centres_xy_m, radii_m) -> None:
        self.base = base
        self.world = base.world
        self.radius_m = base.radius_m
        self.centres_xy_m = np.asarray(centres_xy_m, dtype=float).reshape(-1, 2)
        self.radii_m = np.asarray(radii_m, dtype=float).reshape(-1)

    def _segments_clear(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        if self.centres_xy_m.size == 0:
            return np.ones(len(start), dtype=bool)
        direction = end - start
        length_sq = np.einsum('ij,ij->i', direction, direction)[:, None]
        offset = self.centres_xy_m[None, :, :] - start[:, None, :]
        with np.errstate(invalid='ignore', divide='ignore'):
            u = np.where(length_sq > 0.0,
                         np.einsum('mkj,mj->mk', offset, direction) / length_sq, 0.0)
        u = np.clip(u, 0.0, 1.0)
        closest = start[:, None, :] + u[:, :, None] * direction[:, None, :]
        distance = np.linalg.norm(closest - self.centres_xy_m[None, :, :], axis=2)
        return np.all(distance >= self.radii_m[None, :], axis=1)

    def keep_out_discs(self) -> np.ndarray:
        """Return the regions as rows of (centre x, centre y, radius) for compiled code."""
        return np.ascontiguousarray(np.column_stack([self.centres_xy_m, self.radii_m]),
                                    dtype=np.float64)

    def points_free(self, xy_m) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy_m, dtype=float))
        return self.base.points_free(xy) & self._segments_clear(xy, xy)

    def point_free(self, xy_m) -> bool:
        return bool(self.points_free(np.asarray(xy_m, dtype=float)[None, :])[0])

    def segments_free(self, start_xy_m, end_xy_m) -> np.ndarray:
        start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
        end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
        free = self.base.segments_free(start, end)
        if np.any(free):
            index = np.flatnonzero(free)
            free[index] = self._segments_clear(start[index], end[index])
        return free

    def segment_free(self, start_xy_m, end_xy_m) -> bool:
        return bool(self.segments_free(start_xy_m, end_xy_m)[0])

    def path_free(self, xy_m) -> bool:
        xy = np.asarray(xy_m, dtype=float)
        if len(xy) == 1:
            return self.point_free(xy[0])
        return bool(np.all(self.segments_free(xy[:-1], xy[1:])))


def earliest_conflict_time(candidate: Trajectory, other: Trajectory, required_m: float, *,
                           t_start_s: float, t_end_s: float | None = None) -> float | None:
    """Return the first time in the window at which the two centres are closer than
    ``required_m``, or ``None`` if they never are.

    Both motions are linear between merged breakpoints, so on each interval the squared
    distance is a quadratic in time and its first root has a closed form.
    """
    end_s = max(candidate.end_time_s, other.end_time_s) if t_end_s is None else t_end_s
    breakpoints = np.union1d(candidate.t_s, other.t_s)
    breakpoints = breakpoints[(breakpoints > t_start_s) & (breakpoints < end_s)]
    times = np.concatenate([[t_start_s], breakpoints, [end_s]]) if end_s > t_start_s else \
        np.array([t_start_s])
    relative = candidate.position_at(times) - other.position_at(times)
    required_sq = required_m * required_m
    inside = np.einsum('ij,ij->i', relative, relative) < required_sq
    if times.size == 1:
        return float(times[0]) if inside[0] else None
    d0 = relative[:-1]
    dv = relative[1:] - relative[:-1]
    a = np.einsum('ij,ij->i', dv, dv)
    b = 2.0 * np.einsum('ij,ij->i', d0, dv)
    c = np.einsum('ij,ij->i', d0, d0) - required_sq
    discriminant = b * b - 4.0 * a * c
    with np.errstate(invalid='ignore', divide='ignore'):
        root = np.where((a > 0.0) & (discriminant > 0.0),
                        (-b - np.sqrt(np.maximum(discriminant, 0.0))) / (2.0 * a), np.inf)
    enters = (root >= 0.0) & (root <= 1.0)
    hit = inside[:-1] | enters
    if not np.any(hit):
        return float(times[-1]) if inside[-1] else None
    index = int(np.argmax(hit))
    fraction = 0.0 if inside[index] else float(root[index])
    return float(times[index] + fraction * (times[index + 1] - times[index]))


@dataclasses.dataclass(frozen=True)
class _Other:
    """A robot or moving obstacle to avoid, with the window its conflicts count in."""

    other_id: str
    trajectory: Trajectory
    radius_m: float
    is_robot: bool
    t_end_s: float | None


@dataclasses.dataclass(frozen=True)
class _ConflictReport:
    other_id: str
    time_s: float
    xy_m: tuple[float, float]


class _SpaceTimeProblem:
    """The state of one :func:`plan_trajectory` call."""

    def __init__(self, robot: RobotModel, others: list[_Other], *, t_start_s: float,
                 clearance_m: float, settings: PlannerSettings,
                 start_yaw_rad: float | None) -> None:
        self.robot = robot
        self.others = others
        self.t_start_s = t_start_s
        self.clearance_m = clearance_m
        self.settings = settings
        self.start_yaw_rad = start_yaw_rad
        # Each other's bounding box, grown by the required distance. Positions between samples
        # lie on the segments between them, so a candidate whose box stays outside never comes
        # within the required distance and needs no exact check.
        self._grown_boxes = []
        for other in others:
            required_m = self.required_m(other)
            low = other.trajectory.xy_m.min(axis=0) - required_m
            high = other.trajectory.xy_m.max(axis=0) + required_m
            self._grown_boxes.append((float(low[0]), float(low[1]), float(high[0]),
                                      float(high[1])))

    def required_m(self, other: _Other) -> float:
        return self.robot.radius_m + other.radius_m + self.clearance_m

    def timed(self, path: RoundedPath, waits_s: Mapping[int, float]) -> Trajectory:
        return time_parameterize(path.xy_m, robot=self.robot, t_start_s=self.t_start_s,
                                 sample_dt_s=self.settings.sample_dt_s,
                                 corner_rule=self.settings.corner_rule,
                                 start_yaw_rad=self.start_yaw_rad, waits_s=waits_s,
                                 arc_edges=path.arc_edges)

    def first_conflict(self, trajectory: Trajectory) -> _ConflictReport | None:
        best: _ConflictReport | None = None
        low_x, low_y = (float(value) for value in trajectory.xy_m.min(axis=0))
        high_x, high_y = (float(value) for value in trajectory.xy_m.max(axis=0))
        for other, box in zip(self.others, self._grown_boxes):
            if low_x >= box[2] or high_x <= box[0] or low_y >= box[3] or high_y <= box[1]:
                continue
            time_s = earliest_conflict_time(trajectory, other.trajectory, self.required_m(other),
                                            t_start_s=self.t_start_s, t_end_s=other.t_end_s)
            if time_s is not None and (best is None or time_s < best.time_s):
                xy = trajectory.position_at(time_s)
                best = _ConflictReport(other.other_id, time_s, (float(xy[0]), float(xy[1])))
        return best

    def verified_conflicts(self, trajectory: Trajectory) -> list[str]:
        """Return the ids the shared exact check in geometry.conflicts reports."""
        found: list[str] = []
        for other in self.others:
            found += conflicting_ids(trajectory, self.robot.radius_m,
                                     {other.other_id: (other.trajectory, other.radius_m)},
                                     clearance_m=self.clearance_m, t_start_s=self.t_start_s,
                                     t_end_s=other.t_end_s)
        return found

    def vertex_arrivals_s(self, trajectory: Trajectory, path: np.ndarray) -> np.ndarray:
        """Return the first time the trajectory is at each path vertex."""
        arrivals = np.empty(len(path))
        for index, vertex in enumerate(path):
            at_vertex = np.flatnonzero(np.all(np.abs(trajectory.xy_m - vertex) < 1e-9, axis=1))
            arrivals[index] = trajectory.t_s[at_vertex[0]] if at_vertex.size else np.inf
        return arrivals

    def resolve_by_waiting(self, path: RoundedPath, deadline_s: float
                           ) -> tuple[Trajectory | None, _ConflictReport | None]:
        """Search for vertex waits that remove every conflict of the path.

        Greedy: each round tries waits at the last vertices reached before the first conflict
        and keeps the change that pushes the first conflict latest (or removes all of them,
        preferring the shortest total wait).
        """
        waits: dict[int, float] = {}
        trajectory = self.timed(path, waits)
        conflict = self.first_conflict(trajectory)
        for _ in range(self.settings.wait_rounds):
            if conflict is None or time.perf_counter() > deadline_s:
                break
            arrivals = self.vertex_arrivals_s(trajectory, path.xy_m)
            # The robot must be able to wait at the vertex before the conflict happens.
            reached = np.flatnonzero(arrivals < conflict.time_s)[-_WAIT_VERTICES:]
            budget_s = self.settings.max_wait_s - sum(waits.values())
            best = None
            for vertex in reached[::-1].tolist():
                for wait_s in _WAIT_LADDER_S:
                    if wait_s > budget_s + 1e-9:
                        break
                    trial = dict(waits)
                    trial[vertex] = trial.get(vertex, 0.0) + wait_s
                    trial_trajectory = self.timed(path, trial)
                    trial_conflict = self.first_conflict(trial_trajectory)
                    if trial_conflict is None:
                        score = (math.inf, -wait_s)
                    else:
                        score = (trial_conflict.time_s, -wait_s)
                    if best is None or score > best[0]:
                        best = (score, trial, trial_trajectory, trial_conflict)
                    if trial_conflict is None:
                        break
            if best is None or best[0][0] <= conflict.time_s + 1e-9:
                break
            _, waits, trajectory, conflict = best
        if conflict is None:
            return trajectory, None
        return None, conflict


def _collect_others(moving_obstacles: Iterable[MovingObstacle],
                    committed: Mapping[str, tuple[Trajectory, float]], *, t_start_s: float,
                    horizon_s: float) -> list[_Other]:
    others: list[_Other] = []
    for other_id, entry in committed.items():
        try:
            trajectory, radius_m = entry
        except (TypeError, ValueError) as error:
            raise PlannerConfigError(
                f'committed[{other_id!r}] must be a (Trajectory, radius_m) pair') from error
        if not isinstance(trajectory, Trajectory):
            raise PlannerConfigError(
                f'committed[{other_id!r}] contains {type(trajectory).__name__}, not a Trajectory')
        if not (math.isfinite(radius_m) and radius_m >= 0.0):
            raise PlannerConfigError(
                f'committed[{other_id!r}] radius_m={radius_m} must be a finite number >= 0')
        others.append(_Other(str(other_id), trajectory, float(radius_m), True, None))
    horizon_end_s = t_start_s + horizon_s
    for obstacle in moving_obstacles:
        prediction = obstacle.predict(t_start_s, horizon_end_s)
        others.append(_Other(str(obstacle.obstacle_id), prediction, obstacle.radius_m, False,
                             horizon_end_s))
    return others


def _describe(report: _ConflictReport, others: list[_Other]) -> str:
    other = next(item for item in others if item.other_id == report.other_id)
    kind = 'robot' if other.is_robot else 'moving obstacle'
    return (f'{kind} {report.other_id!r} at t={report.time_s:.2f} s near '
            f'({report.xy_m[0]:.2f}, {report.xy_m[1]:.2f}) m')


def _is_finite_number(value) -> bool:
    """Return whether ``value`` is a finite real number (bools excluded)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def plan_trajectory(world: World, robot: RobotModel, start_xy_m, goal_xy_m, *,
                    t_start_s: float, rng: np.random.Generator,
                    settings: PlannerSettings | None = None,
                    moving_obstacles: Iterable[MovingObstacle] = (),
                    committed: Mapping[str, tuple[Trajectory, float]] | None = None,
                    clearance_m: float = 0.1,
                    start_yaw_rad: float | None = None) -> Trajectory:
    """Plan a trajectory from ``start_xy_m`` at ``t_start_s`` to ``goal_xy_m`` that is free of
    static obstacles and keeps ``clearance_m`` from moving obstacles and committed robots.

    :param committed: ``{robot id: (trajectory, radius_m)}`` of other robots. Each stays
        parked at its last pose after its trajectory ends.
    :param moving_obstacles: obstacles whose predicted motion must be avoided over
        ``settings.horizon_s``.
    :param start_yaw_rad: current heading; a differential-drive robot turns in place first.
    :param rng: the only source of randomness, a ``numpy.random.Generator``; anything else
        raises :class:`~mapl_robotics.errors.PlannerConfigError`.

    Raises :class:`~mapl_robotics.errors.StartInCollisionError`,
    :class:`~mapl_robotics.errors.GoalInCollisionError`,
    :class:`~mapl_robotics.errors.GoalUnreachableError` or
    :class:`~mapl_robotics.errors.PlanningTimeoutError` for the static problem, and
    :class:`~mapl_robotics.errors.BlockedByTrafficError` (with ``blocking_ids``) when other
    robots or moving obstacles leave no conflict-free trajectory within the budget.
    """
    settings = PlannerSettings() if settings is None else settings
    require_generator(rng, caller='plan_trajectory')
    if not _is_finite_number(t_start_s):
        raise InvalidCoordinateError(f't_start_s={t_start_s!r} must be a finite fleet time in '
                                     'seconds')
    if start_yaw_rad is not None and not _is_finite_number(start_yaw_rad):
        raise InvalidCoordinateError(f'start_yaw_rad={start_yaw_rad!r} must be a finite heading '
                                     'in radians, or None when the heading does not matter')
    if not (_is_finite_number(clearance_m) and clearance_m >= 0.0):
        raise PlannerConfigError(f'clearance_m={clearance_m!r} must be a finite number >= 0')
    checker = world.checker(robot.radius_m)
    start, goal = validate_endpoints(checker, start_xy_m, goal_xy_m)
    padded = _padded_checker(world, checker, robot.radius_m + settings.static_margin_m,
                             start, goal)
    others = _collect_others(moving_obstacles, committed or {}, t_start_s=t_start_s,
                             horizon_s=settings.horizon_s)
    problem = _SpaceTimeProblem(robot, others, t_start_s=t_start_s, clearance_m=clearance_m,
                                settings=settings, start_yaw_rad=start_yaw_rad)
    _reject_hopeless(problem, start, goal)
    # One-off per-checker work is not part of the budget, as in plan_path.
    prepare_checker(checker)
    prepare_checker(padded)
    # The padded checker first; the bare radius only where the margin leaves no path.
    checkers = [padded, checker] if padded is not checker else [checker]
    deadline_s = time.perf_counter() + settings.time_budget_s * settings.path_attempts

    # Parked robots are permanent obstacles, except one already around the start, which the
    # robot can only leave (the timing check makes sure it leaves in time).
    parked = [(other, other.trajectory.end_xy_m) for other in others if other.is_robot]
    centres = [xy for other, xy in parked
               if np.hypot(*(xy - start)) >= problem.required_m(other)]
    radii = [problem.required_m(other) for other, xy in parked
             if np.hypot(*(xy - start)) >= problem.required_m(other)]
    last_conflict: _ConflictReport | None = None
    for attempt in range(settings.path_attempts):
        try:
            avoiding, path = _geometric_path(checkers, centres, radii, start, goal,
                                             settings=settings, rng=rng, deadline_s=deadline_s)
        except (GoalUnreachableError, PlanningTimeoutError) as error:
            if attempt > 0:
                break
            if not centres:
                raise
            _raise_if_parked_robots_block(problem, checker, start, goal, rng, error)
        rounded = round_corners(avoiding, path, robot=robot, sample_dt_s=settings.sample_dt_s)
        trajectory, conflict = problem.resolve_by_waiting(rounded, deadline_s)
        if trajectory is not None:
            remaining = problem.verified_conflicts(trajectory)
            if not remaining:
                _LOG.debug('space-time plan found on attempt %d: %.1f m, %.1f s', attempt + 1,
                           trajectory.length_m, trajectory.duration_s)
                return trajectory
            conflict = _ConflictReport(remaining[0], t_start_s, (float(start[0]),
                                                                 float(start[1])))
        last_conflict = conflict
        # Route the next attempt around the place of the conflict.
        place = np.asarray(conflict.xy_m)
        radius_m = robot.radius_m + clearance_m
        if (np.hypot(*(place - start)) > radius_m + 1e-6
                and np.hypot(*(place - goal)) > radius_m + 1e-6):
            centres.append(place)
            radii.append(radius_m)
        if time.perf_counter() > deadline_s:
            break
    blocking = sorted({last_conflict.other_id}) if last_conflict else sorted(
        other.other_id for other in others)
    reason = (_describe(last_conflict, others) if last_conflict
              else 'every alternative path was blocked')
    raise BlockedByTrafficError(
        f'no conflict-free trajectory from ({start[0]:.2f}, {start[1]:.2f}) m to '
        f'({goal[0]:.2f}, {goal[1]:.2f}) m after {settings.path_attempts} path attempts and up '
        f'to {settings.max_wait_s:.1f} s of waiting; still conflicts with {reason}. Retry later '
        'or raise max_wait_s, path_attempts or time_budget_s', blocking_ids=blocking)


def _geometric_path(checkers, centres, radii, start, goal, *, settings, rng, deadline_s):
    """Return ``(checker used, path)`` from the first checker that yields a path."""
    for index, checker in enumerate(checkers):
        avoiding = DiscAvoidingChecker(checker, centres, radii)
        try:
            return avoiding, plan_path(avoiding, start, goal, settings=settings, rng=rng,
                                       deadline_s=deadline_s).xy_m
        except (GoalUnreachableError, PlanningTimeoutError):
            if index == len(checkers) - 1:
                raise
            _LOG.debug('no path with the static margin; planning with the bare radius')
    raise AssertionError('checkers must not be empty')


def _padded_checker(world: World, checker: CollisionChecker, padded_radius_m: float,
                    start: np.ndarray, goal: np.ndarray) -> CollisionChecker:
    """Return the checker for the radius plus the static margin when it leaves the start and
    the goal free and connected, else ``checker`` (the bare radius)."""
    if padded_radius_m <= checker.radius_m:
        return checker
    padded = world.checker(padded_radius_m)
    if not (padded.point_free(start) and padded.point_free(goal)):
        _LOG.debug('start or goal within the static margin of the map; planning with the '
                   'bare radius %.3f m', checker.radius_m)
        return checker
    if reachability_grid(padded).provably_disconnected(start, goal):
        _LOG.debug('the static margin closes every route; planning with the bare radius '
                   '%.3f m', checker.radius_m)
        return checker
    return padded


def _reject_hopeless(problem: _SpaceTimeProblem, start: np.ndarray, goal: np.ndarray) -> None:
    """Raise when no timing can help: the start is taken now or the goal is taken forever."""
    for other in problem.others:
        required_m = problem.required_m(other)
        now_xy = other.trajectory.position_at(problem.t_start_s)
        if np.hypot(*(now_xy - start)) < required_m:
            kind = 'robot' if other.is_robot else 'moving obstacle'
            raise BlockedByTrafficError(
                f'start ({start[0]:.2f}, {start[1]:.2f}) m is within {required_m:.2f} m of '
                f'{kind} {other.other_id!r} at t_start_s={problem.t_start_s:.2f} s; the robot '
                'is already in conflict, so wait until it has moved away and plan again',
                blocking_ids=[other.other_id])
        if other.is_robot and np.hypot(*(other.trajectory.end_xy_m - goal)) < required_m:
            end = other.trajectory.end_xy_m
            raise BlockedByTrafficError(
                f'goal ({goal[0]:.2f}, {goal[1]:.2f}) m is within {required_m:.2f} m of '
                f'robot {other.other_id!r}, which parks at ({end[0]:.2f}, {end[1]:.2f}) m from '
                f't={other.trajectory.end_time_s:.2f} s on; choose another goal',
                blocking_ids=[other.other_id])


def _raise_if_parked_robots_block(problem: _SpaceTimeProblem, checker: CollisionChecker,
                                  start: np.ndarray, goal: np.ndarray,
                                  rng: np.random.Generator, error: Exception) -> None:
    """Tell a route closed by parked robots apart from one closed by the static map."""
    try:
        static_path = plan_path(checker, start, goal, settings=problem.settings, rng=rng).xy_m
    except (GoalUnreachableError, PlanningTimeoutError):
        raise error
    blockers = []
    for other in problem.others:
        if not other.is_robot:
            continue
        probe = DiscAvoidingChecker(checker, [other.trajectory.end_xy_m],
                                    [problem.required_m(other)])
        if not probe.path_free(static_path):
            blockers.append(other.other_id)
    blockers = sorted(blockers) or sorted(o.other_id for o in problem.others if o.is_robot)
    raise BlockedByTrafficError(
        f'the route from ({start[0]:.2f}, {start[1]:.2f}) m to ({goal[0]:.2f}, {goal[1]:.2f}) m '
        f'is blocked by robots parked at the end of their committed trajectories: '
        f'{", ".join(blockers)}; wait until they move on or choose another goal',
        blocking_ids=blockers) from error
