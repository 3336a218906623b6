"""Checks on incoming ROS messages, before anything reaches the planner or the ledger.

Each check raises a typed error from :mod:`mapl_robotics.errors` whose message names the bad
value and the fix. Nodes catch these errors, log them and keep running: a malformed message
never stops a node.

========================  ==========================================
rejected input            error
========================  ==========================================
NaN or infinite value     :class:`~mapl_robotics.errors.InvalidCoordinateError`
unknown ``frame_id``      :class:`~mapl_robotics.errors.UnknownFrameError`
goal outside the map      :class:`~mapl_robotics.errors.OutOfBoundsError`
goal inside an obstacle   :class:`~mapl_robotics.errors.GoalInCollisionError`
========================  ==========================================
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry

from mapl_robotics.errors import GoalInCollisionError, InvalidCoordinateError, UnknownFrameError
from mapl_robotics.geometry import World
from mapl_robotics.ros.conversions import quaternion_to_yaw
from mapl_robotics.ros.time_conversion import stamp_to_ns

__all__ = [
    'Goal2D',
    'Odometry2D',
    'normalize_frame',
    'validate_goal',
    'validate_odometry',
]


@dataclasses.dataclass(frozen=True)
class Goal2D:
    """A validated goal pose in the map frame."""

    x_m: float
    y_m: float
    yaw_rad: float
    stamp_ns: int
    frame_id: str


@dataclasses.dataclass(frozen=True)
class Odometry2D:
    """A validated planar odometry sample: pose in the map frame, twist in the body frame."""

    x_m: float
    y_m: float
    yaw_rad: float
    vx_mps: float
    vy_mps: float
    yaw_rate_radps: float
    stamp_ns: int
    frame_id: str


def normalize_frame(frame_id: str) -> str:
    """Return a frame id without the leading slash that ROS 1 tools still send."""
    return frame_id[1:] if frame_id.startswith('/') else frame_id


def _require_frame(frame_id: str, accepted: Iterable[str], *, what: str) -> str:
    frame = normalize_frame(frame_id)
    allowed = sorted(normalize_frame(f) for f in accepted)
    if frame not in allowed:
        raise UnknownFrameError(
            f'{what} has frame_id {frame_id!r}, which this node does not accept; '
            f'send it in one of {allowed} (RViz: set the fixed frame to "map")')
    return frame


def _require_finite(values: dict[str, float], *, what: str) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise InvalidCoordinateError(
                f'{what} field {name} is {value}; every pose field must be a finite number')


def validate_goal(message: PoseStamped, *, world: World, radius_m: float,
                  accepted_frames: Iterable[str] = ('map',)) -> Goal2D:
    """Check a goal pose and return it as a :class:`Goal2D`.

    :raises UnknownFrameError: the frame is not one of ``accepted_frames``.
    :raises InvalidCoordinateError: a position or orientation value is NaN or infinite, or
        the quaternion has zero length.
    :raises OutOfBoundsError: the goal lies outside the map bounds.
    :raises GoalInCollisionError: a disc of ``radius_m`` at the goal touches an obstacle or
        crosses the map edge.
    """
    frame = _require_frame(message.header.frame_id, accepted_frames, what='goal_pose')
    position = message.pose.position
    orientation = message.pose.orientation
    _require_finite({'position.x': position.x, 'position.y': position.y,
                     'position.z': position.z, 'orientation.x': orientation.x,
                     'orientation.y': orientation.y, 'orientation.z': orientation.z,
                     'orientation.w': orientation.w}, what='goal_pose')
    yaw_rad = quaternion_to_yaw(orientation)
    world.require_inside((position.x, position.y), what='goal_pose position')
    if not world.checker(radius_m).point_free((position.x, position.y)):
        raise GoalInCollisionError(
            f'goal_pose ({position.x:.3f}, {position.y:.3f}) m is inside an obstacle or closer '
            f'than the robot radius {radius_m:.3f} m to an obstacle or the map edge of '
            f'{world.name!r}; pick a goal in free space')
    return Goal2D(x_m=float(position.x), y_m=float(position.y), yaw_rad=yaw_rad,
                  stamp_ns=stamp_to_ns(message.header.stamp), frame_id=frame)


def validate_odometry(message: Odometry, *, accepted_frames: Iterable[str]) -> Odometry2D:
    """Check an odometry message and return it as an :class:`Odometry2D`.

    :raises UnknownFrameError: the header frame is not one of ``accepted_frames``.
    :raises InvalidCoordinateError: a pose or twist value is NaN or infinite, or the
        quaternion has zero length.
    """
    frame = _require_frame(message.header.frame_id, accepted_frames, what='odom')
    pose = message.pose.pose
    twist = message.twist.twist
    _require_finite({'pose.position.x': pose.position.x, 'pose.position.y': pose.position.y,
                     'twist.linear.x': twist.linear.x, 'twist.linear.y': twist.linear.y,
                     'twist.angular.z': twist.angular.z}, what='odom')
    yaw_rad = quaternion_to_yaw(pose.orientation)
    return Odometry2D(x_m=float(pose.position.x), y_m=float(pose.position.y), yaw_rad=yaw_rad,
                      vx_mps=float(twist.linear.x), vy_mps=float(twist.linear.y),
                      yaw_rate_radps=float(twist.angular.z),
                      stamp_ns=stamp_to_ns(message.header.stamp), frame_id=frame)
