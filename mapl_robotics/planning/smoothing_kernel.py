"""Compiled (numba) path tightening: vertex reduction and corner cutting.

Both steps only replace parts of a free path by edges that
:func:`~mapl_robotics.geometry.field_kernels.edge_code` proves free, or by pieces of old
edges, so the path stays free for the swept disc. Each accepted change shortens the path
(triangle inequality), so the length never grows.

- Vertex reduction: from each kept vertex, jump to the furthest later vertex whose straight
  edge is proven free.
- Corner cutting: at vertex ``v`` between ``a`` and ``b``, replace ``a-v-b`` by ``a-b`` when
  free, else by ``a-p-q-b`` with ``p = v + s (a - v)`` and ``q = v + s (b - v)`` for the
  largest ``s`` in 1/2, 1/4 and 1/8 whose edge ``p-q`` is proven free and which shortens
  the path by at least ``min_cut_m``. Repeated rounds pull the path taut around the
  obstacles it bends around.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from mapl_robotics.geometry.field_kernels import FREE, edge_code

__all__ = ['tighten_path', 'warm_up']



@numba.njit(cache=True, nogil=True)
def _length(xy, count):
    total = 0.0
    for index in range(1, count):
        total += math.hypot(xy[index, 0] - xy[index - 1, 0], xy[index, 1] - xy[index - 1, 1])
    return total


@numba.njit(cache=True, nogil=True)
def _reduce(check, xy, count, out):
    kept = 0
    out[0] = xy[0]
    kept = 1
    current = 0
    while current < count - 1:
        target = count - 1
        while target > current + 1 and edge_code(check, xy[current, 0], xy[current, 1],
                                                 xy[target, 0], xy[target, 1]) != FREE:
            target -= 1
        out[kept] = xy[target]
        kept += 1
        current = target
    return kept


@numba.njit(cache=True, nogil=True)
def _cut_corners(check, xy, count, out, capacity, min_cut_m, min_fraction):
    out[0] = xy[0]
    kept = 1
    for index in range(1, count - 1):
        ax = out[kept - 1, 0]
        ay = out[kept - 1, 1]
        vx = xy[index, 0]
        vy = xy[index, 1]
        bx = xy[index + 1, 0]
        by = xy[index + 1, 1]
        cut = False
        # A cut adds a vertex, so it needs room for itself and every vertex still to come.
        if kept + 2 + (count - index) <= capacity:
            fraction = 1.0
            while fraction >= min_fraction:
                px = vx + fraction * (ax - vx)
                py = vy + fraction * (ay - vy)
                qx = vx + fraction * (bx - vx)
                qy = vy + fraction * (by - vy)
                gain = (fraction * (math.hypot(ax - vx, ay - vy) + math.hypot(bx - vx, by - vy))
                        - math.hypot(qx - px, qy - py))
                if gain < min_cut_m:
                    break
                if edge_code(check, px, py, qx, qy) == FREE:
                    if fraction < 1.0:
                        out[kept, 0] = px
                        out[kept, 1] = py
                        out[kept + 1, 0] = qx
                        out[kept + 1, 1] = qy
                        kept += 2
                    cut = True
                    break
                fraction *= 0.5
        if not cut:
            out[kept] = xy[index]
            kept += 1
    out[kept] = xy[count - 1]
    return kept + 1


@numba.njit(cache=True, nogil=True)
def tighten_path(check, path, max_rounds, min_gain_m, max_vertices, min_fraction):
    """Return the tightened copy of a free polyline ``path`` (shape ``(N, 2)``).

    Runs vertex reduction, then up to ``max_rounds`` rounds of corner cutting, and stops
    early once a round shortens the path by less than ``min_gain_m``. A single cut must gain
    a tenth of that. Paths are kept to at most ``max_vertices`` vertices (corners stop being
    cut at that size).
    """
    capacity = max(max_vertices, path.shape[0] + 2)
    xy = np.empty((capacity, 2))
    spare = np.empty((capacity, 2))
    count = _reduce(check, path, path.shape[0], xy)
    length = _length(xy, count)
    for _ in range(max_rounds):
        if count <= 2:
            break
        count = _cut_corners(check, xy, count, spare, capacity, 0.1 * min_gain_m,
                             min_fraction)
        xy, spare = spare, xy
        new_length = _length(xy, count)
        gain = length - new_length
        length = new_length
        if gain < min_gain_m:
            break
    return xy[:count].copy()


_WARM_LOCK = threading.Lock()
_warm = False


def warm_up(check: tuple) -> None:
    """Compile (or load from numba's cache) :func:`tighten_path` for ``check``'s types."""
    global _warm
    with _WARM_LOCK:
        if _warm:
            return
        tighten_path(check, np.zeros((3, 2)), 1, 1e-3, 8, 0.125)
        _warm = True
