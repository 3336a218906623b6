"""Exact conflict checks between piecewise-linear motions.

Two discs of radii ``r_a`` and ``r_b`` conflict when, at some instant, their centres come
closer than ``r_a + r_b + clearance_m``. Between consecutive breakpoints of the merged sample
times both motions have constant velocity, so their relative position is linear in time and the
closest approach on each interval has a closed form. The check is therefore exact: no sampling
step can miss a conflict.

Both trajectories are treated as stationary outside their own time spans (see
:class:`~mapl_robotics.geometry.trajectory.Trajectory`), and the check covers the union of the
two spans, so a robot parked at its goal keeps occupying it.

Radii and the clearance must be finite and non-negative, and window bounds finite. Anything
else raises :class:`~mapl_robotics.errors.InvalidCoordinateError`, because a NaN compares false
with every distance and would let any pair pass as conflict-free.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Real
from typing import Iterable, Mapping

import numpy as np

from mapl_robotics.errors import InvalidCoordinateError
from mapl_robotics.geometry.trajectory import Trajectory

__all__ = ['ClosestApproach', 'Conflict', 'closest_approach', 'find_conflict',
           'conflicting_ids', 'separation_profile']


@dataclasses.dataclass(frozen=True)
class ClosestApproach:
    """Minimum centre distance between two motions and the time it happens."""

    distance_m: float
    time_s: float


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A pair of motions that come closer than their required separation."""

    time_s: float
    distance_m: float
    required_m: float

    @property
    def penetration_m(self) -> float:
        return self.required_m - self.distance_m


def _require_length(name: str, value) -> float:
    """Return ``value`` as a float, or raise when it is not a finite length >= 0 m."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidCoordinateError(
            f'{name}={value!r} must be a number of metres, not {type(value).__name__}')
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise InvalidCoordinateError(
            f'{name}={value!r} must be a finite number of metres >= 0; NaN, infinite and '
            'negative values are rejected because they would hide every conflict')
    return number


def _require_window(t_start_s, t_end_s) -> None:
    for name, value in (('t_start_s', t_start_s), ('t_end_s', t_end_s)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) \
                or not math.isfinite(float(value)):
            raise InvalidCoordinateError(
                f'{name}={value!r} must be a finite fleet time in seconds, or None for the '
                'span of both trajectories')
    if t_start_s is not None and t_end_s is not None and t_end_s < t_start_s:
        raise InvalidCoordinateError(
            f'the window t_start_s={t_start_s!r} to t_end_s={t_end_s!r} ends before it '
            'starts; swap the bounds')


def _merged_times(a: Trajectory, b: Trajectory, t_start_s: float | None,
                  t_end_s: float | None) -> np.ndarray:
    start = min(a.start_time_s, b.start_time_s) if t_start_s is None else t_start_s
    end = max(a.end_time_s, b.end_time_s) if t_end_s is None else t_end_s
    times = np.union1d(a.t_s, b.t_s)
    times = times[(times > start) & (times < end)]
    return np.concatenate([[start], times, [end]]) if end > start else np.array([start])


def _interval_minima(a: Trajectory, b: Trajectory, times: np.ndarray):
    """Return per-interval minimum distances and their times for the merged breakpoints."""
    relative = a.position_at(times) - b.position_at(times)
    if times.size == 1:
        return np.linalg.norm(relative, axis=1), times
    d0 = relative[:-1]
    d1 = relative[1:]
    dv = d1 - d0
    dv_sq = np.einsum('ij,ij->i', dv, dv)
    with np.errstate(invalid='ignore', divide='ignore'):
        u = np.where(dv_sq > 0.0, -np.einsum('ij,ij->i', d0, dv) / dv_sq, 0.0)
    u = np.clip(u, 0.0, 1.0)
    closest = d0 + u[:, None] * dv
    distances = np.linalg.norm(closest, axis=1)
    at_times = times[:-1] + u * (times[1:] - times[:-1])
    return distances, at_times


def closest_approach(a: Trajectory, b: Trajectory, *, t_start_s: float | None = None,
                     t_end_s: float | None = None) -> ClosestApproach:
    """Return the exact closest approach of the centres of ``a`` and ``b``.

    The window defaults to the union of both time spans.

    >>> from mapl_robotics.geometry.trajectory import Trajectory
    >>> a = Trajectory.from_samples([(0, 0, 0, 0), (2, 2, 0, 0)])
    >>> b = Trajectory.from_samples([(0, 2, 0, 0), (2, 0, 0, 0)])
    >>> closest_approach(a, b)
    ClosestApproach(distance_m=0.0, time_s=1.0)

    :raises InvalidCoordinateError: for a non-finite or reversed window.
    """
    _require_window(t_start_s, t_end_s)
    times = _merged_times(a, b, t_start_s, t_end_s)
    distances, at_times = _interval_minima(a, b, times)
    index = int(np.argmin(distances))
    return ClosestApproach(distance_m=float(distances[index]), time_s=float(at_times[index]))


def find_conflict(a: Trajectory, radius_a_m: float, b: Trajectory, radius_b_m: float, *,
                  clearance_m: float = 0.0, t_start_s: float | None = None,
                  t_end_s: float | None = None) -> Conflict | None:
    """Return the closest-approach :class:`Conflict` between two discs, or ``None``.

    ``None`` means the discs keep at least ``radius_a_m + radius_b_m + clearance_m`` between
    their centres over the whole window.

    :raises InvalidCoordinateError: when a radius or the clearance is NaN, infinite or
        negative, or the window is not finite or ends before it starts.
    """
    required = (_require_length('radius_a_m', radius_a_m)
                + _require_length('radius_b_m', radius_b_m)
                + _require_length('clearance_m', clearance_m))
    approach = closest_approach(a, b, t_start_s=t_start_s, t_end_s=t_end_s)
    if approach.distance_m < required:
        return Conflict(time_s=approach.time_s, distance_m=approach.distance_m,
                        required_m=required)
    return None


def conflicting_ids(candidate: Trajectory, radius_m: float,
                    others: Mapping[str, tuple[Trajectory, float]], *,
                    clearance_m: float = 0.0, t_start_s: float | None = None,
                    t_end_s: float | None = None) -> list[str]:
    """Return, sorted, the ids in ``others`` (id -> (trajectory, radius)) that ``candidate``
    conflicts with.

    :raises InvalidCoordinateError: as :func:`find_conflict`. ``radius_m``, ``clearance_m``
        and the window are checked even when ``others`` is empty.
    """
    _require_length('radius_m', radius_m)
    _require_length('clearance_m', clearance_m)
    _require_window(t_start_s, t_end_s)
    found = []
    for other_id, (trajectory, other_radius_m) in others.items():
        if isinstance(other_radius_m, bool) or not isinstance(other_radius_m, Real) or not (
                math.isfinite(other_radius_m) and other_radius_m >= 0.0):
            raise InvalidCoordinateError(
                f'others[{other_id!r}] has radius_m={other_radius_m!r}; it must be a finite '
                'number of metres >= 0')
        conflict = find_conflict(candidate, radius_m, trajectory, other_radius_m,
                                 clearance_m=clearance_m, t_start_s=t_start_s, t_end_s=t_end_s)
        if conflict is not None:
            found.append(other_id)
    return sorted(found)


def separation_profile(trajectories: Iterable[Trajectory], times_s) -> np.ndarray:
    """Return the pairwise centre distances at the given times, shape ``(T, N, N)``."""
    positions = np.stack([trajectory.position_at(times_s) for trajectory in trajectories],
                         axis=1)
    delta = positions[:, :, None, :] - positions[:, None, :, :]
    return np.linalg.norm(delta, axis=-1)
