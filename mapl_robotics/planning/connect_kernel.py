"""Compiled (numba) RRT-Connect for checkers whose edge checks run in compiled code.

The search is the classic RRT-Connect loop, one sample at a time: the active tree extends
towards the sample by at most ``step_m`` (or by half or a quarter of that edge when the full
one is not proven free), the other tree then takes steps of at most ``step_m`` straight
towards the new node until a step is not proven free or the trees meet, and the trees swap
roles. Every edge is checked whole by
:func:`~mapl_robotics.geometry.field_kernels.edge_code`, and only edges it proves free join a
tree, so every tree edge is free for the swept disc. Edges it leaves undecided (within the
field's error of the radius on maps without a box index) count as blocked and are counted,
so the caller can fall back to the batched search, which asks GEOS about them.

Randomness stays outside: the caller passes blocks of uniform samples drawn from its seeded
generator, so a seed gives the same trees.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from mapl_robotics.geometry.field_kernels import BLOCKED, FREE, UNDECIDED, edge_code, point_code

__all__ = ['SEARCHING', 'JOINED', 'TREE_FULL', 'NO_DISCS', 'clear_of_discs', 'connect_search',
           'warm_up']

# Statuses of connect_search.
SEARCHING = 0
JOINED = 1
TREE_FULL = 2

# The ``discs`` argument of connect_search when there are none.
NO_DISCS = np.zeros((0, 3))

# Fractions of an extension tried in order; the first proven-free one joins the tree.
_EXTEND_FRACTIONS = (1.0, 0.5, 0.25)


@numba.njit(cache=True, nogil=True)
def _nearest(xy, count, x, y):
    best = 0
    best_squared = math.inf
    for node in range(count):
        dx = xy[node, 0] - x
        dy = xy[node, 1] - y
        squared = dx * dx + dy * dy
        if squared < best_squared:
            best_squared = squared
            best = node
    return best


@numba.njit(cache=True, nogil=True)
def _steer(x0, y0, x1, y1, step_m):
    distance = math.hypot(x1 - x0, y1 - y0)
    if distance <= step_m:
        return x1, y1
    scale = step_m / distance
    return x0 + (x1 - x0) * scale, y0 + (y1 - y0) * scale


@numba.njit(cache=True, nogil=True)
def _add(xy, parent, cost, counts, tree, x, y, parent_node):
    node = counts[tree]
    xy[node, 0] = x
    xy[node, 1] = y
    parent[node] = parent_node
    cost[node] = cost[parent_node] + math.hypot(x - xy[parent_node, 0], y - xy[parent_node, 1])
    counts[tree] = node + 1
    return node


@numba.njit(cache=True, nogil=True)
def clear_of_discs(discs, x0, y0, x1, y1):
    """Return whether the segment stays out of every disc ``(centre x, centre y, radius)``.

    The test is exact: the segment is blocked when its closest point to a centre is nearer
    than that disc's radius, as in :class:`~mapl_robotics.planning.DiscAvoidingChecker`.
    """
    dx = x1 - x0
    dy = y1 - y0
    length_sq = dx * dx + dy * dy
    for disc in range(discs.shape[0]):
        cx = discs[disc, 0]
        cy = discs[disc, 1]
        fraction = 0.0
        if length_sq > 0.0:
            fraction = min(max(((cx - x0) * dx + (cy - y0) * dy) / length_sq, 0.0), 1.0)
        px = x0 + fraction * dx - cx
        py = y0 + fraction * dy - cy
        if math.sqrt(px * px + py * py) < discs[disc, 2]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def connect_search(check, discs, xy_start, parent_start, cost_start, xy_goal, parent_goal, cost_goal,
                   counts, active, samples, step_m, margin, result, best_cost):
    """Grow both trees with all the samples, recording the shortest join.

    ``discs`` (rows of centre x, centre y, radius; may have no rows) are extra keep-out
    regions that every tree edge avoids, tested exactly by :func:`clear_of_discs`.
    ``xy_*``/``parent_*``/``cost_*`` are preallocated tree arrays (position, parent index,
    path length from the root) with ``counts[0]`` (start tree) and ``counts[1]`` (goal tree)
    nodes in use, updated in place. ``active`` is the tree that
    extends first. ``best_cost[0]`` is the length of the shortest join so far (``inf`` for
    none). On return ``result`` contains ``(status, samples used, next active tree, start-tree
    node, goal-tree node, undecided edges, samples used before the first join of this call)``;
    the nodes, at the same position, are those of the shortest join and change only when a
    join beats ``best_cost[0]``, which is updated too. The status is ``JOINED`` when this call
    found a join. ``TREE_FULL`` means a tree needs more room before the remaining samples can
    be used: a sample starts only while both trees have
    room for ``margin`` more nodes (one extension plus the connect steps, which number at
    most the map diagonal over ``step_m`` plus one).
    """
    undecided = 0
    used = 0
    joined = False
    result[6] = -1
    for sample in range(samples.shape[0]):
        if counts[0] + margin > xy_start.shape[0] or counts[1] + margin > xy_goal.shape[0]:
            break
        used += 1
        qx = samples[sample, 0]
        qy = samples[sample, 1]
        if point_code(check, qx, qy) == BLOCKED or not clear_of_discs(discs, qx, qy, qx, qy):
            continue
        if active == 0:
            xy_a, parent_a, cost_a = xy_start, parent_start, cost_start
            xy_b, parent_b, cost_b = xy_goal, parent_goal, cost_goal
        else:
            xy_a, parent_a, cost_a = xy_goal, parent_goal, cost_goal
            xy_b, parent_b, cost_b = xy_start, parent_start, cost_start
        tree_b = 1 - active
        near = _nearest(xy_a, counts[active], qx, qy)
        fx = xy_a[near, 0]
        fy = xy_a[near, 1]
        tx, ty = _steer(fx, fy, qx, qy, step_m)
        new_node = -1
        for fraction in _EXTEND_FRACTIONS:
            nx = fx + fraction * (tx - fx)
            ny = fy + fraction * (ty - fy)
            code = edge_code(check, fx, fy, nx, ny)
            if code == FREE and not clear_of_discs(discs, fx, fy, nx, ny):
                code = BLOCKED
            if code == FREE:
                new_node = _add(xy_a, parent_a, cost_a, counts, active, nx, ny, near)
                break
            if code == UNDECIDED:
                undecided += 1
        if new_node >= 0:
            nx = xy_a[new_node, 0]
            ny = xy_a[new_node, 1]
            from_b = _nearest(xy_b, counts[tree_b], nx, ny)
            # Connect: straight steps from the other tree towards the new node.
            while counts[tree_b] < xy_b.shape[0]:
                bx = xy_b[from_b, 0]
                by = xy_b[from_b, 1]
                sx, sy = _steer(bx, by, nx, ny, step_m)
                code = edge_code(check, bx, by, sx, sy)
                if code == FREE and not clear_of_discs(discs, bx, by, sx, sy):
                    code = BLOCKED
                if code != FREE:
                    if code == UNDECIDED:
                        undecided += 1
                    break
                from_b = _add(xy_b, parent_b, cost_b, counts, tree_b, sx, sy, from_b)
                if sx == nx and sy == ny:
                    if not joined:
                        result[6] = used
                    joined = True
                    node_start = new_node if active == 0 else from_b
                    node_goal = from_b if active == 0 else new_node
                    cost = cost_start[node_start] + cost_goal[node_goal]
                    if cost < best_cost[0]:
                        best_cost[0] = cost
                        result[3] = node_start
                        result[4] = node_goal
                    break
        active = 1 - active
    if joined:
        result[0] = JOINED
    else:
        result[0] = TREE_FULL if used < samples.shape[0] else SEARCHING
    result[1] = used
    result[2] = active
    result[5] = undecided


_WARM_LOCK = threading.Lock()
_warm = False


def warm_up(check: tuple) -> None:
    """Compile (or load from numba's cache) :func:`connect_search` for ``check``'s types."""
    global _warm
    with _WARM_LOCK:
        if _warm:
            return
        xy = np.zeros((8, 2))
        parent = np.full(8, -1, dtype=np.int64)
        cost = np.zeros(8)
        result = np.zeros(7, dtype=np.int64)
        connect_search(check, NO_DISCS, xy, parent, cost, xy.copy(), parent.copy(), cost.copy(),
                       np.array([1, 1], dtype=np.int64), 0, np.zeros((1, 2)), 1.0, 2, result,
                       np.full(1, np.inf))
        _warm = True
