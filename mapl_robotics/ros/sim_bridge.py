"""ROS side of ``mapl sim --ros``: simulated robots' odometry, tf and clock out, goals in.

Per robot ``<name>`` the bridge publishes

- ``/<name>/odom`` (``nav_msgs/Odometry``): frame ``<name>/odom``, child ``<name>/base_link``;
- ``/tf`` (``tf2_msgs/TFMessage``): ``map -> <name>/odom`` (identity: the simulator localizes
  perfectly) and ``<name>/odom -> <name>/base_link`` (the robot's pose);

plus ``/clock`` (``rosgraph_msgs/Clock``) with the simulation time, so nodes started with
``use_sim_time:=true`` follow the simulator. It subscribes ``/<name>/goal_pose`` and hands
each valid goal to the simulator runner through a callback.

Stamps are ``fleet_epoch_ns`` plus the simulation time, converted with
:class:`~mapl_robotics.ros.time_conversion.FleetTimeBase` (exact to the nanosecond).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Callable, Mapping, Sequence

from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock

from mapl_robotics.errors import MaplError
from mapl_robotics.geometry import World
from mapl_robotics.ros import qos
from mapl_robotics.ros.conversions import header, yaw_to_quaternion
from mapl_robotics.ros.time_conversion import FleetTimeBase, ns_to_stamp
from mapl_robotics.ros.validation import Goal2D, validate_goal

__all__ = ['RobotState', 'SimBridge', 'odometry_message', 'robot_transforms']

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RobotState:
    """A simulated robot's pose and body-frame velocity at one simulation time."""

    name: str
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float = 0.0
    yaw_rate_radps: float = 0.0


def _transform(parent: str, child: str, *, stamp_ns: int, x_m: float, y_m: float,
               yaw_rad: float) -> TransformStamped:
    transform = TransformStamped(header=header(frame_id=parent, stamp_ns=stamp_ns),
                                 child_frame_id=child)
    transform.transform.translation.x = float(x_m)
    transform.transform.translation.y = float(y_m)
    transform.transform.translation.z = 0.0
    transform.transform.rotation = yaw_to_quaternion(yaw_rad)
    return transform


def robot_transforms(state: RobotState, *, stamp_ns: int,
                     map_frame: str = 'map') -> list[TransformStamped]:
    """Return ``map -> <name>/odom`` (identity) and ``<name>/odom -> <name>/base_link``."""
    odom_frame = f'{state.name}/odom'
    return [
        _transform(map_frame, odom_frame, stamp_ns=stamp_ns, x_m=0.0, y_m=0.0, yaw_rad=0.0),
        _transform(odom_frame, f'{state.name}/base_link', stamp_ns=stamp_ns, x_m=state.x_m,
                   y_m=state.y_m, yaw_rad=state.yaw_rad),
    ]


def odometry_message(state: RobotState, *, stamp_ns: int) -> Odometry:
    """Return the robot's ``nav_msgs/Odometry`` in its prefixed ``odom`` frame."""
    message = Odometry(header=header(frame_id=f'{state.name}/odom', stamp_ns=stamp_ns),
                       child_frame_id=f'{state.name}/base_link')
    message.pose.pose.position.x = float(state.x_m)
    message.pose.pose.position.y = float(state.y_m)
    message.pose.pose.orientation = yaw_to_quaternion(state.yaw_rad)
    message.twist.twist.linear.x = float(state.speed_mps)
    message.twist.twist.angular.z = float(state.yaw_rate_radps)
    return message


def _tf_message_type():
    """Return ``tf2_msgs/TFMessage``, or ``None`` where tf2_msgs is not installed.

    NOTE: tf2_msgs is part of every ROS 2 installation but is not published on PyPI, so a
    pip-only environment runs the bridge without /tf (odometry still carries the poses).
    """
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None
    return TFMessage


class SimBridge:
    """Publishes simulated robots to ROS and forwards goals from ROS to the simulator.

    :param node: the rclpy node that owns the publishers and subscriptions.
    :param on_goal: called as ``on_goal(robot_name, goal)`` with a validated
        :class:`~mapl_robotics.ros.validation.Goal2D`; ``None`` leaves ``goal_pose`` to the
        agent nodes and subscribes nothing.
    """

    def __init__(self, node, *, robots: Mapping[str, float], world: World,
                 time_base: FleetTimeBase,
                 on_goal: Callable[[str, Goal2D], None] | None) -> None:
        self.node = node
        self.world = world
        self.time_base = time_base
        self.radius_m = dict(robots)
        self._on_goal = on_goal
        self.rejected_goals = 0
        self.odom_publishers = {name: node.create_publisher(Odometry, f'/{name}/odom',
                                                            qos.ODOM_PUBLISHER_QOS)
                                for name in self.radius_m}
        for name in self.radius_m if on_goal is not None else ():
            node.create_subscription(PoseStamped, f'/{name}/goal_pose',
                                     lambda message, name=name: self._goal(name, message),
                                     qos.GOAL_QOS)
        self.clock_publisher = node.create_publisher(Clock, '/clock', qos.CLOCK_QOS)
        tf_type = _tf_message_type()
        self._tf_type = tf_type
        self.tf_publisher = (node.create_publisher(tf_type, '/tf', qos.TF_QOS)
                             if tf_type is not None else None)
        if tf_type is None:
            _LOG.warning('tf2_msgs is not installed, so /tf is not published; odometry on '
                         '/<robot>/odom still carries every pose. Install the ROS 2 tf2_msgs '
                         'package to get /tf')

    def _goal(self, name: str, message: PoseStamped) -> None:
        try:
            goal = validate_goal(message, world=self.world, radius_m=self.radius_m[name])
        except MaplError as error:
            self.rejected_goals += 1
            _LOG.error('rejected goal_pose for %s: %s', name, error)
            return
        _LOG.info('goal for %s: (%.3f, %.3f)', name, goal.x_m, goal.y_m)
        self._on_goal(name, goal)

    def publish(self, t_s: float, states: Sequence[RobotState]) -> None:
        """Publish ``/clock``, every robot's odometry and the tf tree at simulation time
        ``t_s``."""
        if not math.isfinite(t_s):
            raise ValueError(f'simulation time t_s={t_s} must be finite')
        stamp_ns = self.time_base.to_ros_ns(t_s)
        self.clock_publisher.publish(Clock(clock=ns_to_stamp(stamp_ns)))
        transforms = []
        for state in states:
            publisher = self.odom_publishers.get(state.name)
            if publisher is not None:
                publisher.publish(odometry_message(state, stamp_ns=stamp_ns))
            transforms += robot_transforms(state, stamp_ns=stamp_ns)
        if self.tf_publisher is not None:
            self.tf_publisher.publish(self._tf_type(transforms=transforms))
