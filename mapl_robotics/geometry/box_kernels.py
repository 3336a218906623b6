"""Exact distances from points and segments to axis-aligned rectangular obstacles (numba).

Grid maps load as merged rectangles, so their obstacles are exactly axis-aligned boxes. For
those worlds a :class:`BoxIndex` buckets the boxes on a coarse grid, and
:func:`classify_near_boxes` decides the points and edges that the clearance field left open
by computing their distance to every box in the buckets they pass, with the same
``radius +- margin`` rule as the field. Only distances within the margin of the radius are
left for GEOS, so the results equal those of GEOS. Worlds with any other obstacle shape get no index
and send undecided queries to GEOS directly.

Segment-to-box distance: zero when the segment meets the closed box (Liang-Barsky clipping),
otherwise the smallest of the distances from the segment's ends to the box and from the
box's corners to the segment. Those candidates include the closest pair of points, because
two disjoint convex sets are closest at a vertex of one of them.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from shapely.geometry.base import BaseGeometry

__all__ = ['BLOCKED', 'FREE', 'UNDECIDED', 'BoxIndex', 'classify_near_boxes',
           'classify_box_edge']

# Result codes of every compiled check: proven to collide (or outside the usable area), proven
# free, or left for GEOS.
BLOCKED = 0
FREE = 1
UNDECIDED = 2

# Bucket edge, in units of the median box size, clamped to [_MIN_BUCKET_M, _MAX_BUCKET_M].
_MIN_BUCKET_M = 0.5
_MAX_BUCKET_M = 4.0
# At most this many buckets per index, whatever the map size.
_MAX_BUCKETS = 250_000


class BoxIndex:
    """Axis-aligned obstacle boxes in a uniform bucket grid (CSR lists of box ids)."""

    def __init__(self, boxes: np.ndarray, bounds_m) -> None:
        self.boxes = np.ascontiguousarray(boxes, dtype=float)
        x_min, y_min, x_max, y_max = (float(v) for v in bounds_m)
        sizes = np.maximum(self.boxes[:, 2] - self.boxes[:, 0],
                           self.boxes[:, 3] - self.boxes[:, 1])
        bucket_m = float(np.clip(2.0 * np.median(sizes), _MIN_BUCKET_M, _MAX_BUCKET_M))
        area = max(x_max - x_min, bucket_m) * max(y_max - y_min, bucket_m)
        bucket_m = max(bucket_m, math.sqrt(area / _MAX_BUCKETS))
        cols = max(1, int(math.ceil((x_max - x_min) / bucket_m)))
        rows = max(1, int(math.ceil((y_max - y_min) / bucket_m)))
        col0 = np.clip(((self.boxes[:, 0] - x_min) // bucket_m).astype(np.int64), 0, cols - 1)
        col1 = np.clip(((self.boxes[:, 2] - x_min) // bucket_m).astype(np.int64), 0, cols - 1)
        row0 = np.clip(((self.boxes[:, 1] - y_min) // bucket_m).astype(np.int64), 0, rows - 1)
        row1 = np.clip(((self.boxes[:, 3] - y_min) // bucket_m).astype(np.int64), 0, rows - 1)
        owners = []
        buckets = []
        for box_id in range(len(self.boxes)):
            r, c = np.meshgrid(np.arange(row0[box_id], row1[box_id] + 1),
                               np.arange(col0[box_id], col1[box_id] + 1), indexing='ij')
            buckets.append((r * cols + c).ravel())
            owners.append(np.full(r.size, box_id, dtype=np.int64))
        bucket_of = np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.int64)
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        order = np.argsort(bucket_of, kind='stable')
        self.box_ids = owner[order]
        self.offsets = np.zeros(rows * cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(bucket_of, minlength=rows * cols), out=self.offsets[1:])
        # (x_min, y_min, bucket_m) of the bucket grid, and its shape.
        self.grid = np.array([x_min, y_min, bucket_m])
        self.rows = rows
        self.cols = cols

    @classmethod
    def from_obstacles(cls, obstacles: tuple[BaseGeometry, ...], bounds_m) -> 'BoxIndex | None':
        """Return an index when every obstacle is a polygon equal to its bounding box."""
        boxes = []
        for geometry in obstacles:
            if geometry.geom_type != 'Polygon' or len(geometry.interiors):
                return None
            x0, y0, x1, y1 = geometry.bounds
            coords = np.asarray(geometry.exterior.coords)
            on_corner = (np.isin(coords[:, 0], (x0, x1)) & np.isin(coords[:, 1], (y0, y1)))
            # A ring through corners only, with positive area, is exactly the box.
            if not on_corner.all() or not (x1 > x0 and y1 > y0) or geometry.area != (
                    (x1 - x0) * (y1 - y0)):
                return None
            boxes.append((x0, y0, x1, y1))
        if not boxes:
            return None
        return cls(np.array(boxes), bounds_m)

    def kernel_arguments(self) -> tuple:
        """Return ``(boxes, box_ids, offsets, grid, rows, cols)`` for the kernels."""
        return self.boxes, self.box_ids, self.offsets, self.grid, self.rows, self.cols

    @staticmethod
    def empty_arguments() -> tuple:
        """Return kernel arguments of the same types that stand for "no index" (0 rows)."""
        return (np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.array([0.0, 0.0, 1.0]), 0, 0)


@numba.njit(cache=True, nogil=True)
def _point_box_distance(px, py, box):
    dx = max(box[0] - px, 0.0, px - box[2])
    dy = max(box[1] - py, 0.0, py - box[3])
    return math.hypot(dx, dy)


@numba.njit(cache=True, nogil=True)
def _point_segment_distance(px, py, x0, y0, x1, y1):
    dx = x1 - x0
    dy = y1 - y0
    squared = dx * dx + dy * dy
    t = 0.0
    if squared > 0.0:
        t = min(1.0, max(0.0, ((px - x0) * dx + (py - y0) * dy) / squared))
    return math.hypot(px - (x0 + t * dx), py - (y0 + t * dy))


@numba.njit(cache=True, nogil=True)
def _segment_meets_box(x0, y0, x1, y1, box):
    t0 = 0.0
    t1 = 1.0
    dx = x1 - x0
    dy = y1 - y0
    for axis in range(4):
        if axis == 0:
            p, q = -dx, x0 - box[0]
        elif axis == 1:
            p, q = dx, box[2] - x0
        elif axis == 2:
            p, q = -dy, y0 - box[1]
        else:
            p, q = dy, box[3] - y0
        if p == 0.0:
            if q < 0.0:
                return False
        else:
            t = q / p
            if p < 0.0:
                if t > t1:
                    return False
                t0 = max(t0, t)
            else:
                if t < t0:
                    return False
                t1 = min(t1, t)
    return True


@numba.njit(cache=True, nogil=True)
def _segment_box_distance(x0, y0, x1, y1, box):
    if _segment_meets_box(x0, y0, x1, y1, box):
        return 0.0
    distance = min(_point_box_distance(x0, y0, box), _point_box_distance(x1, y1, box))
    for corner in range(4):
        cx = box[0] if corner % 2 == 0 else box[2]
        cy = box[1] if corner < 2 else box[3]
        distance = min(distance, _point_segment_distance(cx, cy, x0, y0, x1, y1))
    return distance


@numba.njit(cache=True, nogil=True)
def classify_box_edge(boxes, box_ids, offsets, grid, rows, cols, x0, y0, x1, y1, needed,
                      blocking):
    """Return the code of one edge (a point when both ends are equal) from box distances.

    Only buckets within ``needed`` (plus a rounding allowance) of the segment are read: per
    bucket row, the columns spanned by the part of the segment within reach of that row.
    """
    reach = needed + 1e-9 * (1.0 + needed)
    bucket_m = grid[2]
    dx = x1 - x0
    dy = y1 - y0
    row0 = int(max(0.0, (min(y0, y1) - reach - grid[1]) // bucket_m))
    row1 = int(min(rows - 1.0, (max(y0, y1) + reach - grid[1]) // bucket_m))
    result = FREE
    for row in range(row0, row1 + 1):
        y_low = grid[1] + row * bucket_m - reach
        y_high = y_low + bucket_m + 2.0 * reach
        if dy == 0.0:
            t_low = 0.0
            t_high = 1.0
        else:
            t_low = (y_low - y0) / dy
            t_high = (y_high - y0) / dy
            if t_low > t_high:
                t_low, t_high = t_high, t_low
            t_low = max(t_low, 0.0)
            t_high = min(t_high, 1.0)
            if t_low > t_high:
                # Only rounding gets here (the row range comes from the segment's own y
                # range), so read the buckets around the touching point instead of none.
                t_low, t_high = t_high, t_low
        x_a = x0 + t_low * dx
        x_b = x0 + t_high * dx
        col0 = int(max(0.0, (min(x_a, x_b) - reach - grid[0]) // bucket_m))
        col1 = int(min(cols - 1.0, (max(x_a, x_b) + reach - grid[0]) // bucket_m))
        for col in range(col0, col1 + 1):
            bucket = row * cols + col
            for slot in range(offsets[bucket], offsets[bucket + 1]):
                distance = _segment_box_distance(x0, y0, x1, y1, boxes[box_ids[slot]])
                if distance < blocking:
                    return BLOCKED
                if distance < needed:
                    result = UNDECIDED
    return result


@numba.njit(cache=True, nogil=True)
def classify_near_boxes(boxes, box_ids, offsets, grid, rows, cols, start, end, index, needed,
                        blocking, codes):
    """Re-decide ``codes[k]`` for each ``k`` in ``index`` from exact box distances.

    Edge ``k`` runs from ``start[k]`` to ``end[k]`` (equal for a point). Its code becomes
    ``BLOCKED`` when some box is closer than ``blocking``, ``FREE`` when every box is at
    least ``needed`` away, and stays ``UNDECIDED`` otherwise.
    """
    for position in range(index.shape[0]):
        k = index[position]
        codes[k] = classify_box_edge(boxes, box_ids, offsets, grid, rows, cols, start[k, 0],
                                     start[k, 1], end[k, 0], end[k, 1], needed, blocking)


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's cache) :func:`classify_near_boxes` once per process."""
    global _warm
    if _warm:
        return
    index = BoxIndex(np.array([[1.0, 1.0, 2.0, 2.0]]), (0.0, 0.0, 4.0, 4.0))
    xy = np.array([[0.5, 0.5], [3.5, 0.5]])
    codes = np.full(2, UNDECIDED, dtype=np.int8)
    classify_near_boxes(*index.kernel_arguments(), xy, xy[::-1].copy(),
                        np.arange(2, dtype=np.intp), 0.25, 0.25, codes)
    _warm = True
