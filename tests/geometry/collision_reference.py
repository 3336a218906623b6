"""Reference results computed with shapely alone, for comparing the fast collision checks."""

from __future__ import annotations

import numpy as np
import shapely

from mapl_robotics.geometry.world import CollisionChecker


def _inside_inner_bounds(checker: CollisionChecker, xy: np.ndarray) -> np.ndarray:
    x_min, y_min, x_max, y_max = checker.world.bounds_m
    r = checker.radius_m
    finite = np.all(np.isfinite(xy), axis=1)
    return (finite & (xy[:, 0] >= x_min + r) & (xy[:, 0] <= x_max - r)
            & (xy[:, 1] >= y_min + r) & (xy[:, 1] <= y_max - r))


_UNIONS: dict[int, object] = {}


def _union(world):
    """Return the union of the world's obstacles, computed once per world object."""
    key = id(world)
    if key not in _UNIONS or _UNIONS[key][0] is not world:
        _UNIONS[key] = (world, shapely.union_all(list(world.obstacles)))
    return _UNIONS[key][1]


def _blocked(checker: CollisionChecker, geometries: np.ndarray) -> np.ndarray:
    """Return whether each geometry comes closer than the radius to an obstacle."""
    if not checker.world.obstacles:
        return np.zeros(len(geometries), dtype=bool)
    union = _union(checker.world)
    # GEOS divides by squared segment lengths, which underflow for lengths near 1e-200; the
    # flag it raises does not change the comparison.
    with np.errstate(divide='ignore', invalid='ignore'):
        if checker.radius_m > 0.0:
            return shapely.distance(geometries, union) < checker.radius_m
        return shapely.intersects(geometries, union)


def exact_segments_free(checker: CollisionChecker, start, end) -> np.ndarray:
    """Return per segment: both ends inside the inner bounds, no obstacle within the radius."""
    start = np.asarray(start, dtype=float)
    end = np.asarray(end, dtype=float)
    free = _inside_inner_bounds(checker, start) & _inside_inner_bounds(checker, end)
    lines = shapely.linestrings(np.stack([start, end], axis=1))
    return free & ~_blocked(checker, lines)


def exact_points_free(checker: CollisionChecker, xy) -> np.ndarray:
    """Return per point: inside the inner bounds, no obstacle within the radius."""
    xy = np.asarray(xy, dtype=float)
    return _inside_inner_bounds(checker, xy) & ~_blocked(checker, shapely.points(xy))
