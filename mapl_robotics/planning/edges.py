"""Batched edge checks, and probes that reject long blocked edges cheaply.

A collision-free edge has only collision-free sub-segments, so a blocked probe (a point, or a
tiny piece of the edge) proves the edge blocked. Probing a long edge costs about as much as a
point check, while the exact swept-disc check of the whole edge costs more the longer it is.
Probes only ever reject. An edge counts as free only after ``segments_free`` returns free for
the whole edge, so the results are exactly those of ``segments_free`` alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ['edges_free', 'probe_segments', 'PROBE_FRACTIONS']

# Probe positions along an edge, in increasing order; RRT-Connect grows a tree up to the first
# blocked probe. On both warehouse maps of bench/planning.py one midpoint probe gave as many
# joins as three, with fewer checks.
PROBE_FRACTIONS = np.array([0.5])
# Length of a probe piece: short enough to cost about as much as a point check.
_PROBE_PIECE_M = 1e-6


def probe_segments(start_xy_m: np.ndarray, end_xy_m: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return tiny pieces of each edge at the probe fractions, shape ``(N * P, 2)`` each.

    A piece lies on its edge, so a blocked piece proves the edge blocked. Unlike points,
    pieces can go into the same ``segments_free`` call as other edges.
    """
    delta = end_xy_m - start_xy_m
    length = np.hypot(delta[:, 0], delta[:, 1])
    with np.errstate(invalid='ignore', divide='ignore'):
        piece = np.where(length[:, None] > 0.0,
                         delta * (np.minimum(_PROBE_PIECE_M, length) / length)[:, None], 0.0)
    low = start_xy_m[:, None, :] + PROBE_FRACTIONS[None, :, None] * delta[:, None, :]
    high = low + piece[:, None, :]
    return low.reshape(-1, 2), high.reshape(-1, 2)


def edges_free(checker, start_xy_m, end_xy_m, *, probe: bool = False) -> np.ndarray:
    """Return, per edge, whether the disc swept along it is collision-free.

    ``checker`` is a :class:`~mapl_robotics.geometry.world.CollisionChecker` or any object with
    the same ``points_free`` and ``segments_free`` methods. Zero-length edges are point checks.
    With ``probe``, one ``points_free`` call first rejects edges whose probe points collide,
    and only the rest go to ``segments_free``: two calls instead of one, worth it only when
    many long edges are expected to be blocked.
    """
    start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
    end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
    count = len(start)
    free = np.zeros(count, dtype=bool)
    if count == 0:
        return free
    degenerate = np.all(start == end, axis=1)
    if not probe and not np.any(degenerate):
        return checker.segments_free(start, end)
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
