"""Shortcut smoothing of collision-free polylines.

Every replacement edge is checked whole with the exact swept-disc check before it is used, and
a replacement is applied only when it shortens the path, so smoothing never makes a path
invalid or longer. Randomness comes only from the generator passed in, so the result is
deterministic given its seed.
"""

from __future__ import annotations

import numpy as np

from mapl_robotics.geometry.world import CollisionChecker

__all__ = ['path_length_m', 'shortcut_smooth', 'remove_redundant_vertices']

# A shortcut must save more than this to be applied; it stops endless tiny rewrites.
_MIN_GAIN_M = 1e-6


def path_length_m(xy_m) -> float:
    """Return the length of a polyline in metres."""
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)))


def remove_redundant_vertices(checker: CollisionChecker, xy_m) -> np.ndarray:
    """Skip vertices greedily: from each kept vertex jump to the farthest one in direct reach.

    One batched check per kept vertex tests the edges to all later vertices.
    """
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) <= 2:
        return xy.copy()
    kept = [0]
    current = 0
    last = len(xy) - 1
    while current < last:
        candidates = np.arange(current + 2, last + 1)
        if candidates.size == 0:
            current += 1
            kept.append(current)
            continue
        free = checker.segments_free(np.broadcast_to(xy[current], (candidates.size, 2)),
                                     xy[candidates])
        reachable = candidates[free]
        current = int(reachable.max()) if reachable.size else current + 1
        kept.append(current)
    return xy[kept].copy()


def _points_at(xy: np.ndarray, cumulative: np.ndarray, arc_m: np.ndarray):
    """Return the points at arc lengths ``arc_m`` and the index of the edge each lies on."""
    edge = np.clip(np.searchsorted(cumulative, arc_m, side='right') - 1, 0, len(xy) - 2)
    edge_length = cumulative[edge + 1] - cumulative[edge]
    with np.errstate(invalid='ignore', divide='ignore'):
        fraction = np.where(edge_length > 0.0, (arc_m - cumulative[edge]) / edge_length, 0.0)
    points = xy[edge] + fraction[:, None] * (xy[edge + 1] - xy[edge])
    return points, edge


def shortcut_smooth(checker: CollisionChecker, xy_m, *, rng: np.random.Generator,
                    iterations: int = 40, batch: int = 16) -> np.ndarray:
    """Shorten a collision-free polyline with batched random shortcuts.

    The path first loses every vertex it can skip. Then each of ``iterations`` rounds draws
    ``batch`` random pairs of points along the path (anywhere on its edges, not only at
    vertices), checks all candidate shortcuts in one call, and applies the free one that saves
    the most length. A final vertex pass removes vertices the shortcuts made redundant.
    """
    path = remove_redundant_vertices(checker, xy_m)
    for _ in range(iterations):
        if len(path) <= 2:
            break
        cumulative = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0),
                                                                     axis=1))])
        total_m = cumulative[-1]
        arcs = np.sort(rng.random((batch, 2)) * total_m, axis=1)
        first, first_edge = _points_at(path, cumulative, arcs[:, 0])
        second, second_edge = _points_at(path, cumulative, arcs[:, 1])
        gain_m = (arcs[:, 1] - arcs[:, 0]) - np.linalg.norm(second - first, axis=1)
        # Two points on the same edge are already joined by a straight line.
        useful = (gain_m > _MIN_GAIN_M) & (second_edge > first_edge)
        if not np.any(useful):
            continue
        index = np.flatnonzero(useful)
        free = checker.segments_free(first[index], second[index])
        if not np.any(free):
            continue
        winners = index[free]
        best = int(winners[np.argmax(gain_m[winners])])
        path = np.vstack([path[:first_edge[best] + 1], first[best][None, :],
                          second[best][None, :], path[second_edge[best] + 1:]])
        keep = np.ones(len(path), dtype=bool)
        keep[1:] = np.linalg.norm(np.diff(path, axis=0), axis=1) > 1e-12
        path = path[keep]
    return remove_redundant_vertices(checker, path)
