"""Rounded corners for differential-drive robots with a minimum turning radius.

:func:`round_corners` replaces each corner of a path by a circular arc of radius
``robot.min_turn_radius_m`` tangent to both edges, as a polyline of chords. The robot follows
the chords, which lie between the arc and the corner, so the chords themselves are what the
collision check covers: all chords of all corners go to ``segments_free`` in one call. A corner
keeps its sharp vertex (and the robot turns in place there) when the arc would need more than
half of an adjacent edge or when any of its chords collides.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mapl_robotics.planning.edges import edges_free
from mapl_robotics.planning.models import RobotModel

__all__ = ['RoundedPath', 'round_corners']

# Maximum angle one chord of an arc spans. The yaw-rate rule below may ask for less.
_MAX_CHORD_RAD = math.pi / 8.0


@dataclasses.dataclass(frozen=True, eq=False)
class RoundedPath:
    """A path with rounded corners: vertices and, per edge, whether it is an arc chord."""

    xy_m: np.ndarray
    arc_edges: np.ndarray

    @property
    def rounded_corners(self) -> int:
        """Number of corners replaced by arcs."""
        if self.arc_edges.size == 0:
            return 0
        starts = self.arc_edges & ~np.concatenate([[False], self.arc_edges[:-1]])
        return int(np.count_nonzero(starts))


def _arc_points(corner: np.ndarray, incoming: np.ndarray, outgoing: np.ndarray,
                radius_m: float, max_chord_rad: float):
    """Return the arc polyline (tangent point to tangent point) for one corner, or None."""
    cross = incoming[0] * outgoing[1] - incoming[1] * outgoing[0]
    turn_rad = math.atan2(cross, float(np.dot(incoming, outgoing)))
    if abs(turn_rad) < 1e-9:
        return None
    tangent_m = radius_m * math.tan(abs(turn_rad) / 2.0)
    side = 1.0 if turn_rad > 0 else -1.0
    entry = corner - tangent_m * incoming
    normal = side * np.array([-incoming[1], incoming[0]])
    centre = entry + radius_m * normal
    start_angle = math.atan2(entry[1] - centre[1], entry[0] - centre[0])
    pieces = max(int(math.ceil(abs(turn_rad) / max_chord_rad)), 1)
    angles = start_angle + np.linspace(0.0, turn_rad, pieces + 1)
    points = centre + radius_m * np.column_stack([np.cos(angles), np.sin(angles)])
    points[-1] = corner + tangent_m * outgoing
    return points, tangent_m


def round_corners(checker, xy_m, *, robot: RobotModel, sample_dt_s: float) -> RoundedPath:
    """Return ``xy_m`` with every corner that allows it replaced by an arc of radius
    ``robot.min_turn_radius_m``.

    Chords span at most pi/8 and at most ``2 * max_yaw_rate_radps * sample_dt_s``, so the yaw
    change where an arc meets a straight edge stays within the yaw-rate limit over one sample
    period (see :func:`~mapl_robotics.planning.timing.time_parameterize`). With
    ``min_turn_radius_m == 0`` the path comes back unchanged.
    """
    xy = np.asarray(xy_m, dtype=float)
    edge_count = max(len(xy) - 1, 0)
    radius_m = robot.min_turn_radius_m
    if radius_m <= 0.0 or len(xy) < 3:
        return RoundedPath(xy_m=xy.copy(), arc_edges=np.zeros(edge_count, dtype=bool))
    max_chord_rad = min(_MAX_CHORD_RAD, 2.0 * robot.max_yaw_rate_radps * sample_dt_s)
    edges = np.diff(xy, axis=0)
    edge_m = np.hypot(edges[:, 0], edges[:, 1])
    directions = edges / edge_m[:, None]
    arcs: dict[int, np.ndarray] = {}
    for vertex in range(1, len(xy) - 1):
        found = _arc_points(xy[vertex], directions[vertex - 1], directions[vertex], radius_m,
                            max_chord_rad)
        if found is None:
            continue
        points, tangent_m = found
        # Less than half of each edge, so that arcs at neighbouring corners never touch.
        if tangent_m < 0.5 * min(edge_m[vertex - 1], edge_m[vertex]):
            arcs[vertex] = points
    if arcs:
        chords = [(vertex, points[:-1], points[1:]) for vertex, points in arcs.items()]
        free = edges_free(checker, np.concatenate([low for _, low, _ in chords]),
                          np.concatenate([high for _, _, high in chords]))
        offset = 0
        for vertex, low, _ in chords:
            if not np.all(free[offset:offset + len(low)]):
                del arcs[vertex]
            offset += len(low)
    points = [xy[:1]]
    flags: list[bool] = []
    for vertex in range(1, len(xy)):
        arc = arcs.get(vertex)
        if arc is None:
            points.append(xy[vertex:vertex + 1])
            flags.append(False)
            continue
        points.append(arc)
        flags.append(False)
        flags.extend([True] * (len(arc) - 1))
    path = np.concatenate(points)
    # Rounding can put an arc end on the next vertex; drop the repeated point.
    keep = np.ones(len(path), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(path, axis=0), axis=1) > 1e-9
    flags_array = np.asarray(flags, dtype=bool)[keep[1:]]
    return RoundedPath(xy_m=path[keep], arc_edges=flags_array)
