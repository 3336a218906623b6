"""The static world: map bounds plus obstacle polygons, and exact disc collision checks.

Every map format loads into a :class:`World`. Planners ask a :class:`CollisionChecker` (one per
robot radius, cached) whether points and straight edges are free for a disc robot. Edge checks
are exact for the swept disc: an edge is free when the distance from the segment to every
obstacle is at least the radius, computed by GEOS, never by sampling along the edge.
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

__all__ = ['World', 'CollisionChecker']


class World:
    """Static map: a rectangular boundary and obstacle geometry, in metres in the map frame.

    :param bounds_m: ``(x_min, y_min, x_max, y_max)`` of the free workspace.
    :param obstacles: polygons (or other shapely geometries) that robots must not touch.
    :param name: a label for messages and plots.
    """

    def __init__(self, *, bounds_m: Sequence[float], obstacles: Iterable[BaseGeometry] = (),
                 name: str = 'world', metadata: dict | None = None) -> None:
        bounds = tuple(float(v) for v in bounds_m)
        if len(bounds) != 4 or not all(math.isfinite(v) for v in bounds):
            raise InvalidCoordinateError(
                f'bounds_m={bounds_m!r} must be four finite numbers (x_min, y_min, x_max, y_max)')
        if not (bounds[2] > bounds[0] and bounds[3] > bounds[1]):
            raise EmptyMapError(
                f'bounds_m={bounds!r} enclose no area; x_max must exceed x_min and y_max '
                'must exceed y_min')
        geometries = []
        for index, geometry in enumerate(obstacles):
            if geometry is None or geometry.is_empty:
                continue
            if not geometry.is_valid:
                raise InvalidGeometryError(
                    f'obstacle {index} of world {name!r} is invalid '
                    f'({shapely.is_valid_reason(geometry)}); repair it with '
                    'mapl_robotics.geometry.maps.repair_polygon before building the world')
            geometries.append(geometry)
        self.name = name
        self.bounds_m: tuple[float, float, float, float] = bounds  # type: ignore[assignment]
        self.obstacles: tuple[BaseGeometry, ...] = tuple(geometries)
        self.metadata = dict(metadata or {})
        self._boundary = box(*bounds)
        self._checkers: dict[float, CollisionChecker] = {}
        self._lock = threading.Lock()
        if self.free_area_m2 <= 0.0:
            raise EmptyMapError(f'world {name!r} has no free area inside bounds {bounds!r}; '
                                'check the map thresholds or the obstacle list')

    @property
    def width_m(self) -> float:
        return self.bounds_m[2] - self.bounds_m[0]

    @property
    def height_m(self) -> float:
        return self.bounds_m[3] - self.bounds_m[1]

    @property
    def obstacle_union(self) -> BaseGeometry:
        return shapely.union_all(self.obstacles) if self.obstacles else Polygon()

    @property
    def free_area_m2(self) -> float:
        return float(self._boundary.difference(self.obstacle_union).area)

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
                f'{what} {tuple(xy_m)!r} must be two finite numbers (x, y) in metres')
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
                self._checkers[key] = checker
        return checker

    def __repr__(self) -> str:
        return (f'World({self.name!r}, bounds_m={self.bounds_m}, '
                f'{len(self.obstacles)} obstacles)')


class CollisionChecker:
    """Exact collision checks for a disc of ``radius_m`` against a world's static obstacles.

    The robot disc must stay inside the map bounds and at least ``radius_m`` from every
    obstacle. Queries are vectorized over arrays of points or segments and use a shapely
    ``STRtree`` with the ``dwithin`` predicate, so the answer is exact up to floating point.
    """

    def __init__(self, world: World, radius_m: float) -> None:
        self.world = world
        self.radius_m = float(radius_m)
        self._tree = shapely.STRtree(list(world.obstacles))
        x_min, y_min, x_max, y_max = world.bounds_m
        r = self.radius_m
        self._inner_bounds = (x_min + r, y_min + r, x_max - r, y_max - r)

    def _inside_inner_bounds(self, xy: np.ndarray) -> np.ndarray:
        x_min, y_min, x_max, y_max = self._inner_bounds
        return ((xy[:, 0] >= x_min) & (xy[:, 0] <= x_max)
                & (xy[:, 1] >= y_min) & (xy[:, 1] <= y_max))

    def points_free(self, xy_m) -> np.ndarray:
        """Return, per point, whether a disc centred there is collision-free."""
        xy = np.atleast_2d(np.asarray(xy_m, dtype=float))
        free = self._inside_inner_bounds(xy) & np.all(np.isfinite(xy), axis=1)
        if len(self.world.obstacles) and np.any(free):
            index = np.flatnonzero(free)
            points = shapely.points(xy[index])
            hits = self._hits(points)
            free[index[hits]] = False
        return free

    def point_free(self, xy_m) -> bool:
        return bool(self.points_free(np.asarray(xy_m, dtype=float)[None, :])[0])

    def segments_free(self, start_xy_m, end_xy_m) -> np.ndarray:
        """Return, per segment, whether the disc swept from start to end is collision-free."""
        start = np.atleast_2d(np.asarray(start_xy_m, dtype=float))
        end = np.atleast_2d(np.asarray(end_xy_m, dtype=float))
        finite = np.all(np.isfinite(start), axis=1) & np.all(np.isfinite(end), axis=1)
        # The bounds are convex, so a segment stays inside when both ends do.
        free = self._inside_inner_bounds(start) & self._inside_inner_bounds(end) & finite
        if len(self.world.obstacles) and np.any(free):
            index = np.flatnonzero(free)
            coords = np.stack([start[index], end[index]], axis=1)
            lines = shapely.linestrings(coords)
            hits = self._hits(lines)
            free[index[hits]] = False
        return free

    def segment_free(self, start_xy_m, end_xy_m) -> bool:
        return bool(self.segments_free(start_xy_m, end_xy_m)[0])

    def path_free(self, xy_m) -> bool:
        """Return whether every edge of a polyline is free."""
        xy = np.asarray(xy_m, dtype=float)
        if len(xy) == 1:
            return self.point_free(xy[0])
        return bool(np.all(self.segments_free(xy[:-1], xy[1:])))

    def _hits(self, geometries: np.ndarray) -> np.ndarray:
        """Return a mask of the geometries that come within the radius of any obstacle."""
        if self.radius_m > 0.0:
            pairs = self._tree.query(geometries, predicate='dwithin', distance=self.radius_m)
        else:
            pairs = self._tree.query(geometries, predicate='intersects')
        hit = np.zeros(len(geometries), dtype=bool)
        hit[pairs[0]] = True
        if self.radius_m > 0.0 and pairs.shape[1]:
            # dwithin is "distance <= radius": touching at exactly the radius is allowed.
            idx_geom, idx_obs = pairs
            obstacles = self._tree.geometries.take(idx_obs)
            distances = shapely.distance(geometries[idx_geom], obstacles)
            touching_only = distances >= self.radius_m
            hit[:] = False
            np.logical_or.at(hit, idx_geom[~touching_only], True)
        return hit
