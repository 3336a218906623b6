"""Moving obstacles (people, forklifts): a disc footprint plus a motion model.

A motion model predicts the obstacle's centre over time as a piecewise-linear
:class:`~mapl_robotics.geometry.trajectory.Trajectory`, so the exact robot-robot conflict
checks apply to robot-obstacle pairs unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Real
from typing import Sequence, Union

import numpy as np

from mapl_robotics.errors import InvalidCoordinateError, TrajectoryError
from mapl_robotics.geometry.trajectory import Trajectory

__all__ = ['ConstantVelocity', 'TimedWaypoints', 'MotionModel', 'MovingObstacle']


def _plain_numbers(value) -> tuple[float, ...] | None:
    """Return ``value`` as a tuple of floats, or None if it is not a flat sequence of numbers."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        items = tuple(value)
    except TypeError:
        return None
    if any(isinstance(item, bool) or not isinstance(item, Real) for item in items):
        return None
    return tuple(float(item) for item in items)


def _finite_pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    pair = _plain_numbers(value)
    if pair is None or len(pair) != 2 or not all(math.isfinite(v) for v in pair):
        raise InvalidCoordinateError(
            f'{name}={value!r} must be two finite numbers [x, y] in '
            f'{"m/s" if name.endswith("_mps") else "metres"}')
    return pair  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class ConstantVelocity:
    """Straight-line motion from ``start_xy_m`` at time ``t0_s`` with ``velocity_mps``.

    The obstacle waits at its start before ``t0_s``. With ``t_stop_s`` set it stops there.
    """

    start_xy_m: tuple[float, float]
    velocity_mps: tuple[float, float]
    t0_s: float = 0.0
    t_stop_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, 'start_xy_m', _finite_pair('start_xy_m', self.start_xy_m))
        object.__setattr__(self, 'velocity_mps', _finite_pair('velocity_mps', self.velocity_mps))
        if self.t_stop_s is not None and not self.t_stop_s > self.t0_s:
            raise TrajectoryError(
                f't_stop_s={self.t_stop_s} must be later than t0_s={self.t0_s}')

    def predict(self, t_start_s: float, t_end_s: float) -> Trajectory:
        """Return the predicted motion over ``[t_start_s, t_end_s]``."""
        stop = t_end_s if self.t_stop_s is None else min(self.t_stop_s, t_end_s)
        start = max(t_start_s, self.t0_s)
        points = [t_start_s]
        if self.t0_s > t_start_s:
            points.append(min(self.t0_s, t_end_s))
        if stop > start:
            points.append(stop)
        if t_end_s > points[-1]:
            points.append(t_end_s)
        times = np.unique(np.asarray(points, dtype=float))
        elapsed = np.clip(times, self.t0_s, stop if stop > self.t0_s else self.t0_s) - self.t0_s
        xy = np.asarray(self.start_xy_m) + elapsed[:, None] * np.asarray(self.velocity_mps)
        yaw = math.atan2(self.velocity_mps[1], self.velocity_mps[0])
        return Trajectory(t_s=times, xy_m=xy, yaw_rad=np.full(times.size, yaw))


@dataclasses.dataclass(frozen=True)
class TimedWaypoints:
    """Motion through ``(t_s, x_m, y_m)`` waypoints, linear in between, optionally looping."""

    waypoints: tuple[tuple[float, float, float], ...]
    loop: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.waypoints, (str, bytes)):
            rows = None
        else:
            try:
                rows = tuple(_plain_numbers(row) for row in self.waypoints)
            except TypeError:
                rows = None
        if not rows or any(row is None or len(row) != 3 for row in rows):
            raise TrajectoryError(
                f'waypoints={self.waypoints!r:.200} must be a non-empty list of flat '
                '(t_s, x_m, y_m) rows of numbers, for example ((0, 1, 2), (5, 3, 2))')
        object.__setattr__(self, 'waypoints', rows)
        array = np.asarray(rows)
        # Validates finiteness and increasing times.
        Trajectory.from_arrays(array[:, 0], array[:, 1:3])

    def _base(self) -> Trajectory:
        array = np.asarray(self.waypoints)
        return Trajectory.from_arrays(array[:, 0], array[:, 1:3])

    def predict(self, t_start_s: float, t_end_s: float) -> Trajectory:
        """Return the predicted motion over ``[t_start_s, t_end_s]``."""
        base = self._base()
        if self.loop and len(base) > 1 and t_end_s > base.end_time_s:
            period = base.duration_s
            closing = np.linalg.norm(base.end_xy_m - base.start_xy_m)
            # A loop that does not return to its start closes with one more leg at the
            # average speed of the others.
            average_speed = base.length_m / period if base.length_m > 0 else 1.0
            closing_s = closing / average_speed if closing > 1e-9 else 0.0
            period += closing_s
            # Only the laps that overlap the window are built, so a prediction late in a long
            # run stays small. A window longer than 10,000 laps is cut short.
            first_lap = max(0, int(math.floor((t_start_s - base.start_time_s) / period)))
            end_lap = int(math.ceil((t_end_s - base.start_time_s) / period)) + 1
            laps = range(first_lap, min(end_lap, first_lap + 10_000))
            times = [base.t_s + lap * period for lap in laps]
            xys = [base.xy_m for _ in laps]
            if closing_s == 0.0:
                times = [times[0]] + [t[1:] for t in times[1:]]
                xys = [xys[0]] + [xy[1:] for xy in xys[1:]]
            base = Trajectory.from_arrays(np.concatenate(times), np.vstack(xys))
        if t_end_s <= t_start_s:
            return Trajectory.stationary(base.position_at(t_start_s), t_start_s=t_start_s,
                                         t_end_s=t_start_s)
        return base.clipped(t_start_s, t_end_s).extended_to(t_end_s)


MotionModel = Union[ConstantVelocity, TimedWaypoints]


@dataclasses.dataclass(frozen=True)
class MovingObstacle:
    """A moving disc such as a person or a forklift, with its predicted motion."""

    obstacle_id: str
    radius_m: float
    motion: MotionModel
    kind: str = 'person'

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius_m) and self.radius_m > 0.0):
            raise InvalidCoordinateError(
                f'moving obstacle {self.obstacle_id!r} has radius_m={self.radius_m}; '
                'it must be a positive finite number of metres')

    def predict(self, t_start_s: float, t_end_s: float) -> Trajectory:
        """Return the predicted centre motion over ``[t_start_s, t_end_s]``."""
        return self.motion.predict(t_start_s, t_end_s)

    def position_at(self, t_s: float) -> np.ndarray:
        return self.predict(t_s, t_s + 1e-6).position_at(t_s)
