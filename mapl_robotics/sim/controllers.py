"""Trajectory tracking for differential-drive robots.

Each robot follows the reference pose of its committed trajectory at the current fleet time,
with the velocity of the trajectory as feedforward and the tracking law of Kanayama et al.
("A stable tracking control method for an autonomous mobile robot", ICRA 1990) as feedback:

    v = v_r cos(e_yaw) + k_x e_x
    w = w_r + v_r k_y e_y + k_yaw sin(e_yaw)

where ``(e_x, e_y)`` is the position error in the robot frame. The heading term is not scaled
by ``v_r`` as in the original, so a robot also turns to the reference heading while the
reference stands still (turns in place at corners, waiting at a hold point).

A robot without a current committed plan holds: it brakes to a stop at its acceleration limit
and stays where it is.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.sim.robots import DiffDriveState, wrap_angle

__all__ = ['TrackingGains', 'TrackingController', 'reference_heading']

# Below this reference speed the reference heading comes from the trajectory's yaw samples,
# above it from the direction of travel.
_MOVING_SPEED_MPS = 1e-3


@dataclasses.dataclass(frozen=True)
class TrackingGains:
    """Feedback gains of the tracking law; units follow from ``v`` in m/s and ``w`` in rad/s."""

    k_x_per_s: float = 3.0
    k_y_per_m2: float = 12.0
    k_yaw_per_s: float = 5.0
    # Beyond this heading error the robot turns in place before it drives, so it never
    # sweeps sideways out of its committed corridor.
    turn_in_place_rad: float = math.radians(35.0)


def reference_heading(trajectory: Trajectory, t_s: float) -> float:
    """Return the heading a differential-drive robot should have on ``trajectory`` at ``t_s``.

    A moving reference faces along its velocity; a stationary one keeps the sampled yaw.
    """
    velocity = trajectory.velocity_at(t_s)
    if float(np.hypot(velocity[0], velocity[1])) > _MOVING_SPEED_MPS:
        return math.atan2(velocity[1], velocity[0])
    return float(trajectory.yaw_at(t_s))


class TrackingController:
    """Computes ``(speed_mps, yaw_rate_radps)`` commands that track a trajectory."""

    def __init__(self, *, gains: TrackingGains = TrackingGains(), step_s: float) -> None:
        self.gains = gains
        self.step_s = float(step_s)
        self.max_error_m = 0.0

    def command(self, state: DiffDriveState, trajectory: Trajectory | None,
                t_s: float) -> tuple[float, float]:
        """Return the command for ``state`` at fleet time ``t_s``; ``None`` means hold."""
        if trajectory is None:
            return 0.0, 0.0
        gains = self.gains
        reference_xy = trajectory.position_at(t_s)
        velocity = trajectory.velocity_at(t_s)
        reference_speed_mps = float(np.hypot(velocity[0], velocity[1]))
        reference_yaw = reference_heading(trajectory, t_s)
        next_yaw = reference_heading(trajectory, t_s + self.step_s)
        reference_yaw_rate = wrap_angle(next_yaw - reference_yaw) / self.step_s

        dx = float(reference_xy[0]) - state.x_m
        dy = float(reference_xy[1]) - state.y_m
        cos_yaw = math.cos(state.yaw_rad)
        sin_yaw = math.sin(state.yaw_rad)
        error_x = cos_yaw * dx + sin_yaw * dy
        error_y = -sin_yaw * dx + cos_yaw * dy
        error_yaw = wrap_angle(reference_yaw - state.yaw_rad)
        distance_m = math.hypot(dx, dy)
        self.max_error_m = max(self.max_error_m, distance_m)

        if abs(error_yaw) > gains.turn_in_place_rad and reference_speed_mps > _MOVING_SPEED_MPS:
            # The reference moves in a direction the robot does not face: turn first.
            return 0.0, gains.k_yaw_per_s * error_yaw
        if reference_speed_mps <= _MOVING_SPEED_MPS and distance_m > 0.02:
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
