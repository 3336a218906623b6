"""The static world: map bounds plus obstacle polygons, and exact disc collision checks.

Every map format loads into a :class:`World`. Planners ask a :class:`CollisionChecker` (one per
robot radius, cached; see :mod:`mapl_robotics.geometry.collision`) whether points and straight
edges are free for a disc robot. Edge checks are exact for the swept disc: an edge is free when
the distance from the segment to every obstacle is at least the radius. The world builds and
caches what the checkers share: the spatial index and the clearance field.
"""

from __future__ import annotations

import math
import threading
from typing import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from mapl_robotics.errors import (EmptyMapError, InvalidCoordinateError, InvalidGeometryError,
                                  OutOfBoundsError)
from mapl_robotics.geometry.box_kernels import BoxIndex
from mapl_robotics.geometry.clearance import ClearanceField
from mapl_robotics.geometry.collision import CollisionChecker
from mapl_robotics.geometry.occupancy import (FREE, OCCUPIED, UNKNOWN, OccupancyGrid,
                                               mask_rectangles, rasterize_obstacles)

__all__ = ['World', 'CollisionChecker', 'OccupancyGrid']

# Clearance fields of grid maps are subdivided down to about FIELD_TARGET_CELL_M, and those of
# polygon maps get about FIELD_TARGET_CELLS cells. FIELD_MAX_CELLS caps the memory: a field
# stores four float32 arrays, so 2 million cells take 32 MB.
FIELD_TARGET_CELL_M = 0.05
FIELD_TARGET_CELLS = 250_000
FIELD_MAX_CELLS = 2_000_000
# Marks a cache entry whose value (which may be None) has not been computed yet.
_UNBUILT = object()


def _format_m(value: float) -> str:
    """Return a coordinate for a message: 3 decimals, or 3 significant digits when huge."""
    return f'{value:.3f}' if abs(value) < 1e9 else f'{value:.3g}'


def _as_geometry(obstacle, index: int, name: str) -> BaseGeometry:
    """Return a shapely geometry for an obstacle, building a polygon from a list of points."""
    if isinstance(obstacle, BaseGeometry):
        return obstacle
    try:
        points = np.asarray(obstacle, dtype=float)
    except (TypeError, ValueError):
        points = None
    if points is not None and points.ndim == 2 and points.shape[1] == 2 \
            and len(points) >= 3 and np.all(np.isfinite(points)):
        return Polygon(points)
    raise InvalidGeometryError(
        f'obstacle {index} of world {name!r} is {obstacle!r}, which is not a shapely geometry '
        'or a list of at least 3 finite (x, y) points; pass, for example, '
        'shapely.Polygon([(1, 1), (2, 1), (2, 2)])')


class World:
    """Static map: a rectangular boundary and obstacle geometry, in metres in the map frame.

    :param bounds_m: ``(x_min, y_min, x_max, y_max)`` of the workspace.
    :param obstacles: valid shapely geometries (usually polygons) that robots must not touch.
    :param name: a label for messages and plots.
    :param metadata: free-form facts about the source (format, file, cell size).
    :param source_grid: the occupancy grid the obstacles were built from, if any. Build grid
        worlds with :meth:`from_occupancy_grid`, which keeps obstacles and grid consistent.
    :param unknown_is_obstacle: how ``source_grid`` cells other than 0 and 100 count.
    """

    def __init__(self, *, bounds_m: Sequence[float], obstacles: Iterable[BaseGeometry] = (),
                 name: str = 'world', metadata: dict | None = None,
                 source_grid: OccupancyGrid | None = None,
                 unknown_is_obstacle: bool = True) -> None:
        bounds = tuple(float(v) for v in bounds_m)
        if len(bounds) != 4 or not all(math.isfinite(v) for v in bounds):
            raise InvalidCoordinateError(
                f'bounds_m={bounds_m!r} must be four finite numbers (x_min, y_min, x_max, y_max)')
        if not (bounds[2] > bounds[0] and bounds[3] > bounds[1]):
            raise EmptyMapError(
                f'bounds_m={bounds!r} enclose no area; x_max must exceed x_min and y_max '
                'must exceed y_min')
        geometries = [_as_geometry(g, index, name) for index, g in enumerate(obstacles)
                      if g is not None]
        geometries = [g for g in geometries if not g.is_empty]
        if geometries:
            valid = shapely.is_valid(np.asarray(geometries, dtype=object))
            if not np.all(valid):
                index = int(np.argmin(valid))
                raise InvalidGeometryError(
                    f'obstacle {index} of world {name!r} is invalid '
                    f'({shapely.is_valid_reason(geometries[index])}); repair it with '
                    'mapl_robotics.geometry.maps.repair_polygon before building the world')
        self.name = name
        self.bounds_m: tuple[float, float, float, float] = bounds  # type: ignore[assignment]
        self.obstacles: tuple[BaseGeometry, ...] = tuple(geometries)
        self.metadata = dict(metadata or {})
        self.source_grid = source_grid
        self.unknown_is_obstacle = bool(unknown_is_obstacle)
        self._boundary = box(*bounds)
        self._init_caches()
        if self.free_area_m2 <= 0.0:
            raise EmptyMapError(f'world {name!r} has no free area inside bounds {bounds!r}; '
                                'check the map thresholds or the obstacle list')

    def _init_caches(self) -> None:
        self._checkers: dict[float, CollisionChecker] = {}
        self._lock = threading.Lock()
        self._tree: shapely.STRtree | None = None
        self._field: ClearanceField | None = None
        self._union: BaseGeometry | None = None
        self._free_area_m2: float | None = None
        self._box_index: BoxIndex | None | object = _UNBUILT

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ('_checkers', '_lock', '_tree', '_field', '_union', '_free_area_m2',
                    '_box_index'):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_caches()

    @classmethod
    def from_occupancy_grid(cls, grid: OccupancyGrid, *, unknown_is_obstacle: bool = True,
                            name: str = 'grid', metadata: dict | None = None) -> 'World':
        """Build a world whose obstacles are the blocked cells of ``grid``.

        Runs of blocked cells merge into rectangles (see
        :func:`~mapl_robotics.geometry.occupancy.mask_rectangles`). A rotated grid
        (``origin_yaw_rad != 0``) gets axis-aligned bounds around it, and the area between the
        grid and those bounds becomes an obstacle.
        """
        mask = grid.obstacle_mask(unknown_is_obstacle=unknown_is_obstacle)
        if not np.any(~mask):
            raise EmptyMapError(
                f'map {name!r} has no free cell: all {mask.size} cells are occupied'
                + (' or unknown; load it with unknown_is_obstacle=False or check the '
                   'thresholds' if unknown_is_obstacle else '; check the thresholds'))
        rectangles = mask_rectangles(mask).astype(float) * grid.resolution_m
        corners = np.stack([rectangles[:, [0, 1]], rectangles[:, [2, 1]],
                            rectangles[:, [2, 3]], rectangles[:, [0, 3]]], axis=1)
        obstacles = list(shapely.polygons(grid.local_to_world(corners)))
        if grid.origin_yaw_rad == 0.0:
            x0, y0 = grid.origin_xy_m
            bounds = (x0, y0, x0 + grid.width_m, y0 + grid.height_m)
        else:
            outline = Polygon(grid.corners_xy_m())
            bounds = outline.bounds
            # Outside the rotated grid nothing is known, so it is an obstacle. Slivers from
            # rounding (a yaw of a multiple of 90 degrees) are dropped.
            outside = shapely.get_parts(box(*bounds).difference(outline))
            min_area_m2 = 1e-9 * outline.area
            obstacles += [part for part in outside if part.area > min_area_m2]
        return cls(bounds_m=bounds, obstacles=obstacles, name=name, metadata=metadata,
                   source_grid=grid, unknown_is_obstacle=unknown_is_obstacle)

    @property
    def width_m(self) -> float:
        return self.bounds_m[2] - self.bounds_m[0]

    @property
    def height_m(self) -> float:
        return self.bounds_m[3] - self.bounds_m[1]

    @property
    def obstacle_union(self) -> BaseGeometry:
        """Union of all obstacles (computed once)."""
        if self._union is None:
            if not self.obstacles:
                self._union = Polygon()
            else:
                self._union = shapely.union_all(np.asarray(self.obstacles, dtype=object))
        return self._union

    @property
    def free_area_m2(self) -> float:
        """Free area inside the bounds; for grid worlds, the area of the free cells."""
        if self._free_area_m2 is None:
            if self.source_grid is not None:
                mask = self.source_grid.obstacle_mask(
                    unknown_is_obstacle=self.unknown_is_obstacle)
                free_cells = int(mask.size - np.count_nonzero(mask))
                self._free_area_m2 = free_cells * self.source_grid.resolution_m ** 2
            else:
                self._free_area_m2 = float(
                    self._boundary.difference(self.obstacle_union).area)
        return self._free_area_m2

    def contains_xy(self, xy_m) -> np.ndarray:
        """Return whether each point lies inside the map bounds."""
        points = np.atleast_2d(np.asarray(xy_m, dtype=float))
        x_min, y_min, x_max, y_max = self.bounds_m
        return ((points[:, 0] >= x_min) & (points[:, 0] <= x_max)
                & (points[:, 1] >= y_min) & (points[:, 1] <= y_max))

    def require_inside(self, xy_m: Sequence[float], *, what: str = 'position') -> np.ndarray:
        """Return ``xy_m`` as an array, raising a typed error if it is non-finite or outside."""
        try:
            point = np.asarray(xy_m, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidCoordinateError(f'{what} {xy_m!r} must be two finite numbers (x, y) in '
                                         'metres') from None
        if point.shape != (2,) or not np.all(np.isfinite(point)):
            shown = (repr(xy_m) if not isinstance(xy_m, (Sequence, np.ndarray)) else
                     '(' + ', '.join(_format_m(float(value)) for value in point) + ')')
            raise InvalidCoordinateError(f'{what} {shown} must be two finite numbers (x, y) '
                                         'in metres')
        if not self.contains_xy(point)[0]:
            raise OutOfBoundsError(
                f'{what} ({_format_m(point[0])}, {_format_m(point[1])}) m is outside map '
                f'{self.name!r} with '
                f'bounds x in [{self.bounds_m[0]:.3f}, {self.bounds_m[2]:.3f}], '
                f'y in [{self.bounds_m[1]:.3f}, {self.bounds_m[3]:.3f}]; pick a point inside')
        return point

    def checker(self, radius_m: float) -> 'CollisionChecker':
        """Return the (cached) collision checker for a disc robot of ``radius_m``."""
        if not (math.isfinite(radius_m) and radius_m >= 0.0):
            raise InvalidCoordinateError(
                f'robot radius_m={radius_m} must be a finite number >= 0')
        key = round(float(radius_m), 9)
        with self._lock:
            checker = self._checkers.get(key)
        if checker is None:
            checker = CollisionChecker(self, key)
            with self._lock:
                checker = self._checkers.setdefault(key, checker)
        return checker

    def strtree(self) -> shapely.STRtree:
        """Return the spatial index over the prepared obstacles (built once)."""
        with self._lock:
            if self._tree is None:
                geometries = np.asarray(self.obstacles, dtype=object)
                shapely.prepare(geometries)
                self._tree = shapely.STRtree(geometries)
            return self._tree

    def box_index(self) -> 'BoxIndex | None':
        """Return the cached bucket index of the obstacles when all are axis-aligned boxes,
        else None (see :mod:`mapl_robotics.geometry.box_kernels`)."""
        with self._lock:
            if self._box_index is _UNBUILT:
                self._box_index = BoxIndex.from_obstacles(self.obstacles, self.bounds_m)
            return self._box_index

    def clearance_field(self) -> ClearanceField:
        """Return the conservative clearance field of the obstacles (built once)."""
        with self._lock:
            if self._field is None:
                self._field = self._build_field()
            return self._field

    def _build_field(self) -> ClearanceField:
        grid = self.source_grid
        if grid is not None:
            mask = grid.obstacle_mask(unknown_is_obstacle=self.unknown_is_obstacle)
            subdivision = max(1, math.ceil(grid.resolution_m / FIELD_TARGET_CELL_M))
            allowed = max(1, math.floor(math.sqrt(FIELD_MAX_CELLS / mask.size)))
            factor = min(subdivision, allowed)
            if factor > 1:
                mask = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
            # A grid too large for the cell budget gets a field of blocks of cells instead.
            coarsening = max(1, math.ceil(math.sqrt(mask.size / FIELD_MAX_CELLS)))
            return ClearanceField.from_mask(
                mask, cell_size_m=grid.resolution_m / factor, origin_xy_m=grid.origin_xy_m,
                yaw_rad=grid.origin_yaw_rad, outside_is_obstacle=grid.origin_yaw_rad != 0.0,
                coarsening=coarsening)
        target_cell_m = math.sqrt(self.width_m * self.height_m / FIELD_TARGET_CELLS)
        return ClearanceField.from_geometries(self.obstacles, bounds_m=self.bounds_m,
                                              target_cell_m=target_cell_m)

    def to_occupancy_grid(self, *, resolution_m: float) -> OccupancyGrid:
        """Return the obstacles as an occupancy grid: 0 free, 100 occupied, ROS row order.

        A world built from a grid at the same resolution returns that grid's obstacle cells
        exactly, with its origin and yaw. Source cells that were not known free but that the
        world lets robots enter (``unknown_is_obstacle=False``) come back as -1 (unknown), so
        unknown space is never reported as free. Otherwise the grid is axis-aligned at the
        lower-left corner of the bounds, covers them (rounded up to whole cells), and a cell is
        occupied when it shares area with an obstacle.
        """
        if not (math.isfinite(resolution_m) and resolution_m > 0.0):
            raise InvalidCoordinateError(
                f'resolution_m={resolution_m!r} must be a positive finite number of metres')
        grid = self.source_grid
        if grid is not None and math.isclose(resolution_m, grid.resolution_m, rel_tol=1e-9):
            mask = grid.obstacle_mask(unknown_is_obstacle=self.unknown_is_obstacle)
            data = np.where(mask, OCCUPIED, np.where(grid.data == FREE, FREE, UNKNOWN))
            return OccupancyGrid(data=data.astype(np.int8),
                                 resolution_m=grid.resolution_m, origin_xy_m=grid.origin_xy_m,
                                 origin_yaw_rad=grid.origin_yaw_rad)
        return rasterize_obstacles(self.obstacles, bounds_m=self.bounds_m,
                                   resolution_m=resolution_m)

    def __repr__(self) -> str:
        return (f'World({self.name!r}, bounds_m={self.bounds_m}, '
                f'{len(self.obstacles)} obstacles)')
