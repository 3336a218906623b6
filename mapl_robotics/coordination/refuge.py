"""Refuges for yielding robots and the delay a turn holder's wish leaves them.

A robot asked to yield must leave the turn holder's wished path and wait where the holder
can pass. :func:`plan_to_refuge` samples free points, keeps those whose disc stays
``r_self + r_holder + clearance_m`` away from every point of the wished path, and plans to the
nearest ones. :func:`escape_delay_s` is the holder's side: the ledger can only ask a robot to
move from its next plan start on, so a wish that reaches a blocking robot before that robot
can reach a refuge leaves it no acceptable proposal. The holder delays its wish until the
blocker's estimated escape is clear of it.

Every choice here draws only from the ``numpy.random.Generator`` passed in and uses fixed
sample and attempt counts, so a seed repeats the same refuges.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Sequence

import numpy as np

from mapl_robotics.errors import PlanningError
from mapl_robotics.geometry.conflicts import find_conflict
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.geometry.world import CollisionChecker

__all__ = ['distance_to_path', 'refuge_candidates', 'plan_to_refuge', 'delayed',
           'escape_delay_s', 'occupied_ends', 'DELAY_LADDER_S']

logger = logging.getLogger(__name__)

# Delays of a wish tried by escape_delay_s, in seconds, shortest first.
DELAY_LADDER_S = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0)


def distance_to_path(points_xy_m, path_xy_m) -> np.ndarray:
    """Return the exact distance from each point to the polyline ``path_xy_m``.

    >>> distance_to_path([[1.0, 1.0], [3.0, 0.0]], [[0.0, 0.0], [2.0, 0.0]]).tolist()
    [1.0, 1.0]

    A single-vertex path is a point.
    """
    points = np.atleast_2d(np.asarray(points_xy_m, dtype=float))
    path = np.atleast_2d(np.asarray(path_xy_m, dtype=float))
    if len(path) == 1:
        return np.linalg.norm(points - path[0], axis=1)
    start, end = path[:-1], path[1:]
    direction = end - start
    length_sq = np.einsum('ij,ij->i', direction, direction)
    offset = points[:, None, :] - start[None, :, :]
    with np.errstate(invalid='ignore', divide='ignore'):
        u = np.where(length_sq > 0.0, np.einsum('pkj,kj->pk', offset, direction) / length_sq,
                     0.0)
    u = np.clip(u, 0.0, 1.0)
    closest = start[None, :, :] + u[:, :, None] * direction[None, :, :]
    return np.min(np.linalg.norm(points[:, None, :] - closest, axis=2), axis=1)


def refuge_candidates(checker: CollisionChecker, start_xy_m, *, wish_path_xy_m,
                      required_m: float, occupied: Sequence[tuple[Sequence[float], float]],
                      reach_m: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Return free points within ``reach_m`` of the start that clear the wished path.

    A candidate is inside the world bounds, free of static obstacles for ``checker``'s
    radius, at least ``required_m`` from every point of ``wish_path_xy_m`` and outside every
    ``(centre_xy_m, distance_m)`` disc of ``occupied`` (where other robots end up). The result
    is sorted by Euclidean distance from the start, nearest first.
    """
    start = np.asarray(start_xy_m, dtype=float)
    x_min, y_min, x_max, y_max = checker.world.bounds_m
    points = start + rng.uniform(-reach_m, reach_m, size=(samples, 2))
    points = points[(points[:, 0] > x_min) & (points[:, 0] < x_max)
                    & (points[:, 1] > y_min) & (points[:, 1] < y_max)]
    if len(points):
        points = points[distance_to_path(points, wish_path_xy_m) >= required_m]
    for centre_xy_m, distance_m in occupied:
        if not len(points):
            break
        points = points[np.linalg.norm(points - np.asarray(centre_xy_m, dtype=float),
                                       axis=1) >= distance_m]
    if len(points):
        points = points[checker.points_free(points)]
    order = np.argsort(np.linalg.norm(points - start, axis=1), kind='stable')
    return points[order]


def plan_to_refuge(plan_to: Callable[[np.ndarray], Trajectory], checker: CollisionChecker,
                   start_xy_m, *, wish_path_xy_m, required_m: float,
                   occupied: Sequence[tuple[Sequence[float], float]],
                   rng: np.random.Generator, initial_reach_m: float,
                   samples_per_round: int = 512, plans_per_round: int = 2,
                   max_plans: int = 6) -> Trajectory | None:
    """Plan to the nearest reachable refuge that clears the wished path, or return None.

    Each round samples ``samples_per_round`` points within a reach that doubles from
    ``initial_reach_m`` until it covers the world, and calls ``plan_to(goal_xy_m)`` on the
    nearest ``plans_per_round`` candidates not tried yet (``plan_to`` raises
    :class:`~mapl_robotics.errors.PlanningError` when it finds no plan). At most ``max_plans``
    plans are tried in all. Candidates closer than one robot radius to a tried one count as
    tried.
    """
    x_min, y_min, x_max, y_max = checker.world.bounds_m
    world_reach_m = float(np.hypot(x_max - x_min, y_max - y_min))
    reach_m = max(float(initial_reach_m), 1e-3)
    tried: list[np.ndarray] = []
    last_round = False
    while not last_round and len(tried) < max_plans:
        last_round = reach_m >= world_reach_m
        candidates = refuge_candidates(checker, start_xy_m, wish_path_xy_m=wish_path_xy_m,
                                       required_m=required_m, occupied=occupied,
                                       reach_m=reach_m, samples=samples_per_round, rng=rng)
        planned = 0
        for goal_xy in candidates:
            if planned >= plans_per_round or len(tried) >= max_plans:
                break
            if any(np.hypot(*(goal_xy - other)) < checker.radius_m for other in tried):
                continue
            tried.append(goal_xy)
            planned += 1
            try:
                return plan_to(goal_xy)
            except PlanningError as error:
                logger.debug('no plan to refuge %s: %s', goal_xy.tolist(), error)
        reach_m *= 2.0
    return None


def delayed(trajectory: Trajectory, delay_s: float) -> Trajectory:
    """Return ``trajectory`` held at its first pose for ``delay_s`` seconds, then unchanged."""
    if delay_s <= 0.0:
        return trajectory
    first = trajectory.to_list()[0]
    return Trajectory.from_samples([first] + trajectory.shifted(delay_s).to_list())


def escape_delay_s(wish: Trajectory, wish_radius_m: float, blocker_motion: Trajectory,
                   blocker_radius_m: float, *, clearance_m: float) -> float | None:
    """Return the shortest delay of :data:`DELAY_LADDER_S` after which ``wish`` keeps clear of
    ``blocker_motion`` (the blocker's committed motion followed by its escape), or None."""
    for delay in DELAY_LADDER_S:
        if find_conflict(delayed(wish, delay), wish_radius_m, blocker_motion, blocker_radius_m,
                         clearance_m=clearance_m, t_start_s=wish.start_time_s) is None:
            return delay
    return None


def occupied_ends(committed: Mapping[str, tuple[Trajectory, float]], *, radius_m: float,
                  clearance_m: float) -> list[tuple[np.ndarray, float]]:
    """Return ``(end_xy_m, distance_m)`` discs that a robot of ``radius_m`` cannot wait in,
    one per committed trajectory."""
    return [(trajectory.end_xy_m, radius_m + other_radius_m + clearance_m)
            for trajectory, other_radius_m in committed.values()]
