"""Velocity commands that track a committed trajectory (the agent node's ``cmd_vel``).

A feedforward term follows the trajectory's velocity at the current fleet time; a
proportional term pulls the robot back onto the reference position. Holonomic robots get the
world-frame velocity rotated into the body frame; differential-drive robots get a forward
speed and a turn rate toward the commanded direction. Both stay within the robot's limits.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mapl_robotics.geometry import Trajectory

__all__ = ['TwistCommand', 'track']


@dataclasses.dataclass(frozen=True)
class TwistCommand:
    """A body-frame velocity command."""

    vx_mps: float = 0.0
    vy_mps: float = 0.0
    yaw_rate_radps: float = 0.0


def _wrap(angle_rad: float) -> float:
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def track(trajectory: Trajectory | None, *, t_s: float, x_m: float, y_m: float,
          yaw_rad: float, gain_per_s: float, max_speed_mps: float,
          max_yaw_rate_radps: float, differential: bool) -> TwistCommand:
    """Return the command that follows ``trajectory`` at fleet time ``t_s`` from the pose
    ``(x_m, y_m, yaw_rad)``; a zero command when there is no trajectory."""
    if trajectory is None:
        return TwistCommand()
    reference = trajectory.position_at(t_s)
    feedforward = np.asarray(trajectory.velocity_at(t_s), dtype=float).reshape(2)
    world_velocity = feedforward + gain_per_s * (reference - np.array([x_m, y_m]))
    speed = float(np.linalg.norm(world_velocity))
    if speed > max_speed_mps:
        world_velocity *= max_speed_mps / speed
        speed = max_speed_mps
    cos_yaw, sin_yaw = math.cos(yaw_rad), math.sin(yaw_rad)
    body_x = cos_yaw * world_velocity[0] + sin_yaw * world_velocity[1]
    body_y = -sin_yaw * world_velocity[0] + cos_yaw * world_velocity[1]
    reference_yaw = float(trajectory.yaw_at(t_s))
    if not differential:
        yaw_rate = gain_per_s * _wrap(reference_yaw - yaw_rad)
        yaw_rate = max(-max_yaw_rate_radps, min(max_yaw_rate_radps, yaw_rate))
        return TwistCommand(vx_mps=float(body_x), vy_mps=float(body_y),
                            yaw_rate_radps=float(yaw_rate))
    if speed < 1e-3:
        heading_error = _wrap(reference_yaw - yaw_rad)
    else:
        heading_error = math.atan2(body_y, body_x)
    yaw_rate = max(-max_yaw_rate_radps,
                   min(max_yaw_rate_radps, 2.0 * gain_per_s * heading_error))
    # Drive forward only while roughly facing the commanded direction.
    forward = max(0.0, body_x) * max(0.0, math.cos(heading_error))
    return TwistCommand(vx_mps=float(forward), vy_mps=0.0, yaw_rate_radps=float(yaw_rate))
