"""The static world: map bounds plus obstacle polygons, and exact disc collision checks.

Every map format loads into a :class:`World`. Planners ask a :class:`CollisionChecker` (one per
robot radius, cached) whether points and straight edges are free for a disc robot. Edge checks
are exact for the swept disc: an edge is free when the distance from the segment to every
obstacle is at least the radius.

Most queries are decided by a conservative clearance field
(:mod:`mapl_robotics.geometry.clearance`) from a few array look-ups. Only the points and edges
whose clearance lies within the field's error of the radius go to GEOS, through a shapely
``STRtree`` and the ``dwithin`` predicate. Both paths return what GEOS alone would return, up
to floating point at exactly the radius.
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
from mapl_robotics.geometry.clearance import ClearanceField
from mapl_robotics.geometry.field_checks import classify_segments, march_segment
from mapl_robotics.geometry.occupancy import (FREE, OCCUPIED, OccupancyGrid, mask_rectangles,
                                               rasterize_obstacles)

__all__ = ['World', 'CollisionChecker', 'OccupancyGrid']

# Clearance fields of grid maps are subdivided down to about FIELD_TARGET_CELL_M, and those of
# polygon maps get about FIELD_TARGET_CELLS cells. FIELD_MAX_CELLS caps the memory: a field
# stores two float64 arrays, so 2 million cells take 32 MB.
FIELD_TARGET_CELL_M = 0.05
FIELD_TARGET_CELLS = 250_000
FIELD_MAX_CELLS = 2_000_000
# Batched edge checks cut edges into pieces of COARSE_SPACING_CELLS field cells and halve the
# unproven ones down to FINE_SPACING_CELLS. Single edge checks march at most MARCH_MAX_STEPS
# steps and probe PROBE_MAX_STEPS samples PROBE_SPACING_CELLS apart before asking GEOS. All
# were tuned with bench/collision.py and replayed planner batches: finer limits send fewer
# edges to GEOS but cost more look-ups.
COARSE_SPACING_CELLS = 16.0
FINE_SPACING_CELLS = 2.0
PROBE_SPACING_CELLS = 4.0
MARCH_MAX_STEPS = 12
PROBE_MAX_STEPS = 8


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
        geometries = [g for g in obstacles if g is not None and not g.is_empty]
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

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ('_checkers', '_lock', '_tree', '_field', '_union', '_free_area_m2'):
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
        point = np.asarray(xy_m, dtype=float).reshape(-1)
        if point.shape != (2,) or not np.all(np.isfinite(point)):
            raise InvalidCoordinateError(
                f'{what} {tuple(np.asarray(xy_m).reshape(-1))!r} must be two finite numbers '
                '(x, y) in metres')
        if not self.contains_xy(point)[0]:
            raise OutOfBoundsError(
                f'{what} ({point[0]:.3f}, {point[1]:.3f}) m is outside map {self.name!r} with '
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
            return ClearanceField.from_mask(
                mask, cell_size_m=grid.resolution_m / factor, origin_xy_m=grid.origin_xy_m,
                yaw_rad=grid.origin_yaw_rad, outside_is_obstacle=grid.origin_yaw_rad != 0.0)
        target_cell_m = math.sqrt(self.width_m * self.height_m / FIELD_TARGET_CELLS)
        return ClearanceField.from_geometries(self.obstacles, bounds_m=self.bounds_m,
                                              target_cell_m=target_cell_m)

    def to_occupancy_grid(self, *, resolution_m: float) -> OccupancyGrid:
        """Return the obstacles as an occupancy grid: 0 free, 100 occupied, ROS row order.

        A world built from a grid at the same resolution returns that grid's obstacle cells
        exactly, with its origin and yaw. Otherwise the grid is axis-aligned at the lower-left
        corner of the bounds, covers them (rounded up to whole cells), and a cell is occupied
        when it shares area with an obstacle.
        """
        if not (math.isfinite(resolution_m) and resolution_m > 0.0):
            raise InvalidCoordinateError(
                f'resolution_m={resolution_m!r} must be a positive finite number of metres')
        grid = self.source_grid
        if grid is not None and math.isclose(resolution_m, grid.resolution_m, rel_tol=1e-9):
            mask = grid.obstacle_mask(unknown_is_obstacle=self.unknown_is_obstacle)
            return OccupancyGrid(data=np.where(mask, OCCUPIED, FREE).astype(np.int8),
                                 resolution_m=grid.resolution_m, origin_xy_m=grid.origin_xy_m,
                                 origin_yaw_rad=grid.origin_yaw_rad)
        return rasterize_obstacles(self.obstacles, bounds_m=self.bounds_m,
                                   resolution_m=resolution_m)

    def __repr__(self) -> str:
        return (f'World({self.name!r}, bounds_m={self.bounds_m}, '
                f'{len(self.obstacles)} obstacles)')


class CollisionChecker:
    """Exact collision checks for a disc of ``radius_m`` against a world's static obstacles.

    The robot disc must stay inside the map bounds and at least ``radius_m`` from every
    obstacle (touching at exactly ``radius_m`` counts as free). Queries are vectorized over
    arrays of points or segments. Non-finite coordinates are never free.
    """

    def __init__(self, world: World, radius_m: float) -> None:
        self.world = world
        self.radius_m = float(radius_m)
        x_min, y_min, x_max, y_max = world.bounds_m
        r = self.radius_m
        self._inner_bounds = (x_min + r, y_min + r, x_max - r, y_max - r)
        self._has_obstacles = len(world.obstacles) > 0
        self._inflated: BaseGeometry | None = None
        self._field = world.clearance_field() if self._has_obstacles else None
        self._tree = world.strtree() if self._has_obstacles else None
        # Field bounds within this margin of the radius go to GEOS, so rounding in the field
        # never decides a case that GEOS would decide the other way.
        self._margin_m = 1e-9 * max(1.0, world.width_m, world.height_m, r)
        cell_m = min(self._field.cell_size_xy_m) if self._field is not None else math.inf
        self._coarse_spacing_m = COARSE_SPACING_CELLS * cell_m
        self._fine_spacing_m = FINE_SPACING_CELLS * cell_m
        self._probe_spacing_m = PROBE_SPACING_CELLS * cell_m

    @property
    def inflated_obstacles(self) -> BaseGeometry:
        """Obstacles grown by the radius: the region the disc centre must avoid (for plots).

        The checks never use it. They compare exact distances with the radius instead, while
        ``buffer`` approximates the rounded corners with chords, slightly inside the arcs.
        """
        if self._inflated is None:
            union = self.world.obstacle_union
            self._inflated = union.buffer(self.radius_m) if self.radius_m > 0.0 else union
        return self._inflated

    def _inside_inner_bounds(self, xy: np.ndarray) -> np.ndarray:
        x_min, y_min, x_max, y_max = self._inner_bounds
        return ((xy[:, 0] >= x_min) & (xy[:, 0] <= x_max)
                & (xy[:, 1] >= y_min) & (xy[:, 1] <= y_max))

    def _inside_inner_bounds_scalar(self, x: float, y: float) -> bool:
        x_min, y_min, x_max, y_max = self._inner_bounds
        return x_min <= x <= x_max and y_min <= y <= y_max

    # -- points -------------------------------------------------------------------------------

    def points_free(self, xy_m) -> np.ndarray:
        """Return, per point, whether a disc centred there is collision-free."""
        xy = np.atleast_2d(np.asarray(xy_m, dtype=float))
        free = self._inside_inner_bounds(xy) & np.all(np.isfinite(xy), axis=1)
        if self._field is None or not np.any(free):
            return free
        index = np.flatnonzero(free)
        lower, upper = self._field.bounds(xy[index])
        hit = upper < self.radius_m - self._margin_m
        undecided = ~hit & (lower < self.radius_m + self._margin_m)
        free[index[hit]] = False
        if np.any(undecided):
            exact = index[undecided]
            free[exact[self._hits(shapely.points(xy[exact]))]] = False
        return free

    def point_free(self, xy_m) -> bool:
        """Return whether a disc centred at one point is collision-free."""
        x, y = _xy(xy_m)
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        if not self._inside_inner_bounds_scalar(x, y):
            return False
        if self._field is None:
            return True
        lower, upper = self._field.bounds_at(x, y)
        if lower >= self.radius_m + self._margin_m:
            return True
        if upper < self.radius_m - self._margin_m:
            return False
        return not self._hit_single(shapely.points(x, y))

    # -- segments -----------------------------------------------------------------------------

    def segments_free(self, start_xy_m, end_xy_m) -> np.ndarray:
        """Return, per segment, whether the disc swept from start to end is collision-free."""
        start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
        end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
        finite = np.all(np.isfinite(start), axis=1) & np.all(np.isfinite(end), axis=1)
        # The bounds are convex, so a segment stays inside when both ends do.
        free = self._inside_inner_bounds(start) & self._inside_inner_bounds(end) & finite
        if self._field is None or not np.any(free):
            return free
        index = np.flatnonzero(free)
        certain_free, certain_hit = self._classify_segments(start[index], end[index])
        free[index[certain_hit]] = False
        undecided = ~(certain_free | certain_hit)
        if np.any(undecided):
            exact = index[undecided]
            free[exact[self._hits(_edge_geometries(start[exact], end[exact]))]] = False
        return free

    def segment_free(self, start_xy_m, end_xy_m) -> bool:
        """Return whether the disc swept along one segment is collision-free.

        The result equals :meth:`segments_free` for one segment. It has less overhead because
        the field is marched along the segment in plain Python, and GEOS decides the rest.
        """
        x0, y0 = _xy(start_xy_m)
        x1, y1 = _xy(end_xy_m)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return False
        if not (self._inside_inner_bounds_scalar(x0, y0)
                and self._inside_inner_bounds_scalar(x1, y1)):
            return False
        if self._field is None:
            return True
        decided = march_segment(self._field, x0, y0, x1, y1, radius_m=self.radius_m,
                                margin_m=self._margin_m,
                                probe_spacing_m=self._probe_spacing_m,
                                max_steps=MARCH_MAX_STEPS, max_probes=PROBE_MAX_STEPS)
        if decided is not None:
            return decided
        if x0 == x1 and y0 == y1:
            return not self._hit_single(shapely.points(x0, y0))
        return not self._hit_single(shapely.linestrings([[x0, y0], [x1, y1]]))

    def path_free(self, xy_m) -> bool:
        """Return whether every edge of a polyline is free."""
        xy = np.asarray(xy_m, dtype=float)
        if len(xy) == 1:
            return self.point_free(xy[0])
        return bool(np.all(self.segments_free(xy[:-1], xy[1:])))

    def _classify_segments(self, start: np.ndarray, end: np.ndarray):
        """Return masks of the segments the clearance field proves free, and proves blocked."""
        return classify_segments(self._field, start, end, radius_m=self.radius_m,
                                 margin_m=self._margin_m,
                                 coarse_spacing_m=self._coarse_spacing_m,
                                 fine_spacing_m=self._fine_spacing_m)

    def _hit_single(self, geometry: BaseGeometry) -> bool:
        """Return whether one geometry comes closer than the radius to an obstacle."""
        if self.radius_m > 0.0:
            _index, distances = self._tree.query_nearest(
                geometry, max_distance=self.radius_m, return_distance=True)
            return bool(distances.size) and float(distances.min()) < self.radius_m
        return bool(self._tree.query(geometry, predicate='intersects').size)

    def _hits(self, geometries: np.ndarray) -> np.ndarray:
        """Return a mask of the geometries that come closer than the radius to an obstacle."""
        if self.radius_m > 0.0:
            pairs = self._tree.query(geometries, predicate='dwithin', distance=self.radius_m)
        else:
            pairs = self._tree.query(geometries, predicate='intersects')
        hit = np.zeros(len(geometries), dtype=bool)
        if self.radius_m > 0.0 and pairs.shape[1]:
            # dwithin is "distance <= radius": touching at exactly the radius is allowed.
            index_geometry, index_obstacle = pairs
            obstacles = self._tree.geometries.take(index_obstacle)
            distances = shapely.distance(geometries[index_geometry], obstacles)
            hit[index_geometry[distances < self.radius_m]] = True
        else:
            hit[pairs[0]] = True
        return hit


def _xy(point) -> tuple[float, float]:
    """Return one point as two floats; a plain pair skips numpy's conversion cost."""
    if len(point) == 2:
        return float(point[0]), float(point[1])
    x, y = np.asarray(point, dtype=float).reshape(2)
    return float(x), float(y)


def _edge_geometries(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Return a line per edge, or a point where the edge has zero length.

    A two-point line with equal points is invalid in GEOS, and ``STRtree.query`` with
    ``dwithin`` finds nothing near it (shapely 2.2, GEOS 3.14), so such edges are points.
    """
    geometries = shapely.linestrings(np.stack([start, end], axis=1))
    degenerate = np.all(start == end, axis=1)
    if np.any(degenerate):
        geometries[degenerate] = shapely.points(start[degenerate])
    return geometries
