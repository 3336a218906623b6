"""Shortcut smoothing of collision-free polylines.

Smoothing works on candidate points along the path: its vertices, plus random points on its
edges. One batched check tests the straight shortcuts between candidate points, and a shortest
path over the free shortcuts (a small DAG, because points keep their order along the path)
becomes the new path. Every edge of the result is either a checked shortcut or a piece of an
old edge, so smoothing never makes a path invalid. The old path is one of the routes the
shortest-path step can choose, so smoothing never makes it longer. Randomness comes only from
the generator passed in, so the result is deterministic given its seed.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mapl_robotics.geometry.world import CollisionChecker
from mapl_robotics.planning import smoothing_kernel
from mapl_robotics.planning.edges import edges_free

__all__ = ['path_length_m', 'shortcut_smooth', 'remove_redundant_vertices']

# Shortcuts of every length are tried while they number up to about this many. Longer paths
# try all short hops and a sparse set of long ones.
_MAX_SHORTCUTS = 256
# Compiled tightening after the shortcut rounds: at most _TIGHTEN_ROUNDS rounds, stopping once
# a round gains less than _TIGHTEN_MIN_GAIN_M, on paths of at most _TIGHTEN_MAX_VERTICES, with
# corner cuts down to _TIGHTEN_MIN_FRACTION of the legs. Finer settings gained under 0.1 m on
# the median path of bench/planning.py.
_TIGHTEN_ROUNDS = 16
_TIGHTEN_MIN_GAIN_M = 1e-2
_TIGHTEN_MAX_VERTICES = 64
_TIGHTEN_MIN_FRACTION = 0.125


def path_length_m(xy_m) -> float:
    """Return the length of a polyline in metres."""
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)))


def _without_duplicates(xy: np.ndarray) -> np.ndarray:
    """Drop repeated points; the path keeps its exact last point."""
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-12
    kept_indices = np.flatnonzero(keep)
    if len(kept_indices) > 1 and kept_indices[-1] != len(xy) - 1:
        keep[kept_indices[-1]] = False
        keep[-1] = True
    return xy[keep]


def _shortest_through_points(checker, points: np.ndarray, edge_of: np.ndarray) -> np.ndarray:
    """Return the shortest path from the first to the last point through free shortcuts.

    ``edge_of[i]`` is the index of the path edge that point ``i`` lies on (vertices count as
    the start of their outgoing edge). Consecutive points are joined by pieces of the old
    path, which are free already. Other pairs are checked in one call, except pairs on the same
    straight edge, whose shortcut is that edge itself.
    """
    count = len(points)
    span = max(2, min(count - 1, _MAX_SHORTCUTS // max(count, 1)))
    first, second = np.triu_indices(count, k=2)
    skip = second - first
    # Beyond the span, long hops of a power-of-two length and hops from the start or to the
    # end still let the shortest path skip many points at once.
    long_hop = ((skip & (skip - 1)) == 0) | (first == 0) | (second == count - 1)
    keep = ((skip <= span) | long_hop) & (edge_of[second] != edge_of[first])
    first, second = first[keep], second[keep]
    free = edges_free(checker, points[first], points[second]) if first.size else \
        np.zeros(0, dtype=bool)
    # Edge lengths computed in one numpy call, then the DAG relaxation in plain Python floats,
    # which is several times faster than numpy scalars for a few hundred edges.
    hop_length_m = np.linalg.norm(np.diff(points, axis=0), axis=1).tolist()
    reachable: list[list[tuple[int, float]]] = [[(index + 1, hop_length_m[index])]
                                                for index in range(count - 1)] + [[]]
    free_first, free_second = first[free], second[free]
    shortcut_m = np.linalg.norm(points[free_second] - points[free_first], axis=1).tolist()
    for i, j, length_m in zip(free_first.tolist(), free_second.tolist(), shortcut_m):
        reachable[i].append((j, length_m))
    best_m = [math.inf] * count
    best_m[0] = 0.0
    previous = [-1] * count
    for i in range(count - 1):
        for j, length_m in reachable[i]:
            through_m = best_m[i] + length_m
            if through_m < best_m[j] - 1e-12:
                best_m[j] = through_m
                previous[j] = i
    indices = [count - 1]
    while indices[-1] != 0:
        indices.append(previous[indices[-1]])
    return points[indices[::-1]].copy()


def remove_redundant_vertices(checker: CollisionChecker, xy_m) -> np.ndarray:
    """Return the shortest path through the path's own vertices over the free shortcuts
    between them (one batched check).

    Long paths try every short hop, but of the long hops only those from the start, to the
    end, or of a power-of-two length, to bound the work.
    """
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) <= 2:
        return xy.copy()
    return _shortest_through_points(checker, xy, np.arange(len(xy)))


def _with_edge_points(path: np.ndarray, rng: np.random.Generator, per_edge: int):
    """Return the path's vertices plus ``per_edge`` random points inside every edge, in
    order along the path, and the edge index of each point."""
    edge_count = len(path) - 1
    fractions = np.sort(rng.random((edge_count, per_edge)), axis=1)
    starts = path[:-1, None, :]
    inner = starts + fractions[:, :, None] * (path[1:, None, :] - starts)
    blocks = np.concatenate([starts, inner], axis=1).reshape(-1, 2)
    points = np.vstack([blocks, path[-1:]])
    edge_of = np.append(np.repeat(np.arange(edge_count), per_edge + 1), edge_count)
    return points, edge_of


def shortcut_smooth(checker: CollisionChecker, xy_m, *, rng: np.random.Generator,
                    iterations: int = 1, batch: int = 256,
                    deadline_s: float | None = None) -> np.ndarray:
    """Shorten a collision-free polyline with batched shortcuts.

    The path first keeps the shortest route through its own vertices. Then each of
    ``iterations`` rounds adds random points inside the edges (about ``batch`` shortcut
    candidates' worth, at least one point per edge), checks the shortcuts between all
    candidate points in one call, and keeps the shortest route through them. Each round costs
    one checker call. ``deadline_s`` is an optional absolute ``time.perf_counter()``
    deadline, checked before every round (including the compiled corner-cutting rounds).
    Once it has passed, the shortest path so far is returned, which is always collision-free.
    """
    path = _without_duplicates(np.asarray(xy_m, float))
    if _past(deadline_s):
        return path
    if iterations == 0:
        return remove_redundant_vertices(checker, path)
    for _ in range(iterations):
        if len(path) <= 2 or _past(deadline_s):
            break
        edge_count = len(path) - 1
        # Points per edge so that the pairs of candidate points number about ``batch``.
        target_points = max(int(np.sqrt(2.0 * batch)), len(path))
        per_edge = max(1, (target_points - len(path)) // edge_count)
        points, edge_of = _with_edge_points(path, rng, per_edge)
        shorter = _shortest_through_points(checker, points, edge_of)
        if path_length_m(shorter) < path_length_m(path) - 1e-9:
            path = shorter
    return _tightened(checker, path, deadline_s)


def _past(deadline_s: float | None) -> bool:
    return deadline_s is not None and time.perf_counter() >= deadline_s


def _tightened(checker, path: np.ndarray, deadline_s: float | None) -> np.ndarray:
    """Return the path after compiled corner cutting, when the checker supports it.

    The kernel runs one round per call, so the deadline is checked between rounds.
    """
    check = checker.compiled_check() if type(checker) is CollisionChecker else None
    if check is None or len(path) <= 2:
        return path
    smoothing_kernel.warm_up(check)
    length_m = path_length_m(path)
    for _ in range(_TIGHTEN_ROUNDS):
        if len(path) <= 2 or _past(deadline_s):
            break
        tight = smoothing_kernel.tighten_path(check, np.ascontiguousarray(path), 1,
                                              _TIGHTEN_MIN_GAIN_M, _TIGHTEN_MAX_VERTICES,
                                              _TIGHTEN_MIN_FRACTION)
        tight_length_m = path_length_m(tight)
        # The kernel keeps both ends, and only ever shortens; the check guards the contract.
        if tight_length_m > length_m:
            break
        gain_m = length_m - tight_length_m
        path, length_m = tight, tight_length_m
        if gain_m < _TIGHTEN_MIN_GAIN_M:
            break
    return path
