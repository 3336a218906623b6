"""Occupancy grids in ROS order, and their conversion to merged obstacle rectangles.

An :class:`OccupancyGrid` stores cell values the way ``nav_msgs/OccupancyGrid`` does: ``0`` free,
``100`` occupied, ``1..99`` graded occupancy (map_server ``scale`` and ``raw`` modes) and ``-1``
unknown. Row 0 is the row at the map origin, which is the bottom of the map image, and column 0
is the column at the origin. The centre of cell ``(row, col)`` lies at
``origin_xy_m + R(origin_yaw_rad) @ ((col + 0.5) * resolution_m, (row + 0.5) * resolution_m)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from mapl_robotics.errors import InvalidCoordinateError, MapFormatError

__all__ = ['FREE', 'OCCUPIED', 'UNKNOWN', 'MAX_RASTER_CELLS', 'OccupancyGrid', 'mask_rectangles',
           'rasterize_obstacles']

FREE = 0
OCCUPIED = 100
UNKNOWN = -1
# Largest grid rasterize_obstacles builds (100 MB of int8 cells).
MAX_RASTER_CELLS = 100_000_000
# Cell edges within this many cells of an obstacle edge count as on it, so rounding in
# ``coordinate / resolution`` does not mark a cell that only touches the obstacle.
_EDGE_TOLERANCE_CELLS = 1e-9


@dataclasses.dataclass(frozen=True, eq=False)
class OccupancyGrid:
    """Grid of int8 occupancy values in ROS ``OccupancyGrid`` row order (row 0 at the origin).

    :param data: int8 array of shape ``(rows, cols)``; values -1, or 0 to 100.
    :param resolution_m: edge length of a square cell.
    :param origin_xy_m: world position of the outer corner of cell ``(0, 0)``.
    :param origin_yaw_rad: rotation of the grid about its origin, counter-clockwise.
    """

    data: np.ndarray
    resolution_m: float
    origin_xy_m: tuple[float, float] = (0.0, 0.0)
    origin_yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 2 or data.size == 0:
            raise MapFormatError(
                f'occupancy grid data must be a non-empty 2-D array, got shape {data.shape}')
        if not (np.all(data >= UNKNOWN) and np.all(data <= OCCUPIED)):
            raise MapFormatError(
                f'occupancy grid values must be -1 (unknown) or 0..100, found values from '
                f'{int(data.min())} to {int(data.max())}')
        resolution = float(self.resolution_m)
        if not (math.isfinite(resolution) and resolution > 0.0):
            raise InvalidCoordinateError(
                f'occupancy grid resolution_m={self.resolution_m!r} must be a positive finite '
                'number of metres per cell')
        origin = tuple(float(v) for v in self.origin_xy_m)
        yaw = float(self.origin_yaw_rad)
        if len(origin) != 2 or not all(math.isfinite(v) for v in (*origin, yaw)):
            raise InvalidCoordinateError(
                f'occupancy grid origin_xy_m={self.origin_xy_m!r} and origin_yaw_rad='
                f'{self.origin_yaw_rad!r} must be finite numbers')
        frozen = np.array(data, dtype=np.int8, copy=True)
        frozen.setflags(write=False)
        object.__setattr__(self, 'data', frozen)
        object.__setattr__(self, 'resolution_m', resolution)
        object.__setattr__(self, 'origin_xy_m', origin)
        object.__setattr__(self, 'origin_yaw_rad', yaw)

    @property
    def rows(self) -> int:
        return int(self.data.shape[0])

    @property
    def cols(self) -> int:
        return int(self.data.shape[1])

    @property
    def width_m(self) -> float:
        return self.cols * self.resolution_m

    @property
    def height_m(self) -> float:
        return self.rows * self.resolution_m

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OccupancyGrid):
            return NotImplemented
        return (np.array_equal(self.data, other.data)
                and self.resolution_m == other.resolution_m
                and self.origin_xy_m == other.origin_xy_m
                and self.origin_yaw_rad == other.origin_yaw_rad)

    def __hash__(self) -> int:
        return hash((self.data.tobytes(), self.data.shape, self.resolution_m,
                     self.origin_xy_m, self.origin_yaw_rad))

    def __repr__(self) -> str:
        return (f'OccupancyGrid({self.rows}x{self.cols} cells at {self.resolution_m} m, '
                f'origin_xy_m={self.origin_xy_m}, origin_yaw_rad={self.origin_yaw_rad})')

    def obstacle_mask(self, *, unknown_is_obstacle: bool = True) -> np.ndarray:
        """Return a boolean mask of the cells a robot must not enter.

        Occupied cells (100) are obstacles. Unknown cells (-1) and graded cells (1..99, which
        map_server writes only for probabilities between its two thresholds) are obstacles when
        ``unknown_is_obstacle`` is true, and free otherwise.
        """
        data = self.data
        if unknown_is_obstacle:
            return data != FREE
        return data == OCCUPIED

    def cell_centres_xy_m(self, rows, cols) -> np.ndarray:
        """Return the world positions of the centres of cells ``(rows[i], cols[i])``."""
        local = np.stack([(np.asarray(cols, dtype=float) + 0.5) * self.resolution_m,
                          (np.asarray(rows, dtype=float) + 0.5) * self.resolution_m], axis=-1)
        return self.local_to_world(local)

    def local_to_world(self, local_xy_m) -> np.ndarray:
        """Rotate and translate grid-frame points (metres from the origin) into the world."""
        local = np.asarray(local_xy_m, dtype=float)
        cos_yaw = math.cos(self.origin_yaw_rad)
        sin_yaw = math.sin(self.origin_yaw_rad)
        x = local[..., 0] * cos_yaw - local[..., 1] * sin_yaw + self.origin_xy_m[0]
        y = local[..., 0] * sin_yaw + local[..., 1] * cos_yaw + self.origin_xy_m[1]
        return np.stack([x, y], axis=-1)

    def world_to_cell(self, xy_m) -> np.ndarray:
        """Return ``(row, col)`` integer indices of the cells that contain world points.

        Points outside the grid get indices outside ``[0, rows) x [0, cols)``.
        """
        xy = np.asarray(xy_m, dtype=float)
        dx = xy[..., 0] - self.origin_xy_m[0]
        dy = xy[..., 1] - self.origin_xy_m[1]
        cos_yaw = math.cos(self.origin_yaw_rad)
        sin_yaw = math.sin(self.origin_yaw_rad)
        u = (dx * cos_yaw + dy * sin_yaw) / self.resolution_m
        v = (-dx * sin_yaw + dy * cos_yaw) / self.resolution_m
        return np.stack([np.floor(v), np.floor(u)], axis=-1).astype(np.int64)

    def corners_xy_m(self) -> np.ndarray:
        """Return the four world corners of the grid, counter-clockwise from the origin."""
        local = np.array([[0.0, 0.0], [self.width_m, 0.0], [self.width_m, self.height_m],
                          [0.0, self.height_m]])
        return self.local_to_world(local)


def mask_rectangles(mask: np.ndarray) -> np.ndarray:
    """Merge the true cells of a boolean mask into disjoint axis-aligned rectangles.

    Runs of true cells along each row are merged first, then identical runs in consecutive
    rows are stacked. The rectangles cover exactly the true cells, without overlap.

    :returns: int array of shape ``(K, 4)`` with ``(col_start, row_start, col_end, row_end)``
        per rectangle, end indices exclusive.
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    start_rows, start_cols = np.nonzero(steps == 1)
    _end_rows, end_cols = np.nonzero(steps == -1)
    if start_rows.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    # Both nonzero() calls scan in row-major order, so the k-th start pairs with the k-th end.
    order = np.lexsort((start_rows, end_cols, start_cols))
    run_rows = start_rows[order]
    run_starts = start_cols[order]
    run_ends = end_cols[order]
    new_rectangle = np.ones(run_rows.size, dtype=bool)
    new_rectangle[1:] = ((run_starts[1:] != run_starts[:-1]) | (run_ends[1:] != run_ends[:-1])
                         | (run_rows[1:] != run_rows[:-1] + 1))
    first = np.flatnonzero(new_rectangle)
    last = np.append(first[1:], run_rows.size) - 1
    return np.stack([run_starts[first], run_rows[first], run_ends[first], run_rows[last] + 1],
                    axis=1).astype(np.int64)


def rasterize_obstacles(obstacles: Sequence[BaseGeometry], *, bounds_m: Sequence[float],
                        resolution_m: float) -> OccupancyGrid:
    """Return an axis-aligned grid over ``bounds_m`` with every cell that shares area with an
    obstacle occupied (100) and the rest free (0).

    The grid starts at the lower-left corner of the bounds and covers them, rounded up to
    whole cells. Cells that only share an edge or a corner with an obstacle stay free.
    """
    x_min, y_min, x_max, y_max = (float(v) for v in bounds_m)
    cols = max(1, math.ceil((x_max - x_min) / resolution_m - _EDGE_TOLERANCE_CELLS))
    rows = max(1, math.ceil((y_max - y_min) / resolution_m - _EDGE_TOLERANCE_CELLS))
    if rows * cols > MAX_RASTER_CELLS:
        raise InvalidCoordinateError(
            f'resolution_m={resolution_m} gives a {cols} x {rows} grid, more than '
            f'{MAX_RASTER_CELLS} cells; use a coarser resolution')
    data = np.zeros((rows, cols), dtype=np.int8)
    for obstacle in obstacles:
        gx0, gy0, gx1, gy1 = obstacle.bounds
        c0 = max(0, math.floor((gx0 - x_min) / resolution_m + _EDGE_TOLERANCE_CELLS))
        c1 = min(cols, math.ceil((gx1 - x_min) / resolution_m - _EDGE_TOLERANCE_CELLS))
        r0 = max(0, math.floor((gy0 - y_min) / resolution_m + _EDGE_TOLERANCE_CELLS))
        r1 = min(rows, math.ceil((gy1 - y_min) / resolution_m - _EDGE_TOLERANCE_CELLS))
        if c1 <= c0 or r1 <= r0:
            continue
        if obstacle.area > 0.0 and math.isclose(obstacle.area, (gx1 - gx0) * (gy1 - gy0),
                                                rel_tol=1e-12):
            # An axis-aligned rectangle covers every cell of its bounding-box range.
            data[r0:r1, c0:c1] = OCCUPIED
            continue
        col_index, row_index = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1))
        cell_x = x_min + col_index.ravel() * resolution_m
        cell_y = y_min + row_index.ravel() * resolution_m
        cells = shapely.box(cell_x, cell_y, cell_x + resolution_m, cell_y + resolution_m)
        shapely.prepare(obstacle)
        overlap = shapely.intersects(obstacle, cells) & ~shapely.touches(obstacle, cells)
        data[row_index.ravel()[overlap], col_index.ravel()[overlap]] = OCCUPIED
    return OccupancyGrid(data=data, resolution_m=resolution_m, origin_xy_m=(x_min, y_min))
