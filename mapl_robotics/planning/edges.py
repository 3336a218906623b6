"""Batched edge checks with a cheap rejection pass in front of the exact swept-disc check.

A point on an edge that collides proves the edge collides, so probing a few points per edge
with ``points_free`` rejects most blocked edges at the cost of a few look-ups each. Only the
edges whose probes are all free go to ``segments_free``, which decides them exactly. The
result is therefore exactly what ``segments_free`` alone would return; the probes only save
work on long edges, whose exact check costs grow with their length.
"""

from __future__ import annotations

import numpy as np

__all__ = ['edges_free', 'probe_segments', 'PROBE_FRACTIONS']

# Probe positions along an edge, in increasing order: RRT-Connect grows a tree up to the first
# blocked probe.
PROBE_FRACTIONS = np.array([0.25, 0.5, 0.75])
# Length of a probe piece: short enough to cost about as much as a point check.
_PROBE_PIECE_M = 1e-6


def probe_segments(start_xy_m: np.ndarray, end_xy_m: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return tiny pieces of each edge at the probe fractions, shape ``(N * P, 2)`` each.

    A piece lies on its edge, so a blocked piece proves the edge blocked. Pieces can go into
    the same ``segments_free`` call as other edges, unlike points.
    """
    delta = end_xy_m - start_xy_m
    length = np.hypot(delta[:, 0], delta[:, 1])
    with np.errstate(invalid='ignore', divide='ignore'):
        piece = np.where(length[:, None] > 0.0,
                         delta * (np.minimum(_PROBE_PIECE_M, length) / length)[:, None], 0.0)
    low = start_xy_m[:, None, :] + PROBE_FRACTIONS[None, :, None] * delta[:, None, :]
    high = low + piece[:, None, :]
    return low.reshape(-1, 2), high.reshape(-1, 2)


def edges_free(checker, start_xy_m: np.ndarray, end_xy_m: np.ndarray, *,
               probe: bool = False) -> np.ndarray:
    """Return, per edge, whether the disc swept along it is collision-free.

    ``checker`` is a :class:`~mapl_robotics.geometry.world.CollisionChecker` or any object
    with the same ``points_free`` and ``segments_free`` methods.
    """
    start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
    end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
    count = len(start)
    if count == 0:
        return np.zeros(0, dtype=bool)
    free = np.zeros(count, dtype=bool)
    # Zero-length edges are point checks. NOTE: CollisionChecker.segments_free reports some
    # zero-length segments near obstacles as free (the STRtree query misses degenerate
    # linestrings), so they never go there.
    degenerate = np.all(start == end, axis=1)
    if np.any(degenerate):
        free[degenerate] = checker.points_free(start[degenerate])
    candidate = ~degenerate
    if probe and np.any(candidate):
        index = np.flatnonzero(candidate)
        delta = end[index] - start[index]
        probes = start[index, None, :] + PROBE_FRACTIONS[None, :, None] * delta[:, None, :]
        probes_free = checker.points_free(probes.reshape(-1, 2)).reshape(index.size, -1)
        candidate[index] = probes_free.all(axis=1)
    if np.any(candidate):
        index = np.flatnonzero(candidate)
        free[index] = checker.segments_free(start[index], end[index])
    return free
