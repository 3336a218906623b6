"""Time-parameterized 2D trajectories in fleet time.

A :class:`Trajectory` is a sequence of samples ``(t_s, x_m, y_m, yaw_rad)`` with strictly
increasing times. Between samples the position moves linearly at constant velocity, so a
trajectory is a piecewise-linear motion in space-time; conflict checks in
:mod:`mapl_robotics.geometry.conflicts` rely on that.

Outside its time span a trajectory is stationary: before the first sample the robot is at
the first pose, after the last sample it remains at the last pose. That matches how the fleet
treats robots that have not started yet and robots parked at their goal.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

from mapl_robotics.errors import TrajectoryError

__all__ = ['MAX_RESAMPLE_COUNT', 'Trajectory']

# Upper bound on the samples :meth:`Trajectory.sample` builds: about 32 MB of samples, an hour
# of motion at 4 ms. It keeps a tiny ``dt_s`` from exhausting memory.
MAX_RESAMPLE_COUNT = 1_000_000


def _as_readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=float)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Trajectory:
    """Piecewise-linear motion: sample times in seconds, positions in metres, yaw in radians.

    Build one with :meth:`from_samples`, :meth:`from_arrays` or :meth:`stationary`. Instances
    are immutable and compare by value.
    """

    t_s: np.ndarray
    xy_m: np.ndarray
    yaw_rad: np.ndarray

    def __post_init__(self) -> None:
        t_s = np.asarray(self.t_s, dtype=float)
        xy_m = np.asarray(self.xy_m, dtype=float)
        yaw_rad = np.asarray(self.yaw_rad, dtype=float)
        if t_s.ndim != 1 or t_s.size == 0:
            raise TrajectoryError(
                f'trajectory times must be a non-empty 1-D array, got shape {t_s.shape}')
        if xy_m.shape != (t_s.size, 2):
            raise TrajectoryError(
                f'trajectory positions must have shape ({t_s.size}, 2) to match the times, '
                f'got {xy_m.shape}')
        if yaw_rad.shape != t_s.shape:
            raise TrajectoryError(
                f'trajectory yaw must have shape {t_s.shape} to match the times, '
                f'got {yaw_rad.shape}')
        for name, values in (('t_s', t_s), ('xy_m', xy_m), ('yaw_rad', yaw_rad)):
            if not np.all(np.isfinite(values)):
                bad = values[~np.isfinite(values)].ravel()[0]
                raise TrajectoryError(
                    f'trajectory {name} contains the non-finite value {bad}; '
                    'every sample must be a finite number')
        if t_s.size > 1 and not np.all(np.diff(t_s) > 0.0):
            index = int(np.argmin(np.diff(t_s)))
            raise TrajectoryError(
                f'trajectory times must strictly increase, but t_s[{index}]={t_s[index]} '
                f'is followed by t_s[{index + 1}]={t_s[index + 1]}')
        object.__setattr__(self, 't_s', _as_readonly(t_s))
        object.__setattr__(self, 'xy_m', _as_readonly(xy_m))
        object.__setattr__(self, 'yaw_rad', _as_readonly(yaw_rad))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_samples(cls, samples: Iterable[Sequence[float]]) -> 'Trajectory':
        """Build from an iterable of ``(t_s, x_m, y_m, yaw_rad)`` tuples."""
        rows = np.asarray(list(samples), dtype=float)
        if rows.ndim != 2 or rows.shape[1] != 4:
            raise TrajectoryError(
                f'trajectory samples must be (t_s, x_m, y_m, yaw_rad) rows, got shape {rows.shape}')
        return cls(t_s=rows[:, 0], xy_m=rows[:, 1:3], yaw_rad=rows[:, 3])

    @classmethod
    def from_arrays(cls, t_s, xy_m, yaw_rad=None) -> 'Trajectory':
        """Build from arrays; missing yaw follows the direction of travel."""
        xy_m = np.asarray(xy_m, dtype=float)
        if yaw_rad is None:
            yaw_rad = heading_along(xy_m)
        return cls(t_s=np.asarray(t_s, dtype=float), xy_m=xy_m, yaw_rad=np.asarray(yaw_rad))

    @classmethod
    def stationary(cls, xy_m: Sequence[float], *, t_start_s: float, t_end_s: float,
                   yaw_rad: float = 0.0) -> 'Trajectory':
        """Build a trajectory that stays still at ``xy_m`` from ``t_start_s`` to ``t_end_s``."""
        if not t_end_s > t_start_s:
            return cls(t_s=np.array([t_start_s]), xy_m=np.array([xy_m], dtype=float),
                       yaw_rad=np.array([yaw_rad]))
        return cls(t_s=np.array([t_start_s, t_end_s]),
                   xy_m=np.array([xy_m, xy_m], dtype=float),
                   yaw_rad=np.array([yaw_rad, yaw_rad]))

    # -- properties -----------------------------------------------------------------------------

    @property
    def start_time_s(self) -> float:
        return float(self.t_s[0])

    @property
    def end_time_s(self) -> float:
        return float(self.t_s[-1])

    @property
    def duration_s(self) -> float:
        return self.end_time_s - self.start_time_s

    @property
    def start_xy_m(self) -> np.ndarray:
        return self.xy_m[0]

    @property
    def end_xy_m(self) -> np.ndarray:
        return self.xy_m[-1]

    @property
    def length_m(self) -> float:
        """Path length in metres."""
        if len(self) < 2:
            return 0.0
        return float(np.sum(np.linalg.norm(np.diff(self.xy_m, axis=0), axis=1)))

    @property
    def max_speed_mps(self) -> float:
        if len(self) < 2:
            return 0.0
        speeds = np.linalg.norm(np.diff(self.xy_m, axis=0), axis=1) / np.diff(self.t_s)
        return float(speeds.max())

    def __len__(self) -> int:
        return int(self.t_s.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trajectory):
            return NotImplemented
        return (np.array_equal(self.t_s, other.t_s) and np.array_equal(self.xy_m, other.xy_m)
                and np.array_equal(self.yaw_rad, other.yaw_rad))

    def __hash__(self) -> int:
        return hash((self.t_s.tobytes(), self.xy_m.tobytes(), self.yaw_rad.tobytes()))

    def __repr__(self) -> str:
        return (f'Trajectory({len(self)} samples, t_s=[{self.start_time_s:.3f}, '
                f'{self.end_time_s:.3f}], from {tuple(np.round(self.start_xy_m, 3))} '
                f'to {tuple(np.round(self.end_xy_m, 3))})')

    # -- sampling -----------------------------------------------------------------------------

    def position_at(self, t_s) -> np.ndarray:
        """Return positions at the given times, shape ``(2,)`` for a scalar, else ``(N, 2)``.

        Times before the start or after the end clamp to the first or last pose.
        """
        times = np.asarray(t_s, dtype=float)
        x = np.interp(times, self.t_s, self.xy_m[:, 0])
        y = np.interp(times, self.t_s, self.xy_m[:, 1])
        return np.stack([x, y], axis=-1)

    def yaw_at(self, t_s) -> np.ndarray:
        """Return yaw at the given times, interpolated along the shorter arc."""
        times = np.asarray(t_s, dtype=float)
        unwrapped = np.unwrap(self.yaw_rad)
        yaw = np.interp(times, self.t_s, unwrapped)
        return (yaw + math.pi) % (2.0 * math.pi) - math.pi

    def velocity_at(self, t_s) -> np.ndarray:
        """Return the velocity in m/s at the given times; zero outside the time span."""
        times = np.atleast_1d(np.asarray(t_s, dtype=float))
        velocity = np.zeros((times.size, 2))
        if len(self) >= 2:
            segment_velocity = np.diff(self.xy_m, axis=0) / np.diff(self.t_s)[:, None]
            index = np.searchsorted(self.t_s, times, side='right') - 1
            inside = (index >= 0) & (index < len(self) - 1)
            velocity[inside] = segment_velocity[index[inside]]
        return velocity[0] if np.ndim(t_s) == 0 else velocity

    def sample(self, dt_s: float) -> 'Trajectory':
        """Resample at a fixed period, keeping the exact end time.

        :raises TrajectoryError: when ``dt_s`` is not a positive finite number, or when it
            would give more than :data:`MAX_RESAMPLE_COUNT` samples.
        """
        if isinstance(dt_s, bool) or not isinstance(dt_s, (int, float, np.floating, np.integer)) \
                or not (dt_s > 0.0 and math.isfinite(dt_s)):
            raise TrajectoryError(
                f'sample period dt_s={dt_s!r} must be a positive finite number of seconds')
        count = math.ceil(self.duration_s / dt_s) + 1
        if count > MAX_RESAMPLE_COUNT:
            raise TrajectoryError(
                f'sample period dt_s={dt_s} s over the duration {self.duration_s} s would give '
                f'{count} samples, more than the limit of {MAX_RESAMPLE_COUNT}; use a dt_s of at '
                f'least {1.01 * self.duration_s / MAX_RESAMPLE_COUNT:.3g} s or resample a clipped '
                'part')
        times = np.arange(self.start_time_s, self.end_time_s, dt_s)
        # A single-sample trajectory gives an empty range; it resamples to its one sample.
        if times.size == 0 or times[-1] < self.end_time_s:
            times = np.append(times, self.end_time_s)
        return Trajectory(t_s=times, xy_m=self.position_at(times), yaw_rad=self.yaw_at(times))

    # -- transformation -------------------------------------------------------------------------

    def shifted(self, dt_s: float) -> 'Trajectory':
        """Return the same motion delayed by ``dt_s`` seconds."""
        return Trajectory(t_s=self.t_s + dt_s, xy_m=self.xy_m, yaw_rad=self.yaw_rad)

    def clipped(self, t_start_s: float, t_end_s: float | None = None) -> 'Trajectory':
        """Return the part of the motion inside ``[t_start_s, t_end_s]``.

        The result starts exactly at ``t_start_s`` (clamped pose when that is before the
        start) and ends at ``t_end_s`` or at the last sample.
        """
        end = self.end_time_s if t_end_s is None else min(t_end_s, self.end_time_s)
        start = t_start_s
        if end <= start:
            return Trajectory.stationary(self.position_at(start), t_start_s=start,
                                         t_end_s=start, yaw_rad=float(self.yaw_at(start)))
        inner = (self.t_s > start) & (self.t_s < end)
        times = np.concatenate([[start], self.t_s[inner], [end]])
        return Trajectory(t_s=times, xy_m=self.position_at(times), yaw_rad=self.yaw_at(times))

    def extended_to(self, t_end_s: float) -> 'Trajectory':
        """Return this trajectory with a stationary tail at the last pose until ``t_end_s``."""
        if t_end_s <= self.end_time_s:
            return self
        return Trajectory(t_s=np.append(self.t_s, t_end_s),
                          xy_m=np.vstack([self.xy_m, self.xy_m[-1]]),
                          yaw_rad=np.append(self.yaw_rad, self.yaw_rad[-1]))

    # -- serialization --------------------------------------------------------------------------

    def to_list(self) -> list[list[float]]:
        """Return ``[[t_s, x_m, y_m, yaw_rad], ...]`` for JSON or msgpack."""
        return np.column_stack([self.t_s, self.xy_m, self.yaw_rad]).tolist()

    @classmethod
    def from_list(cls, rows: Sequence[Sequence[float]]) -> 'Trajectory':
        """Inverse of :meth:`to_list`."""
        return cls.from_samples(rows)


def heading_along(xy_m: np.ndarray) -> np.ndarray:
    """Return the yaw of travel at each waypoint; a waypoint keeps the previous heading when
    the robot does not move."""
    xy_m = np.asarray(xy_m, dtype=float)
    count = len(xy_m)
    yaw = np.zeros(count)
    if count < 2:
        return yaw
    delta = np.diff(xy_m, axis=0)
    moving = np.linalg.norm(delta, axis=1) > 1e-12
    segment_yaw = np.arctan2(delta[:, 1], delta[:, 0])
    last = 0.0
    if np.any(moving):
        last = float(segment_yaw[np.argmax(moving)])
    for index in range(count - 1):
        if moving[index]:
            last = float(segment_yaw[index])
        yaw[index] = last
    yaw[-1] = last
    return yaw
