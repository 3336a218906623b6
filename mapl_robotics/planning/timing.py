"""Time parameterization: turn a geometric path into a :class:`Trajectory` within the robot's
speed, acceleration and yaw-rate limits.

Along each straight edge the speed follows a trapezoidal profile: accelerate at
``max_accel_mps2``, cruise at up to ``max_speed_mps``, decelerate at ``max_accel_mps2`` (a
triangle when the edge is too short to reach the cruise speed). The trajectory always starts
and ends at rest. A forward and a backward pass over the vertex speeds make every change of
speed reachable within the acceleration limit.

Corner rules (a corner is a vertex where the direction changes by more than
``corner_tolerance_rad``):

- ``'stop'``: the robot comes to rest at every corner. A disc that changes direction at
  speed needs a velocity change, so stopping is the only rule that never needs one.
- ``'deflection'``: the robot passes a corner of turning angle ``theta`` at speed
  ``v = max_accel_mps2 * sample_dt_s / (2 sin(theta / 2))`` (capped by the speed limit). It
  keeps that speed for ``sample_dt_s`` before and after the vertex, so the velocity change at
  the corner, ``2 v sin(theta / 2)``, is spread over one sample period and the
  finite-difference acceleration stays within the limit. Edges too short for the two holds
  lower the corner speed. Corners sharper than 60 degrees are stops, because there the
  corner speed falls below ``max_accel_mps2 * sample_dt_s`` and the holds take about as
  long as stopping. A differential-drive robot can pass a corner only if its yaw
  rate ``theta / sample_dt_s`` is within ``max_yaw_rate_radps``; sharper corners are stops.

Differential drive: the robot moves only along its heading, so at the start (when
``start_yaw_rad`` is given) and at every stop where the direction changes it turns in place
at ``max_yaw_rate_radps`` before it drives on. Holonomic robots keep the yaw of the direction
of travel and spend no time turning.

Rounded corners (``arc_edges``, from :func:`~mapl_robotics.planning.curvature.round_corners`):
all vertices of one arc share one speed, at most :func:`arc_speed_mps`, so each chord is one
sample interval at constant speed and the velocity change at a chord vertex, ``v^2 / R`` per
unit time, stays within half the acceleration limit. The straight edges next to the arc hold
that speed for ``sample_dt_s``. An arc with a stop on it (a wait) is driven from rest to rest,
chord by chord.

Sampling: acceleration and deceleration phases are sampled every ``sample_dt_s`` from the
exact kinematics, cruise phases and holds only at their ends, and every path vertex is a
sample. Every sample lies on the exact motion, so the finite-difference speed between samples
never exceeds ``max_speed_mps`` and the finite-difference acceleration never exceeds
``max_accel_mps2`` (up to rounding).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from mapl_robotics.errors import InvalidCoordinateError, PlannerConfigError
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.planning.models import CORNER_RULES, RobotModel

__all__ = ['time_parameterize', 'arc_speed_mps', 'corner_indices', 'wrap_angle_rad']

_DUPLICATE_M = 1e-9
_SAME_INSTANT_S = 1e-9


def wrap_angle_rad(angle_rad: float) -> float:
    """Return the angle wrapped to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def _clean_path(xy_m) -> tuple[np.ndarray, np.ndarray]:
    """Return the path without repeated vertices and the indices of the vertices kept."""
    xy = np.asarray(xy_m, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise InvalidCoordinateError(
            f'path must be an array of shape (N, 2) with N >= 1, got shape {xy.shape}')
    if not np.all(np.isfinite(xy)):
        raise InvalidCoordinateError('path contains NaN or infinite coordinates; every '
                                     'waypoint must be two finite numbers in metres')
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1) > _DUPLICATE_M
    kept_indices = np.flatnonzero(keep)
    if len(kept_indices) > 1 and kept_indices[-1] != len(xy) - 1:
        # The path must end exactly at its last vertex, so that one replaces its near twin.
        keep[kept_indices[-1]] = False
        keep[-1] = True
    return xy[keep], np.flatnonzero(keep)


def _kept_arc_flags(arc_edges, kept: np.ndarray, raw_xy: np.ndarray) -> np.ndarray | None:
    """Return one arc flag per edge of the cleaned path.

    An edge of the cleaned path joins kept vertices ``kept[j]`` and ``kept[j + 1]`` and so
    covers the raw edges between them. All but one of those are shorter than
    ``_DUPLICATE_M``, so the longest one's flag is the edge's flag.
    """
    if arc_edges is None:
        return None
    raw_edge_count = max(len(raw_xy) - 1, 0)
    flags = np.asarray(arc_edges, dtype=bool).reshape(-1)
    if flags.shape != (raw_edge_count,):
        raise PlannerConfigError(
            f'arc_edges has {flags.size} flags but the path has {raw_edge_count} edges; pass '
            'one flag per edge')
    raw_edge_m = np.hypot(*np.diff(raw_xy, axis=0).T) if raw_edge_count else np.zeros(0)
    merged = np.zeros(max(len(kept) - 1, 0), dtype=bool)
    for index in range(len(merged)):
        span = slice(int(kept[index]), int(kept[index + 1]))
        merged[index] = flags[span][int(np.argmax(raw_edge_m[span]))]
    return merged


def corner_indices(xy_m, *, tolerance_rad: float = 1e-9) -> np.ndarray:
    """Return the indices of interior vertices where the direction changes."""
    xy = np.asarray(xy_m, dtype=float)
    if len(xy) < 3:
        return np.zeros(0, dtype=int)
    heading = np.arctan2(np.diff(xy[:, 1]), np.diff(xy[:, 0]))
    turn = np.abs((np.diff(heading) + math.pi) % (2.0 * math.pi) - math.pi)
    return np.flatnonzero(turn > tolerance_rad) + 1


class _Builder:
    """Collects trajectory samples; time always increases."""

    def __init__(self, t_start_s: float, xy: np.ndarray, yaw_rad: float) -> None:
        self.t_s = [t_start_s]
        self.xy = [xy.copy()]
        self.yaw = [yaw_rad]

    @property
    def now_s(self) -> float:
        return self.t_s[-1]

    def append(self, t_s: float, xy: np.ndarray, yaw_rad: float) -> None:
        if t_s <= self.t_s[-1] + _SAME_INSTANT_S:
            # Rounding can produce two samples at (almost) the same instant, which would turn
            # a rounding error into a huge finite-difference speed. Keep the later position
            # but the earlier yaw (a new heading there would be a yaw jump), and never move
            # the first sample, which is the start.
            if len(self.t_s) > 1:
                self.xy[-1] = xy.copy()
            return
        self.t_s.append(t_s)
        self.xy.append(xy.copy())
        self.yaw.append(yaw_rad)

    def wait(self, duration_s: float) -> None:
        if duration_s > 0.0:
            self.append(self.now_s + duration_s, self.xy[-1], self.yaw[-1])

    def turn(self, to_yaw_rad: float, yaw_rate_radps: float) -> None:
        """Turn in place at the current position, in pieces of at most a quarter turn so
        the interpolated yaw follows the intended direction."""
        from_yaw = self.yaw[-1]
        delta = wrap_angle_rad(to_yaw_rad - from_yaw)
        if abs(delta) < 1e-12:
            self.yaw[-1] = to_yaw_rad
            return
        pieces = max(int(math.ceil(abs(delta) / (math.pi / 2.0))), 1)
        piece_s = abs(delta) / yaw_rate_radps / pieces
        start_s = self.now_s
        for piece in range(1, pieces + 1):
            yaw = wrap_angle_rad(from_yaw + delta * piece / pieces)
            self.append(start_s + piece * piece_s, self.xy[-1], yaw)

    def build(self) -> Trajectory:
        return Trajectory(t_s=np.asarray(self.t_s), xy_m=np.asarray(self.xy),
                          yaw_rad=np.asarray(self.yaw))


def _turn_angles_rad(xy: np.ndarray) -> np.ndarray:
    """Return the direction change at every vertex (zero at the two ends)."""
    angles = np.zeros(len(xy))
    if len(xy) >= 3:
        heading = np.arctan2(np.diff(xy[:, 1]), np.diff(xy[:, 0]))
        angles[1:-1] = np.abs((np.diff(heading) + math.pi) % (2.0 * math.pi) - math.pi)
    return angles


def _vertex_speeds(edge_m: np.ndarray, caps_mps: np.ndarray, hold_in: np.ndarray,
                   hold_out: np.ndarray, arcs: np.ndarray, *, hold_s: float,
                   max_accel_mps2: float) -> np.ndarray:
    """Return the speed at each vertex: at most its cap and reachable from both neighbours.

    An edge with ``hold_in`` (``hold_out``) keeps the speed of its first (last) vertex for
    ``hold_s``, so the part of the edge left to change speed is its length minus those holds.
    Hold lengths come from the caps, which are at least the final speeds, so the estimate is
    safe. All vertices of one arc (a run of ``arcs`` edges) get one speed, the lowest cap
    among them, so the chords are driven without a speed change (see
    :func:`time_parameterize`). The passes therefore run over groups of vertices joined by
    arc edges, linked by the straight edges.
    """
    free_m = np.maximum(edge_m - np.where(hold_in, caps_mps[:-1] * hold_s, 0.0)
                        - np.where(hold_out, caps_mps[1:] * hold_s, 0.0), 0.0)
    # group[v] is the index of vertex v's group, so straight edge i links groups group[i] and
    # group[i] + 1.
    group = np.concatenate([[0], np.cumsum(~arcs)])
    speeds = np.full(int(group[-1]) + 1, np.inf)
    np.minimum.at(speeds, group, caps_mps)
    speeds[0] = 0.0
    speeds[-1] = 0.0
    group_free_m = free_m[~arcs]
    for index in range(len(group_free_m)):
        reachable = math.sqrt(speeds[index] ** 2 + 2.0 * max_accel_mps2 * group_free_m[index])
        speeds[index + 1] = min(speeds[index + 1], reachable)
    for index in range(len(group_free_m) - 1, -1, -1):
        reachable = math.sqrt(speeds[index + 1] ** 2 + 2.0 * max_accel_mps2 * group_free_m[index])
        speeds[index] = min(speeds[index], reachable)
    return speeds[group]


def arc_speed_mps(robot: RobotModel, chord_m: float) -> float:
    """Return the speed on an arc chord of a rounded corner.

    The chord belongs to an arc of radius ``robot.min_turn_radius_m``. The centripetal
    acceleration ``v^2 / R`` gets half the acceleration limit (the rest covers the velocity
    change where the arc meets a straight edge), and the yaw rate along the chords stays
    within ``max_yaw_rate_radps``.
    """
    radius_m = robot.min_turn_radius_m
    chord_rad = 2.0 * math.asin(min(chord_m / (2.0 * radius_m), 1.0))
    yaw_factor = 1.0 if chord_rad == 0.0 else 2.0 * math.sin(chord_rad / 2.0) / chord_rad
    return min(robot.max_speed_mps, math.sqrt(robot.max_accel_mps2 * radius_m / 2.0),
               robot.max_yaw_rate_radps * radius_m * yaw_factor)


def _edge_profile(length_m: float, entry_mps: float, exit_mps: float, *, hold_in_s: float,
                  hold_out_s: float, max_speed_mps: float, max_accel_mps2: float,
                  sample_dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Return sample times and distances along one edge, excluding its start and including
    its end.

    The edge keeps ``entry_mps`` for ``hold_in_s``, changes speed with a trapezoidal profile,
    and keeps ``exit_mps`` for ``hold_out_s`` before its end.
    """
    accel = max_accel_mps2
    hold_in_m = entry_mps * hold_in_s
    hold_out_m = exit_mps * hold_out_s
    middle_m = max(length_m - hold_in_m - hold_out_m, 0.0)
    peak = math.sqrt(max((2.0 * accel * middle_m + entry_mps ** 2 + exit_mps ** 2) / 2.0, 0.0))
    peak = max(min(max_speed_mps, peak), entry_mps, exit_mps)
    # Speed changes at rounding level count as zero, because they would add samples a few
    # femtoseconds apart.
    if peak - entry_mps < 1e-12 * max(peak, 1.0):
        entry_mps = peak
    if peak - exit_mps < 1e-12 * max(peak, 1.0):
        exit_mps = peak
    up_s = (peak - entry_mps) / accel
    up_m = (peak ** 2 - entry_mps ** 2) / (2.0 * accel)
    down_s = (peak - exit_mps) / accel
    down_m = (peak ** 2 - exit_mps ** 2) / (2.0 * accel)
    cruise_m = middle_m - up_m - down_m
    # Rounding leaves a sliver of cruise (or a negative one) when the profile is a triangle.
    cruise_m = cruise_m if cruise_m > 1e-9 * max(length_m, 1.0) else 0.0
    cruise_s = cruise_m / peak if peak > 0.0 else 0.0
    times = []
    distances = []
    elapsed_s = 0.0
    travelled_m = 0.0
    if hold_in_s > 0.0 and hold_in_m > 0.0:
        elapsed_s, travelled_m = hold_in_s, hold_in_m
        times.append(elapsed_s)
        distances.append(travelled_m)
    if up_s > 0.0:
        pieces = max(int(math.ceil(up_s / sample_dt_s)), 1)
        for step in np.linspace(0.0, up_s, pieces + 1)[1:]:
            times.append(elapsed_s + step)
            distances.append(travelled_m + entry_mps * step + 0.5 * accel * step * step)
        elapsed_s += up_s
        travelled_m += up_m
    if cruise_s > 0.0:
        elapsed_s += cruise_s
        travelled_m += cruise_m
        times.append(elapsed_s)
        distances.append(travelled_m)
    if down_s > 0.0:
        pieces = max(int(math.ceil(down_s / sample_dt_s)), 1)
        for step in np.linspace(0.0, down_s, pieces + 1)[1:]:
            times.append(elapsed_s + step)
            distances.append(travelled_m + peak * step - 0.5 * accel * step * step)
        elapsed_s += down_s
        travelled_m += down_m
    if hold_out_s > 0.0 and hold_out_m > 0.0:
        elapsed_s += hold_out_s
        travelled_m += hold_out_m
        times.append(elapsed_s)
        distances.append(travelled_m)
    times_array = np.asarray(times)
    distances_array = np.minimum(np.asarray(distances), length_m)
    if times_array.size == 0 or distances_array[-1] < length_m:
        # Rounding left the end unsampled; it is reached at the last sample's speed.
        times_array = np.append(times_array, elapsed_s)
        distances_array = np.append(distances_array, length_m)
    distances_array[-1] = length_m
    return times_array, distances_array


def _arc_mask(arc_edges, edge_count: int, robot: RobotModel) -> np.ndarray:
    if arc_edges is None:
        return np.zeros(edge_count, dtype=bool)
    mask = np.asarray(arc_edges, dtype=bool).reshape(-1)
    if mask.shape != (edge_count,):
        raise PlannerConfigError(
            f'arc_edges has {mask.size} flags but the path has {edge_count} edges; pass one '
            'flag per edge')
    if np.any(mask) and robot.min_turn_radius_m <= 0.0:
        raise PlannerConfigError(
            'arc_edges needs a robot with min_turn_radius_m > 0, the radius of the arcs')
    return mask


def time_parameterize(xy_m, *, robot: RobotModel, t_start_s: float, sample_dt_s: float = 0.2,
                      corner_rule: str = 'stop', start_yaw_rad: float | None = None,
                      waits_s: Mapping[int, float] | None = None,
                      corner_tolerance_rad: float = 1e-9,
                      arc_edges=None) -> Trajectory:
    """Return a trajectory along ``xy_m`` that starts at rest at ``t_start_s``.

    :param xy_m: path vertices, shape ``(N, 2)``. Vertices within 1e-9 m of the previous one
        are dropped, so a path whose vertices all lie that close gives a trajectory of one
        sample at the first vertex (plus any wait).
    :param robot: speed, acceleration, drive type and yaw-rate limits.
    :param t_start_s: fleet time of the first sample.
    :param sample_dt_s: sample spacing inside acceleration and deceleration phases, and the
        hold time of the ``'deflection'`` corner rule.
    :param corner_rule: ``'stop'`` or ``'deflection'`` (see the module documentation).
    :param start_yaw_rad: the robot's heading at the start. A differential-drive robot first
        turns in place from it; ``None`` means it already faces the first edge.
    :param waits_s: ``{vertex index: seconds}`` of standing time at vertices of the cleaned
        path (index 0 delays the start). A vertex with a wait is always a stop.
    :param corner_tolerance_rad: vertices whose direction change is at most this are passed
        at full speed; the default only absorbs rounding on collinear vertices.

    >>> from mapl_robotics.planning.models import CORNER_RULES, RobotModel
    >>> robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    >>> trajectory = time_parameterize([(0, 0), (4, 0)], robot=robot, t_start_s=10.0)
    >>> round(trajectory.end_time_s - trajectory.start_time_s, 3)  # 2 s up, 2 s cruise, 2 down
    6.0
    """
    if not math.isfinite(t_start_s):
        raise InvalidCoordinateError(f't_start_s={t_start_s} must be a finite number')
    if not (math.isfinite(sample_dt_s) and sample_dt_s > 0.0):
        raise PlannerConfigError(f'sample_dt_s={sample_dt_s} must be a positive finite number')
    if corner_rule not in CORNER_RULES:
        raise PlannerConfigError(
            f"corner_rule={corner_rule!r} is not supported; use one of {CORNER_RULES}")
    xy, kept = _clean_path(xy_m)
    # Flags refer to the edges of the path as given, so they follow its repeated vertices out.
    arc_edges = _kept_arc_flags(arc_edges, kept, np.asarray(xy_m, dtype=float))
    waits = dict(waits_s or {})
    for index, wait_s in waits.items():
        if not (0 <= index < len(xy)) or not (math.isfinite(wait_s) and wait_s >= 0.0):
            raise PlannerConfigError(
                f'waits_s[{index}]={wait_s} must be a finite duration >= 0 s at a vertex index '
                f'in [0, {len(xy) - 1}]')
    if start_yaw_rad is not None:
        initial_yaw = wrap_angle_rad(start_yaw_rad)
    elif len(xy) > 1:
        initial_yaw = math.atan2(xy[1, 1] - xy[0, 1], xy[1, 0] - xy[0, 0])
    else:
        initial_yaw = 0.0
    builder = _Builder(t_start_s, xy[0], initial_yaw)
    if len(xy) == 1:
        builder.wait(waits.get(0, 0.0))
        return builder.build()

    edges = np.diff(xy, axis=0)
    edge_m = np.hypot(edges[:, 0], edges[:, 1])
    headings = np.arctan2(edges[:, 1], edges[:, 0])
    angles = _turn_angles_rad(xy)
    corners = angles > corner_tolerance_rad
    arcs = _arc_mask(arc_edges, len(edges), robot)
    edge_caps = np.full(len(edges), robot.max_speed_mps)
    for index in np.flatnonzero(arcs).tolist():
        edge_caps[index] = arc_speed_mps(robot, float(edge_m[index]))
    # Vertices on an arc (interior or where it meets a straight edge) pass at the arc speed.
    arc_before = np.concatenate([[False], arcs])
    arc_after = np.concatenate([arcs, [False]])
    on_arc = arc_before | arc_after
    caps = np.full(len(xy), robot.max_speed_mps)
    caps[1:] = np.minimum(caps[1:], edge_caps)
    caps[:-1] = np.minimum(caps[:-1], edge_caps)
    hold_in = np.zeros(len(edges), dtype=bool)
    hold_out = np.zeros(len(edges), dtype=bool)
    # A straight edge that meets an arc holds the arc speed for one sample period next to it.
    hold_out |= ~arcs & arc_after[1:]
    hold_in |= ~arcs & arc_before[:-1]
    stops = np.zeros(len(xy), dtype=bool)
    stops[[0, -1]] = True
    stops[[index for index, wait_s in waits.items() if wait_s > 0.0]] = True
    plain_corners = corners & ~on_arc
    if corner_rule == 'stop':
        stops |= plain_corners
    else:
        with np.errstate(divide='ignore'):
            corner_cap = robot.max_accel_mps2 * sample_dt_s / (2.0 * np.sin(angles / 2.0))
        caps = np.where(plain_corners, np.minimum(caps, corner_cap), caps)
        # Below max_accel * sample_dt_s (turns sharper than 60 degrees) the holds take about
        # as long as stopping would, so such corners are stops.
        stops |= plain_corners & (angles > math.pi / 3.0)
        if robot.is_differential:
            stops |= plain_corners & (angles > robot.max_yaw_rate_radps * sample_dt_s)
        passed = plain_corners & ~stops
        hold_out |= passed[1:]
        hold_in |= passed[:-1]
    # Holds on both ends of an edge must fit into it.
    hold_room = np.full(len(xy), np.inf)
    hold_room[1:] = np.minimum(hold_room[1:], np.where(hold_out, edge_m, np.inf))
    hold_room[:-1] = np.minimum(hold_room[:-1], np.where(hold_in, edge_m, np.inf))
    caps = np.minimum(caps, hold_room / (2.0 * sample_dt_s))
    caps[stops] = 0.0
    speeds = _vertex_speeds(edge_m, caps, hold_in, hold_out, arcs, hold_s=sample_dt_s,
                            max_accel_mps2=robot.max_accel_mps2)
    # An arc with a stop on it (a wait, say) is driven from rest to rest chord by chord.
    stops |= on_arc & (speeds == 0.0)
    # On an arc at constant speed v every chord is one sample interval, so the velocity
    # change at a chord vertex is v^2 / R over that interval, within half the acceleration
    # limit by arc_speed_mps. Where a straight edge meets the arc, the hold of one sample
    # period at v spreads the (half as large) direction change.
    edge_max_mps = np.where(arcs & (speeds[:-1] > 0.0), speeds[:-1], edge_caps)
    for index in range(len(edges)):
        if stops[index]:
            builder.wait(waits.get(index, 0.0))
            if robot.is_differential:
                builder.turn(float(headings[index]), robot.max_yaw_rate_radps)
        times, distances = _edge_profile(
            float(edge_m[index]), float(speeds[index]), float(speeds[index + 1]),
            hold_in_s=sample_dt_s if hold_in[index] else 0.0,
            hold_out_s=sample_dt_s if hold_out[index] else 0.0,
            max_speed_mps=float(edge_max_mps[index]), max_accel_mps2=robot.max_accel_mps2,
            sample_dt_s=sample_dt_s)
        direction = edges[index] / edge_m[index]
        t0_s = builder.now_s
        for elapsed_s, distance_m in zip(times.tolist(), distances.tolist()):
            builder.append(t0_s + elapsed_s, xy[index] + direction * distance_m,
                           float(headings[index]))
        builder.xy[-1] = xy[index + 1].copy()
    builder.wait(waits.get(len(xy) - 1, 0.0))
    return builder.build()
