"""Batched edge checks with a cheap rejection pass in front of the exact swept-disc check.

A point on an edge that collides proves the edge collides, so probing a few points per edge
with ``points_free`` rejects most blocked edges at the cost of a few look-ups each. Only the
edges whose probes are all free go to ``segments_free``, which decides them exactly. The
result is therefore exactly what ``segments_free`` alone would return; the probes only save
work on long edges, whose exact check costs grow with their length.
"""

from __future__ import annotations

import numpy as np

__all__ = ['edges_free']

# Probe fractions: midpoint first, then quarters, then eighths (the order does not matter for
# the result, only for readability).
_PROBE_FRACTIONS = np.array([4, 2, 6, 1, 3, 5, 7]) / 8.0


def edges_free(checker, start_xy_m: np.ndarray, end_xy_m: np.ndarray, *,
               probe: bool = True) -> np.ndarray:
    """Return, per edge, whether the disc swept along it is collision-free.

    ``checker`` is a :class:`~mapl_robotics.geometry.world.CollisionChecker` or any object
    with the same ``points_free`` and ``segments_free`` methods.
    """
    start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
    end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
    count = len(start)
    if count == 0:
        return np.zeros(0, dtype=bool)
    if not probe:
        return checker.segments_free(start, end)
    delta = end - start
    probes = (start[:, None, :] + _PROBE_FRACTIONS[None, :, None] * delta[:, None, :])
    candidate = checker.points_free(probes.reshape(-1, 2)).reshape(count, -1).all(axis=1)
    free = np.zeros(count, dtype=bool)
    if np.any(candidate):
        index = np.flatnonzero(candidate)
        free[index] = checker.segments_free(start[index], end[index])
    return free
