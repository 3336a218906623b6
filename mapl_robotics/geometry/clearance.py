"""Conservative clearance field: cheap lower and upper bounds on the distance to obstacles.

The field rasterizes the obstacles once, runs a Euclidean distance transform
(``scipy.ndimage.distance_transform_edt``) and stores two numbers per cell. For any point
``p`` the field then returns ``lower(p) <= dist(p, obstacles) <= upper(p)``. A collision
checker decides most queries from these two array look-ups. Only the points and edges whose
true clearance is close to the robot radius need an exact shapely check.

The bounds are proved from two cell sets, with ``c`` the centre of the cell containing ``p``,
``d = |p - c|`` and ``E_X(c)`` the distance from ``c`` to the nearest centre of a cell in ``X``:

- ``T``: a superset of the cells that touch an obstacle. Every obstacle point lies in a cell of
  ``T`` whose centre is within half a cell diagonal ``g``, so
  ``dist(p, obstacles) >= E_T(c) - d - g``.
- ``C``: cells whose centre lies inside an obstacle, so ``dist(p, obstacles) <= E_C(c) + d``.
  When every cell of ``C`` is entirely obstacle (grid maps), the disc of radius half a cell
  around its centre is obstacle as well, and the bound tightens by that half cell.

A ring of cells around the field counts as obstacle, so the bounds also cover the distance to
the map boundary. For axis-aligned maps that agrees with the world's own bounds check, and for
rotated grids the area outside the grid is an obstacle anyway.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

__all__ = ['ClearanceField']


class ClearanceField:
    """Per-cell distance bounds on a (possibly rotated) raster, with vectorized look-up.

    Build one with :meth:`from_mask` or :meth:`from_geometries`.
    """

    def __init__(self, *, lower_cell_m: np.ndarray, upper_cell_m: np.ndarray,
                 cell_size_xy_m: tuple[float, float], origin_xy_m: Sequence[float],
                 yaw_rad: float, outside_is_obstacle: bool) -> None:
        self.cell_size_xy_m = (float(cell_size_xy_m[0]), float(cell_size_xy_m[1]))
        # World position of the outer corner of padded cell (0, 0).
        self.origin_xy_m = (float(origin_xy_m[0]), float(origin_xy_m[1]))
        self.yaw_rad = float(yaw_rad)
        self.outside_is_obstacle = outside_is_obstacle
        self._cos = math.cos(self.yaw_rad)
        self._sin = math.sin(self.yaw_rad)
        self._inverse_cell_x = 1.0 / self.cell_size_xy_m[0]
        self._inverse_cell_y = 1.0 / self.cell_size_xy_m[1]
        self.shape = lower_cell_m.shape
        half_diagonal = 0.5 * math.hypot(*self.cell_size_xy_m)
        # The per-cell bounds hold at the cell centre. The "anywhere" versions hold at any
        # point of the cell, so a look-up needs no offset from the centre.
        self._lower_flat = _float32_at_most(lower_cell_m.ravel())
        self._upper_flat = _float32_at_least(upper_cell_m.ravel())
        self._interleaved: np.ndarray | None = None
        self._lower_anywhere = _float32_at_most(lower_cell_m.ravel() - half_diagonal)
        self._upper_anywhere = _float32_at_least(
            np.maximum(upper_cell_m.ravel() + half_diagonal, 0.0))

    @property
    def cell_count(self) -> int:
        return int(self._lower_flat.size)

    def kernel_arguments(self) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
        """Return the field as :mod:`~mapl_robotics.geometry.field_kernels` takes it.

        ``(lower_flat, upper_flat, rows, cols, grid)``, where the flat arrays hold the bounds
        at the cell centres and ``grid`` is ``(origin_x, origin_y, cos_yaw, sin_yaw, cell_x,
        cell_y)``, so the kernels compute the same bounds as :meth:`bounds_at`. The two flat
        arrays are strided views of one interleaved copy (built on first call, 8 bytes per
        cell), so a look-up reads one cache line instead of two.
        """
        if self._interleaved is None:
            self._interleaved = np.stack([self._lower_flat, self._upper_flat], axis=1)
        grid = np.array([self.origin_xy_m[0], self.origin_xy_m[1], self._cos, self._sin,
                         self.cell_size_xy_m[0], self.cell_size_xy_m[1]])
        rows, cols = self.shape
        return (self._interleaved[:, 0], self._interleaved[:, 1], int(rows), int(cols), grid)

    @classmethod
    def from_mask(cls, mask: np.ndarray, *, cell_size_m: float, origin_xy_m: Sequence[float],
                  yaw_rad: float = 0.0, outside_is_obstacle: bool = False,
                  coarsening: int = 1) -> 'ClearanceField':
        """Build the field of a grid whose true cells are solid square obstacles.

        ``mask[row, col]`` uses ROS order (row 0 at ``origin_xy_m``). With ``coarsening`` k > 1
        the field cells are k x k blocks of grid cells. A block counts as touched for the
        lower bound when any of its cells is blocked, and as solid for the upper bound only
        when all of them are, so both bounds stay proven.
        """
        touched = mask
        solid = mask
        if coarsening > 1:
            # Blocks reaching past the map edge count as touched, so the lower bound still
            # covers the distance to that edge.
            touched = _pool_blocks(mask, coarsening, np.any, fill=True)
            solid = _pool_blocks(mask, coarsening, np.all, fill=outside_is_obstacle)
            cell_size_m *= coarsening
        lower = _padded_distance(touched, cell_size_m) - cell_size_m * math.sqrt(0.5)
        upper = (lower + cell_size_m * math.sqrt(0.5) if solid is touched
                 else _padded_distance(solid, cell_size_m)) - 0.5 * cell_size_m
        origin = _shifted_origin(origin_xy_m, yaw_rad, cell_size_m, cell_size_m)
        return cls(lower_cell_m=lower, upper_cell_m=upper,
                   cell_size_xy_m=(cell_size_m, cell_size_m), origin_xy_m=origin,
                   yaw_rad=yaw_rad, outside_is_obstacle=outside_is_obstacle)

    @classmethod
    def from_geometries(cls, geometries: Sequence[BaseGeometry], *,
                        bounds_m: Sequence[float], target_cell_m: float) -> 'ClearanceField':
        """Rasterize arbitrary shapely obstacles inside axis-aligned ``bounds_m``."""
        x_min, y_min, x_max, y_max = (float(v) for v in bounds_m)
        cols = max(1, int(math.ceil((x_max - x_min) / target_cell_m)))
        rows = max(1, int(math.ceil((y_max - y_min) / target_cell_m)))
        cell_x = (x_max - x_min) / cols
        cell_y = (y_max - y_min) / rows
        inside = np.zeros((rows, cols), dtype=bool)
        for geometry in geometries:
            _mark_centres_inside(inside, geometry, x_min, y_min, cell_x, cell_y)
        outline = np.zeros((rows, cols), dtype=bool)
        outline_rows, outline_cols = _outline_cells(geometries, x_min, y_min, cell_x, cell_y,
                                                    rows, cols)
        outline[outline_rows, outline_cols] = True
        touched = inside | ndimage.binary_dilation(outline, structure=np.ones((3, 3), bool))
        padded_touched = np.ones((rows + 2, cols + 2), dtype=bool)
        padded_touched[1:-1, 1:-1] = touched
        padded_inside = np.zeros((rows + 2, cols + 2), dtype=bool)
        padded_inside[1:-1, 1:-1] = inside
        sampling = (cell_y, cell_x)
        half_diagonal = 0.5 * math.hypot(cell_x, cell_y)
        lower = ndimage.distance_transform_edt(~padded_touched, sampling=sampling) - half_diagonal
        if padded_inside.any():
            upper = ndimage.distance_transform_edt(~padded_inside, sampling=sampling)
        else:
            upper = np.full(padded_inside.shape, np.inf)
        origin = (x_min - cell_x, y_min - cell_y)
        return cls(lower_cell_m=lower, upper_cell_m=upper, cell_size_xy_m=(cell_x, cell_y),
                   origin_xy_m=origin, yaw_rad=0.0, outside_is_obstacle=False)

    def bounds(self, xy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lower_m, upper_m)`` bounds on the obstacle distance of each point.

        ``xy_m`` has shape ``(N, 2)``. Points outside the field get ``(-inf, inf)``, or
        ``(-inf, 0)`` when the area outside the field is an obstacle.
        """
        dx = xy_m[:, 0] - self.origin_xy_m[0]
        dy = xy_m[:, 1] - self.origin_xy_m[1]
        cell_x, cell_y = self.cell_size_xy_m
        u = (dx * self._cos + dy * self._sin) / cell_x
        v = (dy * self._cos - dx * self._sin) / cell_y
        rows, cols = self.shape
        col = np.floor(u)
        row = np.floor(v)
        off_grid = (col < 1.0) | (col > cols - 2.0) | (row < 1.0) | (row > rows - 2.0)
        np.clip(col, 0.0, cols - 1.0, out=col)
        np.clip(row, 0.0, rows - 1.0, out=row)
        offset = np.hypot((u - col - 0.5) * cell_x, (v - row - 0.5) * cell_y)
        flat = row.astype(np.intp) * cols + col.astype(np.intp)
        lower = self._lower_flat[flat] - offset
        upper = self._upper_flat[flat] + offset
        np.maximum(upper, 0.0, out=upper)
        if off_grid.any():
            # A point in the padding ring is on or outside the map edge. Rounding decides which
            # side it is on, so only points clearly outside get a definite bound.
            margin = 1e-9
            outside = ((u < 1.0 - margin) | (u > cols - 1.0 + margin)
                       | (v < 1.0 - margin) | (v > rows - 1.0 + margin))
            lower[off_grid] = -np.inf
            upper[off_grid] = np.inf
            if self.outside_is_obstacle:
                upper[outside] = 0.0
        return lower, upper

    def bounds_inside(self, xy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return looser :meth:`bounds` for points inside the map, with less work per point.

        The points must lie in the closed rectangle the field was built for, which the world's
        bounds check ensures. The bounds then hold anywhere in each point's cell. Rotated
        fields fall back to :meth:`bounds`.
        """
        if self.yaw_rad != 0.0:
            return self.bounds(xy_m)
        rows, cols = self.shape
        u = xy_m[:, 0] - self.origin_xy_m[0]
        u *= self._inverse_cell_x
        v = xy_m[:, 1] - self.origin_xy_m[1]
        v *= self._inverse_cell_y
        col = u.astype(np.intp)
        row = v.astype(np.intp)
        # Rounding can put a point on the far map edge a hair outside; keep it in the ring.
        np.clip(col, 0, cols - 1, out=col)
        np.clip(row, 0, rows - 1, out=row)
        row *= cols
        row += col
        return self._lower_anywhere.take(row), self._upper_anywhere.take(row)

    def lower_bound_at(self, x_m: float, y_m: float) -> float:
        """Return the lower bound at one point, without numpy overhead."""
        return self.bounds_at(x_m, y_m)[0]

    def bounds_at(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Return ``(lower_m, upper_m)`` at one point; ``(-inf, inf)`` off the inner grid."""
        dx = x_m - self.origin_xy_m[0]
        dy = y_m - self.origin_xy_m[1]
        cell_x, cell_y = self.cell_size_xy_m
        u = (dx * self._cos + dy * self._sin) / cell_x
        v = (dy * self._cos - dx * self._sin) / cell_y
        rows, cols = self.shape
        if not (1.0 <= u < cols - 1.0 and 1.0 <= v < rows - 1.0):
            return -math.inf, math.inf
        col = int(u)
        row = int(v)
        offset = math.hypot((u - col - 0.5) * cell_x, (v - row - 0.5) * cell_y)
        flat = row * cols + col
        return (float(self._lower_flat[flat]) - offset,
                max(0.0, float(self._upper_flat[flat]) + offset))


def _padded_distance(mask: np.ndarray, cell_size_m: float) -> np.ndarray:
    """Return the distance from each cell centre of the ring-padded mask to a true cell."""
    padded = np.ones((mask.shape[0] + 2, mask.shape[1] + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    return ndimage.distance_transform_edt(~padded) * cell_size_m


def _pool_blocks(mask: np.ndarray, size: int, reduce, *, fill: bool) -> np.ndarray:
    """Reduce ``size`` x ``size`` blocks of a mask; cells past its far edges take ``fill``."""
    rows = -(-mask.shape[0] // size) * size
    cols = -(-mask.shape[1] // size) * size
    padded = np.full((rows, cols), fill, dtype=bool)
    padded[:mask.shape[0], :mask.shape[1]] = mask
    blocks = padded.reshape(rows // size, size, cols // size, size)
    return reduce(blocks, axis=(1, 3))


def _float32_padding(values: np.ndarray) -> float:
    """Return a step that covers float32 rounding of every finite value in ``values``."""
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size else 1.0
    return 4.0 * float(np.spacing(np.float32(max(largest, 1.0))))


def _float32_at_most(values: np.ndarray) -> np.ndarray:
    """Return float32 values no greater than ``values``, so lower bounds stay lower bounds."""
    return (values - _float32_padding(values)).astype(np.float32)


def _float32_at_least(values: np.ndarray) -> np.ndarray:
    """Return float32 values no smaller than ``values``, so upper bounds stay upper bounds."""
    return (values + _float32_padding(values)).astype(np.float32)


def _shifted_origin(origin_xy_m: Sequence[float], yaw_rad: float, cell_x: float,
                    cell_y: float) -> tuple[float, float]:
    """Return the world corner of a grid padded by one cell on every side."""
    cos_yaw = math.cos(yaw_rad)
    sin_yaw = math.sin(yaw_rad)
    return (float(origin_xy_m[0]) - cell_x * cos_yaw + cell_y * sin_yaw,
            float(origin_xy_m[1]) - cell_x * sin_yaw - cell_y * cos_yaw)


def _cell_range(low: float, high: float, origin: float, cell: float, count: int):
    first = max(0, int(math.floor((low - origin) / cell)))
    last = min(count, int(math.ceil((high - origin) / cell)))
    return first, last


def _mark_centres_inside(inside: np.ndarray, geometry: BaseGeometry, x_min: float, y_min: float,
                         cell_x: float, cell_y: float) -> None:
    """Set the cells whose centre lies in the interior of ``geometry``."""
    if geometry.area <= 0.0:
        return
    rows, cols = inside.shape
    gx0, gy0, gx1, gy1 = geometry.bounds
    c0, c1 = _cell_range(gx0, gx1, x_min, cell_x, cols)
    r0, r1 = _cell_range(gy0, gy1, y_min, cell_y, rows)
    if c1 <= c0 or r1 <= r0:
        return
    xs = x_min + (np.arange(c0, c1) + 0.5) * cell_x
    ys = y_min + (np.arange(r0, r1) + 0.5) * cell_y
    grid_x, grid_y = np.meshgrid(xs, ys)
    shapely.prepare(geometry)
    inside[r0:r1, c0:c1] |= shapely.contains_xy(geometry, grid_x, grid_y)


def _outline_cells(geometries: Sequence[BaseGeometry], x_min: float, y_min: float,
                   cell_x: float, cell_y: float, rows: int, cols: int):
    """Return the cells of points sampled along every obstacle outline.

    Samples are at most half the smaller cell edge apart, so every outline point lies within a
    quarter cell of a sample. Every cell that an outline touches is therefore the cell of a
    sample or one of its eight neighbours, and dilating the result by one cell covers them.
    """
    spacing = 0.5 * min(cell_x, cell_y)
    parts = shapely.get_parts(np.asarray(list(geometries), dtype=object))
    if parts.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    polygonal = shapely.get_type_id(parts) == 3
    outlines = parts.copy()
    outlines[polygonal] = shapely.boundary(parts[polygonal])
    coords = shapely.get_coordinates(shapely.segmentize(outlines, spacing))
    col = np.clip(np.floor((coords[:, 0] - x_min) / cell_x), 0, cols - 1).astype(np.intp)
    row = np.clip(np.floor((coords[:, 1] - y_min) / cell_y), 0, rows - 1).astype(np.intp)
    return row, col
