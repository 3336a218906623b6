"""Compiled (numba) clearance-field checks for batches of points and swept-disc edges.

The kernels apply the same proofs as :mod:`mapl_robotics.geometry.field_checks`, one edge at
a time in a compiled loop, so a batch costs a few microseconds plus well under a microsecond
per edge instead of dozens of numpy calls. Each result is a code: ``BLOCKED`` (proven to
collide, or outside the usable area, or not finite), ``FREE`` (proven free) or
``UNDECIDED`` (the caller asks GEOS).

Proofs, with ``needed = radius + margin`` and ``blocking = radius - margin``:

- a point whose upper bound is below ``blocking`` collides, so an edge through it is blocked;
- every point within ``lower - needed`` of a point with lower bound ``lower`` is free (sphere
  tracing: the obstacle distance is 1-Lipschitz);
- two samples ``s`` apart with lower bounds ``l0`` and ``l1`` prove the piece between them
  free when ``(l0 + l1 - s) / 2 >= needed``.

The functions compile on first use and numba caches the machine code next to this module
(``cache=True``), so later processes load it instead of compiling. :func:`warm_up` triggers
that once per process, which the collision checker does when it is built, so no query pays
for compilation.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from mapl_robotics.geometry.box_kernels import (BLOCKED, FREE, UNDECIDED, BoxIndex,
                                                classify_box_edge)

__all__ = ['BLOCKED', 'FREE', 'UNDECIDED', 'classify_edges', 'classify_points', 'edge_code',
           'point_code', 'warm_up']

# An edge walk stops after this many samples and leaves the edge undecided. A walk takes at
# most length / step + 2 samples, so only edges longer than about 10^6 field cells reach it.
_MAX_WALK_SAMPLES = 1_000_000


@numba.njit(cache=True, nogil=True)
def _bounds_at(lower_flat, upper_flat, rows, cols, grid, x, y):
    """Return ``(lower_m, upper_m)`` at one point, like ``ClearanceField.bounds_at``.

    ``grid`` is ``(origin_x, origin_y, cos_yaw, sin_yaw, cell_x, cell_y)``.
    """
    dx = x - grid[0]
    dy = y - grid[1]
    u = (dx * grid[2] + dy * grid[3]) / grid[4]
    v = (dy * grid[2] - dx * grid[3]) / grid[5]
    if not (1.0 <= u < cols - 1.0 and 1.0 <= v < rows - 1.0):
        return -math.inf, math.inf
    col = int(u)
    row = int(v)
    offset = math.hypot((u - col - 0.5) * grid[4], (v - row - 0.5) * grid[5])
    flat = row * cols + col
    lower = np.float64(lower_flat[flat]) - offset
    upper = np.float64(upper_flat[flat]) + offset
    return lower, max(0.0, upper)


@numba.njit(cache=True, nogil=True)
def _inside(x, y, inner):
    return inner[0] <= x <= inner[2] and inner[1] <= y <= inner[3]


@numba.njit(cache=True, nogil=True)
def classify_points(lower_flat, upper_flat, rows, cols, grid, inner, xy, needed, blocking,
                    out):
    """Write a code per point of ``xy`` (shape ``(N, 2)``) into ``out`` (int8)."""
    for k in range(xy.shape[0]):
        x = xy[k, 0]
        y = xy[k, 1]
        if not (math.isfinite(x) and math.isfinite(y)) or not _inside(x, y, inner):
            out[k] = BLOCKED
            continue
        lower, upper = _bounds_at(lower_flat, upper_flat, rows, cols, grid, x, y)
        if upper < blocking:
            out[k] = BLOCKED
        elif lower >= needed:
            out[k] = FREE
        else:
            out[k] = UNDECIDED


@numba.njit(cache=True, nogil=True)
def _classify_edge(lower_flat, upper_flat, rows, cols, grid, x0, y0, x1, y1, needed,
                   blocking, step_m, max_samples):
    lower0, upper0 = _bounds_at(lower_flat, upper_flat, rows, cols, grid, x0, y0)
    if upper0 < blocking:
        return BLOCKED
    lower1, upper1 = _bounds_at(lower_flat, upper_flat, rows, cols, grid, x1, y1)
    if upper1 < blocking:
        return BLOCKED
    length = math.hypot(x1 - x0, y1 - y0)
    if 0.5 * (lower0 + lower1 - length) >= needed:
        return FREE
    if length == 0.0:
        return UNDECIDED
    dx = (x1 - x0) / length
    dy = (y1 - y0) / length
    # Walk from the start. Where the bound leaves room, jump by lower - needed (everything
    # jumped over is free). Elsewhere take samples step_m apart and prove each piece between
    # two samples with the pair bound. A piece that fails only makes the edge undecided, and
    # the walk goes on, because a later sample may still prove the edge blocked.
    result = FREE
    travelled = 0.0
    lower = lower0
    for _ in range(max_samples):
        jump = lower - needed
        if jump >= step_m:
            travelled += jump
            if travelled >= length:
                return result
            lower, upper = _bounds_at(lower_flat, upper_flat, rows, cols, grid,
                                      x0 + travelled * dx, y0 + travelled * dy)
        else:
            next_m = travelled + step_m
            if next_m >= length:
                if 0.5 * (lower + lower1 - (length - travelled)) < needed:
                    result = UNDECIDED
                return result
            next_lower, upper = _bounds_at(lower_flat, upper_flat, rows, cols, grid,
                                           x0 + next_m * dx, y0 + next_m * dy)
            if 0.5 * (lower + next_lower - step_m) < needed:
                result = UNDECIDED
            travelled = next_m
            lower = next_lower
        if upper < blocking:
            return BLOCKED
    return UNDECIDED


@numba.njit(cache=True, nogil=True)
def classify_edges(lower_flat, upper_flat, rows, cols, grid, inner, boxes, box_ids, offsets,
                   box_grid, box_rows, box_cols, start, end, needed, blocking, step_m,
                   walk_samples, out):
    """Write a code per edge ``start[k] -> end[k]`` (shapes ``(N, 2)``) into ``out`` (int8).

    ``inner`` is ``(x_min, y_min, x_max, y_max)`` of the region where the disc centre stays
    inside the map. An edge with an end outside it (or not finite) is ``BLOCKED``, because
    the region is convex. ``step_m`` is the sample spacing where the walk cannot jump. The
    box arguments come from :meth:`BoxIndex.kernel_arguments` (``box_rows == 0`` when the
    world has no box index). With boxes, an edge that the field does not decide within
    ``walk_samples`` look-ups gets the exact box distance check instead.
    """
    has_boxes = box_rows > 0
    max_samples = walk_samples if has_boxes else _MAX_WALK_SAMPLES
    for k in range(start.shape[0]):
        x0 = start[k, 0]
        y0 = start[k, 1]
        x1 = end[k, 0]
        y1 = end[k, 1]
        if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(x1)
                and math.isfinite(y1)):
            out[k] = BLOCKED
        elif not (_inside(x0, y0, inner) and _inside(x1, y1, inner)):
            out[k] = BLOCKED
        else:
            code = _classify_edge(lower_flat, upper_flat, rows, cols, grid, x0, y0, x1, y1,
                                  needed, blocking, step_m, max_samples)
            if code == UNDECIDED and has_boxes:
                code = classify_box_edge(boxes, box_ids, offsets, box_grid, box_rows, box_cols,
                                         x0, y0, x1, y1, needed, blocking)
            out[k] = code


@numba.njit(cache=True, nogil=True)
def edge_code(check, x0, y0, x1, y1):
    """Return the code of one edge for compiled callers.

    ``check`` is the tuple from ``CollisionChecker.compiled_check``: the arguments of
    :func:`classify_edges` from ``lower_flat`` to ``walk_samples``, without the edges and the
    output.
    """
    (lower_flat, upper_flat, rows, cols, grid, inner, boxes, box_ids, offsets, box_grid,
     box_rows, box_cols, needed, blocking, step_m, walk_samples) = check
    if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(x1)
            and math.isfinite(y1)):
        return BLOCKED
    if not (_inside(x0, y0, inner) and _inside(x1, y1, inner)):
        return BLOCKED
    has_boxes = box_rows > 0
    code = _classify_edge(lower_flat, upper_flat, rows, cols, grid, x0, y0, x1, y1, needed,
                          blocking, step_m, walk_samples if has_boxes else _MAX_WALK_SAMPLES)
    if code == UNDECIDED and has_boxes:
        code = classify_box_edge(boxes, box_ids, offsets, box_grid, box_rows, box_cols, x0, y0,
                                 x1, y1, needed, blocking)
    return code


@numba.njit(cache=True, nogil=True)
def point_code(check, x, y):
    """Return the code of one point from the field alone (``check`` as for :func:`edge_code`)."""
    lower_flat, upper_flat, rows, cols, grid, inner = check[0], check[1], check[2], check[3], \
        check[4], check[5]
    needed, blocking = check[12], check[13]
    if not (math.isfinite(x) and math.isfinite(y)) or not _inside(x, y, inner):
        return BLOCKED
    lower, upper = _bounds_at(lower_flat, upper_flat, rows, cols, grid, x, y)
    if upper < blocking:
        return BLOCKED
    if lower >= needed:
        return FREE
    return UNDECIDED


_NO_BOXES = BoxIndex.empty_arguments()


def box_arguments(boxes: BoxIndex | None) -> tuple:
    """Return the box arguments of :func:`classify_edges` for an index or for none."""
    return _NO_BOXES if boxes is None else boxes.kernel_arguments()


_WARM_LOCK = threading.Lock()
_warm = False


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the argument types used."""
    global _warm
    with _WARM_LOCK:
        if _warm:
            return
        # Strided views, like ClearanceField.kernel_arguments, so the same machine code is used.
        interleaved = np.tile(np.array([1.0, 2.0], dtype=np.float32), (16, 1))
        lower = interleaved[:, 0]
        upper = interleaved[:, 1]
        grid = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
        inner = np.array([1.0, 1.0, 3.0, 3.0])
        xy = np.array([[1.5, 1.5], [2.5, 2.5]])
        out = np.empty(2, dtype=np.int8)
        classify_points(lower, upper, 4, 4, grid, inner, xy, 0.5, 0.5, out)
        for boxes in (BoxIndex(np.array([[2.0, 2.0, 2.5, 2.5]]), (0.0, 0.0, 4.0, 4.0)), None):
            classify_edges(lower, upper, 4, 4, grid, inner, *box_arguments(boxes), xy,
                           xy[::-1].copy(), 0.5, 0.5, 0.1, 4, out)
        _warm = True
