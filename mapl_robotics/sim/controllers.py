"""Trajectory tracking for differential-drive robots.

Each robot follows the reference pose of its committed trajectory at the current fleet time,
with the velocity of the trajectory as feedforward and the tracking law of Kanayama et al.
("A stable tracking control method for an autonomous mobile robot", ICRA 1990) as feedback:

    v = v_r cos(e_yaw) + k_x e_x
    w = w_r + v_r k_y e_y + k_yaw sin(e_yaw)

where ``(e_x, e_y)`` is the position error in the robot frame. The heading term is not scaled
by ``v_r`` as in the original, so a robot also turns to the reference heading while the
reference is at rest (turns in place at corners, waiting at a hold point).

A robot without a current committed plan holds: it brakes to a stop at its acceleration limit
and stays where it is.
"""

from __future__ import annotations

import bisect
import dataclasses
import math

import numpy as np

from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.sim.robots import DiffDriveState, wrap_angle

__all__ = ['TrackingGains', 'TrackingController', 'TrajectoryReference', 'reference_heading']

# Below this reference speed the reference heading comes from the trajectory's yaw samples,
# above it from the direction of travel.
_MOVING_SPEED_MPS = 1e-3


@dataclasses.dataclass(frozen=True)
class TrackingGains:
    """Feedback gains of the tracking law; units follow from ``v`` in m/s and ``w`` in rad/s."""

    k_x_per_s: float = 4.0
    k_y_per_m2: float = 25.0
    k_yaw_per_s: float = 6.0
    # Beyond this heading error the robot turns in place before it drives, so it never
    # sweeps sideways out of its committed corridor.
    turn_in_place_rad: float = math.radians(35.0)
    # A robot farther than this from a standing reference drives back onto it.
    standing_tolerance_m: float = 0.05
    # A robot farther than this behind its reference (a plan that reached it late) chases a
    # point on the path at most this far ahead instead, so it never cuts corners to catch up.
    catch_up_radius_m: float = 0.25


def reference_heading(trajectory: Trajectory, t_s: float) -> float:
    """Return the heading a differential-drive robot should have on ``trajectory`` at ``t_s``.

    A moving reference faces along its velocity; a stationary one keeps the sampled yaw.
    """
    velocity = trajectory.velocity_at(t_s)
    if float(np.hypot(velocity[0], velocity[1])) > _MOVING_SPEED_MPS:
        return math.atan2(velocity[1], velocity[0])
    return float(trajectory.yaw_at(t_s))


class TrajectoryReference:
    """Fast scalar sampling of one trajectory: position, velocity and heading at a time.

    The controller samples the same trajectory every step, so the segment velocities are
    computed once and each sample is a bisection on plain floats.
    """

    def __init__(self, trajectory: Trajectory) -> None:
        self.trajectory = trajectory
        self.t_s = trajectory.t_s.tolist()
        self.x_m = trajectory.xy_m[:, 0].tolist()
        self.y_m = trajectory.xy_m[:, 1].tolist()
        self.yaw_rad = np.unwrap(trajectory.yaw_rad).tolist()
        if len(self.t_s) >= 2:
            dt = np.diff(trajectory.t_s)
            velocity = np.diff(trajectory.xy_m, axis=0) / dt[:, None]
            self.vx_mps = velocity[:, 0].tolist()
            self.vy_mps = velocity[:, 1].tolist()
        else:
            self.vx_mps = []
            self.vy_mps = []

    def sample(self, t_s: float) -> tuple[float, float, float, float]:
        """Return ``(x_m, y_m, vx_mps, vy_mps)`` at ``t_s``; zero velocity outside the span."""
        times = self.t_s
        if t_s <= times[0]:
            return self.x_m[0], self.y_m[0], 0.0, 0.0
        if t_s >= times[-1]:
            return self.x_m[-1], self.y_m[-1], 0.0, 0.0
        index = bisect.bisect_right(times, t_s) - 1
        fraction = (t_s - times[index]) / (times[index + 1] - times[index])
        x = self.x_m[index] + fraction * (self.x_m[index + 1] - self.x_m[index])
        y = self.y_m[index] + fraction * (self.y_m[index + 1] - self.y_m[index])
        return x, y, self.vx_mps[index], self.vy_mps[index]

    def yaw(self, t_s: float) -> float:
        """Return the sampled yaw at ``t_s``, interpolated along the shorter arc."""
        times = self.t_s
        if t_s <= times[0]:
            return wrap_angle(self.yaw_rad[0])
        if t_s >= times[-1]:
            return wrap_angle(self.yaw_rad[-1])
        index = bisect.bisect_right(times, t_s) - 1
        fraction = (t_s - times[index]) / (times[index + 1] - times[index])
        return wrap_angle(self.yaw_rad[index]
                          + fraction * (self.yaw_rad[index + 1] - self.yaw_rad[index]))

    def distance_m(self, t_s: float, state: DiffDriveState) -> float:
        """Return the distance between the robot and the reference at ``t_s``."""
        x_m, y_m, _, _ = self.sample(t_s)
        return math.hypot(x_m - state.x_m, y_m - state.y_m)

    def catch_up_time(self, t_s: float, state: DiffDriveState, *, radius_m: float,
                      probe_s: float = 0.05, max_probes: int = 400) -> float:
        """Return ``t_s``, or, when the robot is more than ``radius_m`` from the reference, the
        latest earlier time at which the reference was within ``radius_m`` of the robot.

        The search walks back in ``probe_s`` steps, at most ``max_probes`` of them; a robot
        that is far from every probed point keeps the reference at ``t_s``.
        """
        if self.distance_m(t_s, state) <= radius_m:
            return t_s
        probe_t_s = t_s
        for _ in range(max_probes):
            probe_t_s -= probe_s
            if probe_t_s <= self.t_s[0]:
                break
            if self.distance_m(probe_t_s, state) <= radius_m:
                return probe_t_s
        return t_s

    def heading(self, t_s: float, vx_mps: float, vy_mps: float) -> float:
        if math.hypot(vx_mps, vy_mps) > _MOVING_SPEED_MPS:
            return math.atan2(vy_mps, vx_mps)
        return self.yaw(t_s)


class TrackingController:
    """Computes ``(speed_mps, yaw_rate_radps)`` commands that track a trajectory."""

    def __init__(self, *, gains: TrackingGains = TrackingGains(), step_s: float) -> None:
        self.gains = gains
        self.step_s = float(step_s)
        self.max_error_m = 0.0
        self._reference: TrajectoryReference | None = None

    def command(self, state: DiffDriveState, trajectory: Trajectory | None,
                t_s: float) -> tuple[float, float]:
        """Return the command for ``state`` at fleet time ``t_s``; ``None`` means hold."""
        if trajectory is None:
            return 0.0, 0.0
        gains = self.gains
        if self._reference is None or self._reference.trajectory is not trajectory:
            self._reference = TrajectoryReference(trajectory)
        reference = self._reference
        self.max_error_m = max(self.max_error_m, reference.distance_m(t_s, state))
        t_s = reference.catch_up_time(t_s, state, radius_m=gains.catch_up_radius_m)
        x_m, y_m, vx_mps, vy_mps = reference.sample(t_s)
        reference_speed_mps = math.hypot(vx_mps, vy_mps)
        reference_yaw = reference.heading(t_s, vx_mps, vy_mps)
        next_t_s = t_s + self.step_s
        _, _, next_vx_mps, next_vy_mps = reference.sample(next_t_s)
        next_yaw = reference.heading(next_t_s, next_vx_mps, next_vy_mps)
        reference_yaw_rate = wrap_angle(next_yaw - reference_yaw) / self.step_s

        dx = x_m - state.x_m
        dy = y_m - state.y_m
        cos_yaw = math.cos(state.yaw_rad)
        sin_yaw = math.sin(state.yaw_rad)
        error_x = cos_yaw * dx + sin_yaw * dy
        error_y = -sin_yaw * dx + cos_yaw * dy
        error_yaw = wrap_angle(reference_yaw - state.yaw_rad)
        distance_m = math.hypot(dx, dy)

        if abs(error_yaw) > gains.turn_in_place_rad and reference_speed_mps > _MOVING_SPEED_MPS:
            # The reference moves in a direction the robot does not face: turn first.
            return 0.0, gains.k_yaw_per_s * error_yaw
        if reference_speed_mps <= _MOVING_SPEED_MPS and distance_m > gains.standing_tolerance_m:
            # Standing reference but the robot is off it: drive straight back onto it. The
            # heading to the point is used when the point is ahead, else the robot reverses.
            bearing = wrap_angle(math.atan2(dy, dx) - state.yaw_rad)
            if abs(bearing) > math.pi / 2:
                bearing = wrap_angle(bearing + math.pi)
            speed = gains.k_x_per_s * error_x
            if abs(bearing) > gains.turn_in_place_rad:
                speed = 0.0
            return speed, gains.k_yaw_per_s * bearing
        speed = reference_speed_mps * math.cos(error_yaw) + gains.k_x_per_s * error_x
        yaw_rate = (reference_yaw_rate + reference_speed_mps * gains.k_y_per_m2 * error_y
                    + gains.k_yaw_per_s * math.sin(error_yaw))
        return speed, yaw_rate
