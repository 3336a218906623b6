"""Shortcut smoothing of collision-free polylines.

Every replacement edge is checked whole with the exact swept-disc check before it is used, and
a replacement is applied only when it shortens the path, so smoothing never makes a path
invalid or longer. Randomness comes only from the generator passed in, so the result is
deterministic given its seed.
"""

from __future__ import annotations

import numpy as np

from mapl_robotics.geometry.world import CollisionChecker
from mapl_robotics.planning.edges import edges_free

__all__ = ['path_length_m', 'shortcut_smooth', 'remove_redundant_vertices']

# A shortcut must save more than this to be applied; it stops endless tiny rewrites.
_MIN_GAIN_M = 1e-6


def path_length_m(xy_m) -> float:
    """Return the length of a polyline in metres."""
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)))


# Paths with at most this many vertices get the all-pairs visibility pass in one call.
_ALL_PAIRS_MAX_VERTICES = 16


def remove_redundant_vertices(checker: CollisionChecker, xy_m) -> np.ndarray:
    """Drop every vertex that a direct edge can skip.

    Short paths check all vertex pairs in one call and keep the shortest path through the
    vertices over the free pairs (a shortest path in a small DAG). Longer paths jump
    greedily from each kept vertex to the farthest vertex in direct reach, one call per kept
    vertex.
    """
    xy = np.asarray(xy_m, dtype=float)
    count = len(xy)
    if count <= 2:
        return xy.copy()
    if count <= _ALL_PAIRS_MAX_VERTICES:
        return _shortest_through_vertices(checker, xy)
    kept = [0]
    current = 0
    last = count - 1
    while current < last:
        candidates = np.arange(current + 2, last + 1)
        if candidates.size == 0:
            current += 1
            kept.append(current)
            continue
        free = edges_free(checker, np.broadcast_to(xy[current], (candidates.size, 2)),
                          xy[candidates])
        reachable = candidates[free]
        current = int(reachable.max()) if reachable.size else current + 1
        kept.append(current)
    return xy[kept].copy()


def _shortest_through_vertices(checker: CollisionChecker, xy: np.ndarray) -> np.ndarray:
    count = len(xy)
    first, second = np.triu_indices(count, k=2)
    free = edges_free(checker, xy[first], xy[second])
    # Edges of the path itself are free already.
    reachable = {i: [i + 1] for i in range(count - 1)}
    for i, j in zip(first[free].tolist(), second[free].tolist()):
        reachable[i].append(j)
    best_m = np.full(count, np.inf)
    best_m[0] = 0.0
    previous = np.full(count, -1)
    for i in range(count - 1):
        for j in reachable[i]:
            length_m = best_m[i] + float(np.hypot(*(xy[j] - xy[i])))
            if length_m < best_m[j]:
                best_m[j] = length_m
                previous[j] = i
    indices = [count - 1]
    while indices[-1] != 0:
        indices.append(int(previous[indices[-1]]))
    return xy[indices[::-1]].copy()


def _points_at(xy: np.ndarray, cumulative: np.ndarray, arc_m: np.ndarray):
    """Return the points at arc lengths ``arc_m`` and the index of the edge each lies on."""
    edge = np.clip(np.searchsorted(cumulative, arc_m, side='right') - 1, 0, len(xy) - 2)
    edge_length = cumulative[edge + 1] - cumulative[edge]
    with np.errstate(invalid='ignore', divide='ignore'):
        fraction = np.where(edge_length > 0.0, (arc_m - cumulative[edge]) / edge_length, 0.0)
    points = xy[edge] + fraction[:, None] * (xy[edge + 1] - xy[edge])
    return points, edge


def _without_duplicates(xy: np.ndarray) -> np.ndarray:
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-12
    return xy[keep]


def _splice(path: np.ndarray, shortcuts: list[tuple]) -> np.ndarray:
    """Replace the path between each shortcut's two points by a straight edge.

    ``shortcuts`` holds ``(arc_1, arc_2, point_1, point_2, edge_1, edge_2)`` tuples whose
    arc intervals do not overlap.
    """
    pieces = []
    next_vertex = 0
    for _, _, point_1, point_2, edge_1, edge_2 in sorted(shortcuts, key=lambda item: item[0]):
        pieces.append(path[next_vertex:edge_1 + 1])
        pieces.append(np.vstack([point_1, point_2]))
        next_vertex = edge_2 + 1
    pieces.append(path[next_vertex:])
    return _without_duplicates(np.vstack(pieces))


def shortcut_smooth(checker: CollisionChecker, xy_m, *, rng: np.random.Generator,
                    iterations: int = 8, batch: int = 32) -> np.ndarray:
    """Shorten a collision-free polyline with batched random shortcuts.

    Each of ``iterations`` rounds draws ``batch`` random pairs of points along the path
    (anywhere on its edges, not only at vertices), checks all candidate shortcuts in one call,
    and applies the free ones that save the most length, as long as their stretches of path do
    not overlap. A final pass removes every vertex a direct edge can skip.
    """
    path = remove_redundant_vertices(checker, _without_duplicates(np.asarray(xy_m, float)))
    for _ in range(iterations):
        if len(path) <= 2:
            break
        cumulative = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0),
                                                                     axis=1))])
        arcs = np.sort(rng.random((batch, 2)) * cumulative[-1], axis=1)
        first, first_edge = _points_at(path, cumulative, arcs[:, 0])
        second, second_edge = _points_at(path, cumulative, arcs[:, 1])
        gain_m = (arcs[:, 1] - arcs[:, 0]) - np.linalg.norm(second - first, axis=1)
        # Two points on the same edge are already joined by a straight line.
        useful = (gain_m > _MIN_GAIN_M) & (second_edge > first_edge)
        if not np.any(useful):
            continue
        index = np.flatnonzero(useful)
        free = edges_free(checker, first[index], second[index])
        winners = index[free]
        if winners.size == 0:
            continue
        chosen: list[tuple] = []
        for candidate in winners[np.argsort(-gain_m[winners], kind='stable')].tolist():
            low, high = arcs[candidate]
            if all(high < other[0] or low > other[1] for other in chosen):
                chosen.append((low, high, first[candidate], second[candidate],
                               int(first_edge[candidate]), int(second_edge[candidate])))
        path = _splice(path, chosen)
    return remove_redundant_vertices(checker, path)
