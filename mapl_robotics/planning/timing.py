"""Time parameterization: turn a geometric path into a :class:`Trajectory` within the robot's
speed, acceleration and yaw-rate limits.

Corner rule: the robot comes to rest at every corner (every vertex where the direction
changes by more than ``corner_tolerance_rad``). A disc robot that changes direction at speed
would need an unbounded acceleration, so a stop is the only corner behaviour that keeps the
acceleration bound for a path made of straight edges. Along each straight edge the speed
follows a trapezoidal profile: accelerate at ``max_accel_mps2``, cruise at ``max_speed_mps``,
decelerate at ``max_accel_mps2`` (a triangle when the edge is too short to reach the cruise
speed).

Differential drive: the robot moves only along its heading, so at the start (when
``start_yaw_rad`` is given) and at every corner it turns in place at ``max_yaw_rate_radps``
before it drives on. Holonomic robots keep the yaw of the direction of travel and do not
spend time turning.

Sampling: acceleration and deceleration phases are sampled every ``sample_dt_s`` from the
exact kinematics, cruise phases only at their ends. Because every sample lies on the exact
motion, the finite-difference speed between samples never exceeds ``max_speed_mps`` and the
finite-difference acceleration never exceeds ``max_accel_mps2``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from mapl_robotics.errors import InvalidCoordinateError, PlannerConfigError
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.planning.models import RobotModel

__all__ = ['time_parameterize', 'corner_indices', 'wrap_angle_rad']

_DUPLICATE_M = 1e-9


def wrap_angle_rad(angle_rad: float) -> float:
    """Return the angle wrapped to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def _clean_path(xy_m) -> np.ndarray:
    xy = np.asarray(xy_m, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise InvalidCoordinateError(
            f'path must be an array of shape (N, 2) with N >= 1, got shape {xy.shape}')
    if not np.all(np.isfinite(xy)):
        raise InvalidCoordinateError('path contains NaN or infinite coordinates; every '
                                     'waypoint must be two finite numbers in metres')
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1) > _DUPLICATE_M
    return xy[keep]


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
        if t_s <= self.t_s[-1]:
            # Rounding can produce a sample at the same instant; keep the later pose.
            self.xy[-1] = xy.copy()
            self.yaw[-1] = yaw_rad
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


def _drive_stretch(builder: _Builder, xy: np.ndarray, *, max_speed_mps: float,
                   max_accel_mps2: float, sample_dt_s: float) -> None:
    """Drive along the polyline ``xy`` (no corners inside) from rest to rest.

    The speed follows a trapezoidal profile over the arc length. Samples are taken at every
    vertex of ``xy`` and every ``sample_dt_s`` inside the ramps, all on the exact motion.
    """
    edges = np.diff(xy, axis=0)
    edge_m = np.linalg.norm(edges, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(edge_m)])
    length_m = float(cumulative[-1])
    headings = np.arctan2(edges[:, 1], edges[:, 0])
    accel = max_accel_mps2
    peak_mps = min(max_speed_mps, math.sqrt(accel * length_m))
    ramp_s = peak_mps / accel
    ramp_m = 0.5 * accel * ramp_s * ramp_s
    cruise_m = max(length_m - 2.0 * ramp_m, 0.0)
    cruise_s = cruise_m / peak_mps
    total_s = 2.0 * ramp_s + cruise_s

    def distance_at(elapsed_s: np.ndarray) -> np.ndarray:
        remaining_s = np.maximum(total_s - elapsed_s, 0.0)
        return np.where(elapsed_s <= ramp_s, 0.5 * accel * elapsed_s ** 2,
                        np.where(elapsed_s <= ramp_s + cruise_s,
                                 ramp_m + peak_mps * (elapsed_s - ramp_s),
                                 length_m - 0.5 * accel * remaining_s ** 2))

    def time_at(distance_m: np.ndarray) -> np.ndarray:
        remaining_m = np.maximum(length_m - distance_m, 0.0)
        return np.where(distance_m <= ramp_m, np.sqrt(2.0 * distance_m / accel),
                        np.where(distance_m <= ramp_m + cruise_m,
                                 ramp_s + (distance_m - ramp_m) / peak_mps,
                                 total_s - np.sqrt(2.0 * remaining_m / accel)))

    ramp_pieces = max(int(math.ceil(ramp_s / sample_dt_s)), 1)
    ramp_times = np.linspace(0.0, ramp_s, ramp_pieces + 1)[1:]
    times = np.concatenate([ramp_times, [ramp_s + cruise_s], ramp_s + cruise_s + ramp_times,
                            time_at(cumulative[1:-1])])
    times = np.unique(np.clip(times, 0.0, total_s))
    distances = np.minimum(distance_at(times), length_m)
    distances[-1] = length_m
    edge_index = np.clip(np.searchsorted(cumulative, distances, side='right') - 1, 0,
                         len(edge_m) - 1)
    fraction = (distances - cumulative[edge_index]) / edge_m[edge_index]
    points = xy[edge_index] + fraction[:, None] * edges[edge_index]
    points[-1] = xy[-1]
    t0_s = builder.now_s
    for elapsed_s, point, index in zip(times.tolist(), points, edge_index.tolist()):
        builder.append(t0_s + elapsed_s, point, float(headings[index]))


def time_parameterize(xy_m, *, robot: RobotModel, t_start_s: float, sample_dt_s: float = 0.2,
                      start_yaw_rad: float | None = None,
                      waits_s: Mapping[int, float] | None = None,
                      corner_tolerance_rad: float = 1e-9) -> Trajectory:
    """Return a trajectory along ``xy_m`` that starts at rest at ``t_start_s``.

    :param xy_m: path vertices, shape ``(N, 2)``; repeated vertices are dropped.
    :param robot: speed, acceleration, drive type and yaw-rate limits.
    :param t_start_s: fleet time of the first sample.
    :param sample_dt_s: sample spacing inside acceleration and deceleration phases.
    :param start_yaw_rad: the robot's heading at the start. A differential-drive robot first
        turns in place from it; ``None`` means it already faces the first edge.
    :param waits_s: ``{vertex index: seconds}`` of extra standing time at vertices of the
        cleaned path (index 0 delays the start). The robot is at rest at every vertex, so a
        wait never changes the speed profile.
    :param corner_tolerance_rad: vertices whose direction change is at most this are passed
        at speed; the default only absorbs rounding on collinear vertices.

    >>> from mapl_robotics.planning.models import RobotModel
    >>> robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    >>> trajectory = time_parameterize([(0, 0), (4, 0)], robot=robot, t_start_s=10.0)
    >>> round(trajectory.end_time_s - trajectory.start_time_s, 3)  # 2 s up, 2 s cruise, 2 down
    6.0
    """
    if not math.isfinite(t_start_s):
        raise InvalidCoordinateError(f't_start_s={t_start_s} must be a finite number')
    if not (math.isfinite(sample_dt_s) and sample_dt_s > 0.0):
        raise PlannerConfigError(f'sample_dt_s={sample_dt_s} must be a positive finite number')
    xy = _clean_path(xy_m)
    waits = dict(waits_s or {})
    for index, wait_s in waits.items():
        if not (0 <= index < len(xy)) or not (math.isfinite(wait_s) and wait_s >= 0.0):
            raise PlannerConfigError(
                f'waits_s[{index}]={wait_s} must be a finite duration >= 0 s at a vertex index '
                f'in [0, {len(xy) - 1}]')
    # Vertices where the robot stops: the ends, corners and any vertex with a wait.
    stops = {0, len(xy) - 1} | set(corner_indices(xy, tolerance_rad=corner_tolerance_rad)
                                    .tolist()) | {i for i, w in waits.items() if w > 0.0}
    stop_list = sorted(stops)
    if start_yaw_rad is not None:
        initial_yaw = wrap_angle_rad(start_yaw_rad)
    elif len(xy) > 1:
        initial_yaw = math.atan2(xy[1, 1] - xy[0, 1], xy[1, 0] - xy[0, 0])
    else:
        initial_yaw = 0.0
    builder = _Builder(t_start_s, xy[0], initial_yaw)
    for position, index in enumerate(stop_list):
        builder.wait(waits.get(index, 0.0))
        if position == len(stop_list) - 1:
            break
        next_index = stop_list[position + 1]
        stretch = xy[index:next_index + 1]
        heading = math.atan2(stretch[1, 1] - stretch[0, 1], stretch[1, 0] - stretch[0, 0])
        if robot.is_differential:
            builder.turn(heading, robot.max_yaw_rate_radps)
        _drive_stretch(builder, stretch, max_speed_mps=robot.max_speed_mps,
                       max_accel_mps2=robot.max_accel_mps2, sample_dt_s=sample_dt_s)
    return builder.build()
