"""Reference checks for the planning tests that do not depend on the code under test."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString

from mapl_robotics.geometry import Trajectory, World


_UNIONS: dict[int, tuple[World, object]] = {}


def _obstacle_union(world: World):
    """Return the prepared union of the world's obstacles, computed once per world."""
    cached = _UNIONS.get(id(world))
    if cached is None or cached[0] is not world:
        union = shapely.union_all(world.obstacles)
        shapely.prepare(union)
        cached = (world, union)
        _UNIONS[id(world)] = cached
    return cached[1]


def geos_path_clear(world: World, radius_m: float, xy_m) -> bool:
    """Return whether every edge of the path keeps ``radius_m`` from all obstacles and stays
    inside the bounds shrunk by ``radius_m``, checked with plain GEOS distances."""
    xy = np.asarray(xy_m, dtype=float)
    x_min, y_min, x_max, y_max = world.bounds_m
    inside = ((xy[:, 0] >= x_min + radius_m - 1e-9) & (xy[:, 0] <= x_max - radius_m + 1e-9)
              & (xy[:, 1] >= y_min + radius_m - 1e-9) & (xy[:, 1] <= y_max - radius_m + 1e-9))
    if not np.all(inside):
        return False
    if not world.obstacles:
        return True
    union = _obstacle_union(world)
    geometry = LineString(xy) if len(xy) > 1 else shapely.Point(xy[0])
    return float(union.distance(geometry)) >= radius_m - 1e-9


def free_pairs(world: World, radius_m: float, *, count: int, seed: int,
               min_distance_m: float) -> list[np.ndarray]:
    """Return seeded random free start/goal pairs at least ``min_distance_m`` apart."""
    rng = np.random.default_rng(seed)
    checker = world.checker(radius_m)
    x_min, y_min, x_max, y_max = world.bounds_m
    pairs = []
    for _ in range(10_000):
        pair = rng.uniform((x_min, y_min), (x_max, y_max), size=(2, 2))
        if np.hypot(*(pair[1] - pair[0])) >= min_distance_m and np.all(
                checker.points_free(pair)):
            pairs.append(pair)
            if len(pairs) == count:
                break
    return pairs


def finite_difference_limits(trajectory: Trajectory) -> tuple[float, float]:
    """Return the largest speed between samples and the largest acceleration between
    consecutive sample intervals (velocity change over the mean of the two durations)."""
    if len(trajectory) < 2:
        return 0.0, 0.0
    dt = np.diff(trajectory.t_s)
    velocity = np.diff(trajectory.xy_m, axis=0) / dt[:, None]
    speed = float(np.max(np.linalg.norm(velocity, axis=1)))
    if len(dt) < 2:
        # From rest, through one interval, to rest.
        return speed, float(np.linalg.norm(velocity[0]) / (dt[0] / 2.0))
    # The robot is at rest before the first and after the last sample.
    padded_velocity = np.vstack([np.zeros(2), velocity, np.zeros(2)])
    padded_dt = np.concatenate([[0.0], dt, [0.0]])
    change = np.linalg.norm(np.diff(padded_velocity, axis=0), axis=1)
    span = (padded_dt[:-1] + padded_dt[1:]) / 2.0
    return speed, float(np.max(change / span))
