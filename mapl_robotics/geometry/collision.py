"""Exact swept-disc collision checks for one robot radius against a world's static obstacles.

A :class:`CollisionChecker` decides whether a disc of ``radius_m`` centred at points, or swept
along straight edges, stays inside the map bounds and at least ``radius_m`` from every
obstacle. Get one from :meth:`mapl_robotics.geometry.world.World.checker`, which caches one
per radius.

Most queries are decided by the world's clearance field
(:mod:`mapl_robotics.geometry.clearance`, :mod:`mapl_robotics.geometry.field_checks`). Only the
points and edges whose clearance lies within the field's error of the radius go to GEOS,
through a shapely ``STRtree`` and the ``dwithin`` predicate. Every result therefore equals the
GEOS result, up to floating point at exactly the radius.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from mapl_robotics.errors import InvalidCoordinateError
from mapl_robotics.geometry import box_kernels, field_kernels
from mapl_robotics.geometry.field_checks import (classify_segments, free_prefix_fraction,
                                                 march_segment)

if TYPE_CHECKING:
    from mapl_robotics.geometry.world import World

__all__ = ['CollisionChecker']

# Batched edge checks cut edges into pieces of COARSE_SPACING_CELLS field cells and halve the
# unproven ones down to FINE_SPACING_CELLS. Single edge checks march at most MARCH_MAX_STEPS
# steps and probe PROBE_MAX_STEPS samples PROBE_SPACING_CELLS apart before asking GEOS. These
# were tuned with bench/collision.py and replayed planner batches: finer limits send fewer
# edges to GEOS but cost more look-ups. free_prefix_fractions marches at most
# PREFIX_MAX_STEPS steps: on nav2's warehouse, 16 steps stop a median 1.6 cm short of the true
# free prefix, at about 12 us per edge in batches of 50.
COARSE_SPACING_CELLS = 16.0
FINE_SPACING_CELLS = 2.0
PROBE_SPACING_CELLS = 4.0
MARCH_MAX_STEPS = 12
PREFIX_MAX_STEPS = 16
PROBE_MAX_STEPS = 8
# The compiled batch check (field_kernels.classify_edges) samples every WALK_STEP_CELLS field
# cells where sphere tracing cannot jump. With one cell, the walk alone left about 6 % of the
# planner edges of bench/planning.py undecided on MovingAI's warehouse and 1 % on nav2's.
WALK_STEP_CELLS = 1.0
# On maps of rectangles, an edge that the field walk has not decided after WALK_MAX_SAMPLES
# look-ups goes to the exact box distances (box_kernels). Replayed planner batches of
# bench/planning.py ran fastest with 0 to 4 on MovingAI's warehouse, and any value from 0 to
# 32 cost about the same on nav2's.
WALK_MAX_SAMPLES = 4


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
        # Walk spacing of the compiled edge check where sphere tracing cannot jump.
        self._walk_step_m = WALK_STEP_CELLS * cell_m
        self._inner_bounds_array = np.array(self._inner_bounds, dtype=float)
        self._kernel_field = (self._field.kernel_arguments() if self._field is not None
                              else None)
        if self._field is not None:
            field_kernels.warm_up()
        # Exact distances to rectangular obstacles decide most of what the field leaves open.
        self._boxes = world.box_index() if self._has_obstacles else None
        if self._boxes is not None:
            box_kernels.warm_up()
        self._box_arguments = field_kernels.box_arguments(self._boxes)

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
        xy = _as_points(xy_m, 'xy_m')
        if self._field is None:
            return self._inside_inner_bounds(xy) & np.all(np.isfinite(xy), axis=1)
        xy = np.ascontiguousarray(xy)
        codes = np.empty(len(xy), dtype=np.int8)
        field_kernels.classify_points(*self._kernel_field, self._inner_bounds_array, xy,
                                      self.radius_m + self._margin_m,
                                      self.radius_m - self._margin_m, codes)
        self._decide_near_boxes(xy, xy, codes)
        free = codes == field_kernels.FREE
        undecided = codes == field_kernels.UNDECIDED
        if undecided.any():
            exact = np.flatnonzero(undecided)
            free[exact] = ~self._hits(shapely.points(xy[exact]))
        return free

    def compiled_check(self) -> tuple | None:
        """Return the arguments that :func:`~mapl_robotics.geometry.field_kernels.edge_code`
        takes as ``check``, so compiled planners can test edges without leaving numba; None
        for a world without obstacles. Codes other than FREE leave an edge unproven, which
        such callers treat as blocked or hand to :meth:`segments_free`."""
        if self._field is None:
            return None
        return (*self._kernel_field, self._inner_bounds_array, *self._box_arguments,
                self.radius_m + self._margin_m, self.radius_m - self._margin_m,
                self._walk_step_m, WALK_MAX_SAMPLES)

    def _decide_near_boxes(self, start: np.ndarray, end: np.ndarray, codes: np.ndarray) -> None:
        """Re-decide undecided codes from exact distances to rectangular obstacles."""
        if self._boxes is None:
            return
        undecided = np.flatnonzero(codes == field_kernels.UNDECIDED)
        if undecided.size:
            box_kernels.classify_near_boxes(*self._boxes.kernel_arguments(), start, end,
                                            undecided, self.radius_m + self._margin_m,
                                            self.radius_m - self._margin_m, codes)

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
        start = _as_points(start_xy_m, 'start_xy_m')
        end = _as_points(end_xy_m, 'end_xy_m')
        if start.shape != end.shape:
            raise InvalidCoordinateError(
                f'start_xy_m has {len(start)} points but end_xy_m has {len(end)}; pass one end '
                'per start')
        if self._field is None:
            finite = np.all(np.isfinite(start), axis=1) & np.all(np.isfinite(end), axis=1)
            # The bounds are convex, so a segment stays inside when both ends do.
            return self._inside_inner_bounds(start) & self._inside_inner_bounds(end) & finite
        start = np.ascontiguousarray(start)
        end = np.ascontiguousarray(end)
        codes = np.empty(len(start), dtype=np.int8)
        field_kernels.classify_edges(*self._kernel_field, self._inner_bounds_array,
                                     *self._box_arguments, start, end,
                                     self.radius_m + self._margin_m,
                                     self.radius_m - self._margin_m, self._walk_step_m,
                                     WALK_MAX_SAMPLES, codes)
        free = codes == field_kernels.FREE
        undecided = codes == field_kernels.UNDECIDED
        if undecided.any():
            exact = np.flatnonzero(undecided)
            free[exact] = ~self._hits(_edge_geometries(start[exact], end[exact]))
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

    def free_prefix_fractions(self, start_xy_m, end_xy_m) -> np.ndarray:
        """Return, per segment, how far from its start the disc can sweep, as a fraction.

        ``t`` in [0, 1] means the swept disc along ``[start, start + t (end - start)]`` is
        proven free (exactly, like :meth:`segments_free`), which suits steering a tree
        towards a sample in one call. The result is conservative: the true free prefix can be
        longer, because only the clearance field is consulted. It is 0 when the start is not
        proven free or lies outside the map.
        """
        start = _as_points(start_xy_m, 'start_xy_m')
        end = _as_points(end_xy_m, 'end_xy_m')
        if start.shape != end.shape:
            raise InvalidCoordinateError(
                f'start_xy_m has {len(start)} points but end_xy_m has {len(end)}; pass one end '
                'per start')
        finite = np.all(np.isfinite(start), axis=1) & np.all(np.isfinite(end), axis=1)
        usable = finite & self._inside_inner_bounds(np.where(finite[:, None], start, 0.0))
        reach = np.zeros(len(start))
        if not np.any(usable):
            return reach
        index = np.flatnonzero(usable)
        limit = self._inner_bounds_exit(start[index], end[index])
        if self._field is None:
            reach[index] = limit
            return reach
        reach[index] = free_prefix_fraction(self._field, start[index], end[index],
                                            radius_m=self.radius_m, margin_m=self._margin_m,
                                            limit=limit, max_steps=PREFIX_MAX_STEPS)
        return reach

    def _inner_bounds_exit(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Return the fraction where each segment from an inside start leaves the inner bounds."""
        delta = end - start
        exit_fraction = np.ones(len(start))
        x_min, y_min, x_max, y_max = self._inner_bounds
        with np.errstate(divide='ignore', invalid='ignore'):
            for axis, low, high in ((0, x_min, x_max), (1, y_min, y_max)):
                step = delta[:, axis]
                to_wall = np.where(step > 0.0, high - start[:, axis], low - start[:, axis])
                fraction = np.where(step != 0.0, to_wall / step, np.inf)
                exit_fraction = np.minimum(exit_fraction, np.maximum(fraction, 0.0))
        return exit_fraction

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


def _as_points(xy_m, name: str) -> np.ndarray:
    """Return points as an ``(N, 2)`` float array; one ``(x, y)`` pair becomes ``(1, 2)``."""
    points = np.asarray(xy_m, dtype=float)
    if points.ndim == 1 and points.size == 2:
        return points[None, :]
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InvalidCoordinateError(
            f'{name} must be an (N, 2) array of x, y in metres, got shape {points.shape}')
    return points


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
