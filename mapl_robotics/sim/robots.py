"""Differential-drive robot models: URDF bodies in PyBullet plus their drive kinematics.

Robots are simulated kinematically. A controller commands linear and angular speed. The drive
model turns them into left and right wheel speeds and enforces wheel speed and acceleration
limits, then integrates the pose exactly along the resulting arc and writes it to the PyBullet
body.
Contact dynamics are not simulated, because the simulator's job is to judge whether the fleet's
plans keep robots apart, and a kinematic base shows every contact without pushing robots
apart the way a rigid-body solver would.
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ElementTree
from functools import lru_cache
from pathlib import Path

import numpy as np

from mapl_robotics.errors import SimulationError
from mapl_robotics.resources import bundled_path
from mapl_robotics.sim.quiet_pybullet import pybullet

__all__ = ['DriveLimits', 'DiffDriveState', 'DiffDriveRobot', 'ROBOT_URDF', 'wrap_angle']

ROBOT_URDF = 'sim/models/diff_drive.urdf'

# Fraction by which the simulated base may exceed the planning limits, so the tracking
# controller has room to correct small errors while the reference moves at full speed.
_LIMIT_HEADROOM = 1.25


def _clamp(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def wrap_angle(angle_rad: float) -> float:
    """Return ``angle_rad`` wrapped to ``[-pi, pi)``."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


@dataclasses.dataclass(frozen=True)
class _UrdfGeometry:
    footprint_radius_m: float
    wheel_radius_m: float
    wheel_separation_m: float


@lru_cache(maxsize=8)
def _read_urdf_geometry(path: str) -> _UrdfGeometry:
    """Read the footprint and wheel geometry of the robot model at scale 1."""
    root = ElementTree.parse(path).getroot()
    links = {link.get('name'): link for link in root.iter('link')}
    joints = {joint.get('name'): joint for joint in root.iter('joint')}
    try:
        base = links['base_link'].find('collision/geometry/cylinder')
        wheel = links['left_wheel'].find('visual/geometry/cylinder')
        left_y = float(joints['left_wheel_joint'].find('origin').get('xyz').split()[1])
        right_y = float(joints['right_wheel_joint'].find('origin').get('xyz').split()[1])
        return _UrdfGeometry(footprint_radius_m=float(base.get('radius')),
                             wheel_radius_m=float(wheel.get('radius')),
                             wheel_separation_m=abs(left_y - right_y))
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as error:
        raise SimulationError(
            f'robot model {path!r} lacks a base_link collision cylinder, a left_wheel cylinder '
            f'or left/right wheel joints with an xyz origin ({error}); use the bundled '
            'sim/models/diff_drive.urdf as a template') from None


@dataclasses.dataclass(frozen=True)
class DriveLimits:
    """Limits of a differential-drive base, in SI units."""

    max_speed_mps: float
    max_accel_mps2: float
    max_yaw_rate_radps: float
    wheel_radius_m: float
    wheel_separation_m: float

    @property
    def max_wheel_speed_radps(self) -> float:
        return self.max_speed_mps / self.wheel_radius_m


@dataclasses.dataclass
class DiffDriveState:
    """Pose and speeds of a simulated base."""

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float = 0.0
    yaw_rate_radps: float = 0.0

    @property
    def xy_m(self) -> np.ndarray:
        return np.array([self.x_m, self.y_m])


class DiffDriveRobot:
    """A differential-drive robot body in a PyBullet client.

    :param client_id: PyBullet physics client id; every call passes it explicitly.
    :param radius_m: footprint radius, equal to the radius the planner uses for this robot.
    :param max_speed_mps, max_accel_mps2, max_yaw_rate_radps: the robot's planning limits; the
        simulated base allows 25 % more so that tracking feedback has room to act.
    :param animate_wheels: also write the wheel joint angles to PyBullet every step.
    """

    def __init__(self, client_id: int, *, robot_id: str, radius_m: float,
                 start_xy_m, start_yaw_rad: float = 0.0, max_speed_mps: float,
                 max_accel_mps2: float, max_yaw_rate_radps: float | None = None,
                 urdf_path: str | Path | None = None, animate_wheels: bool = False) -> None:
        if not (math.isfinite(radius_m) and radius_m > 0.0):
            raise SimulationError(f'robot {robot_id!r} radius_m={radius_m} must be a positive '
                                  'number of metres')
        if not (max_speed_mps > 0.0 and max_accel_mps2 > 0.0):
            raise SimulationError(
                f'robot {robot_id!r} needs max_speed_mps > 0 and max_accel_mps2 > 0, got '
                f'{max_speed_mps} and {max_accel_mps2}')
        path = str(urdf_path or bundled_path(ROBOT_URDF))
        geometry = _read_urdf_geometry(path)
        scale = radius_m / geometry.footprint_radius_m
        self.robot_id = robot_id
        self.radius_m = float(radius_m)
        self.client_id = client_id
        wheel_radius_m = geometry.wheel_radius_m * scale
        wheel_separation_m = geometry.wheel_separation_m * scale
        # A base turning in place at full wheel speed spins at 2 v / separation.
        yaw_rate_radps = (max_yaw_rate_radps if max_yaw_rate_radps
                          else 2.0 * max_speed_mps / wheel_separation_m)
        self.limits = DriveLimits(max_speed_mps=max_speed_mps * _LIMIT_HEADROOM,
                                  max_accel_mps2=max_accel_mps2 * _LIMIT_HEADROOM,
                                  max_yaw_rate_radps=yaw_rate_radps * _LIMIT_HEADROOM,
                                  wheel_radius_m=wheel_radius_m,
                                  wheel_separation_m=wheel_separation_m)
        start = np.asarray(start_xy_m, dtype=float)
        self.state = DiffDriveState(x_m=float(start[0]), y_m=float(start[1]),
                                    yaw_rad=float(start_yaw_rad))
        self._wheel_angles_rad = [0.0, 0.0]
        # Wheel joint angles only matter to someone looking at the PyBullet scene; writing them
        # costs two PyBullet calls per robot and step, so it is off unless asked for.
        self.animate_wheels = animate_wheels
        self.body_id = pybullet.loadURDF(
            path, basePosition=[start[0], start[1], 0.0],
            baseOrientation=pybullet.getQuaternionFromEuler([0.0, 0.0, start_yaw_rad]),
            globalScaling=scale, useFixedBase=False, physicsClientId=client_id)
        self._wheel_joints = self._find_wheel_joints()

    def _find_wheel_joints(self) -> list[int]:
        found = {}
        for index in range(pybullet.getNumJoints(self.body_id, physicsClientId=self.client_id)):
            name = pybullet.getJointInfo(self.body_id, index,
                                         physicsClientId=self.client_id)[1].decode()
            found[name] = index
        return [found.get('left_wheel_joint', -1), found.get('right_wheel_joint', -1)]

    def wheel_speeds_radps(self, speed_mps: float, yaw_rate_radps: float) -> tuple[float, float]:
        """Return the (left, right) wheel speeds for a body speed and yaw rate."""
        half = 0.5 * self.limits.wheel_separation_m
        radius = self.limits.wheel_radius_m
        return ((speed_mps - half * yaw_rate_radps) / radius,
                (speed_mps + half * yaw_rate_radps) / radius)

    def limit_command(self, speed_mps: float, yaw_rate_radps: float,
                      dt_s: float) -> tuple[float, float]:
        """Clamp a command to the acceleration, yaw-rate and wheel-speed limits."""
        limits = self.limits
        max_change_mps = limits.max_accel_mps2 * dt_s
        speed_mps = _clamp(speed_mps, self.state.speed_mps - max_change_mps,
                           self.state.speed_mps + max_change_mps)
        speed_mps = _clamp(speed_mps, -limits.max_speed_mps, limits.max_speed_mps)
        yaw_rate_radps = _clamp(yaw_rate_radps, -limits.max_yaw_rate_radps,
                                limits.max_yaw_rate_radps)
        # Scale both down together when a wheel would exceed its speed, which keeps the
        # curvature and therefore the path.
        left, right = self.wheel_speeds_radps(speed_mps, yaw_rate_radps)
        peak = max(abs(left), abs(right))
        wheel_limit = limits.max_wheel_speed_radps
        if peak > wheel_limit:
            speed_mps *= wheel_limit / peak
            yaw_rate_radps *= wheel_limit / peak
        return speed_mps, yaw_rate_radps

    def step(self, speed_mps: float, yaw_rate_radps: float, dt_s: float) -> None:
        """Apply a command for ``dt_s`` seconds: limit it, integrate the pose, move the body."""
        speed_mps, yaw_rate_radps = self.limit_command(speed_mps, yaw_rate_radps, dt_s)
        state = self.state
        if speed_mps == 0.0 and yaw_rate_radps == 0.0:
            # A robot at rest keeps its pose, so its PyBullet body needs no update.
            state.speed_mps = 0.0
            state.yaw_rate_radps = 0.0
            return
        yaw = state.yaw_rad
        dyaw = yaw_rate_radps * dt_s
        if abs(dyaw) > 1e-9:
            # Exact integration along the circular arc of constant speed and yaw rate.
            turn_radius_m = speed_mps / yaw_rate_radps
            state.x_m += turn_radius_m * (math.sin(yaw + dyaw) - math.sin(yaw))
            state.y_m -= turn_radius_m * (math.cos(yaw + dyaw) - math.cos(yaw))
        else:
            state.x_m += speed_mps * dt_s * math.cos(yaw)
            state.y_m += speed_mps * dt_s * math.sin(yaw)
        state.yaw_rad = wrap_angle(yaw + dyaw)
        state.speed_mps = speed_mps
        state.yaw_rate_radps = yaw_rate_radps
        left, right = self.wheel_speeds_radps(speed_mps, yaw_rate_radps)
        self._wheel_angles_rad[0] += left * dt_s
        self._wheel_angles_rad[1] += right * dt_s
        self.sync_body()

    def place(self, xy_m, yaw_rad: float) -> None:
        """Put the robot at a pose at rest (used at start and in tests)."""
        self.state = DiffDriveState(x_m=float(xy_m[0]), y_m=float(xy_m[1]),
                                    yaw_rad=float(yaw_rad))
        self.sync_body()

    def stop(self) -> None:
        """Zero the speeds at once, as an emergency stop of the base would."""
        self.state.speed_mps = 0.0
        self.state.yaw_rate_radps = 0.0

    def sync_body(self) -> None:
        """Write the pose and wheel angles to the PyBullet body."""
        state = self.state
        pybullet.resetBasePositionAndOrientation(
            self.body_id, [state.x_m, state.y_m, 0.0],
            pybullet.getQuaternionFromEuler([0.0, 0.0, state.yaw_rad]),
            physicsClientId=self.client_id)
        if not self.animate_wheels:
            return
        for joint, angle in zip(self._wheel_joints, self._wheel_angles_rad):
            if joint >= 0:
                pybullet.resetJointState(self.body_id, joint, angle,
                                         physicsClientId=self.client_id)
