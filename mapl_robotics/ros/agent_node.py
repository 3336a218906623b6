"""The robot agent node: one per robot, in the robot's namespace (``/robot_0/...``).

Subscribes (relative names)

- ``goal_pose`` (``geometry_msgs/PoseStamped``, frame ``map``): a new goal. Goals with NaN
  values, an unknown frame, outside the map or inside an obstacle are rejected with a logged
  error; the node keeps running.
- ``odom`` (``nav_msgs/Odometry``): the robot's pose. Without odometry the robot is assumed to
  follow its committed plan exactly (planning-only use, as in ``mapl fleet`` without a
  simulator).

Publishes

- ``plan`` (``nav_msgs/Path``, frame ``map``, latched): the committed trajectory; each pose is
  stamped with the time the robot is due there.
- ``cmd_vel`` (``geometry_msgs/Twist``) while ``controller.enabled`` is true: tracks the
  committed plan; zero when there is none or when odometry is older than ``odom_timeout_s``
  on the steady clock.
- ``markers`` (``visualization_msgs/MarkerArray``, latched): every committed plan of the
  fleet, the moving obstacles and this robot's footprint.
- ``diagnostics`` (``diagnostic_msgs/DiagnosticArray``): this robot's status, gathered by the
  fleet node into ``/diagnostics``.

The planning and the plan ledger run in :class:`~mapl_robotics.ros.agent_runtime.AgentRuntime`
around :class:`mapl_robotics.coordination.RobotAgent`; the node only converts messages.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry, Path
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from mapl_robotics.errors import MaplError
from mapl_robotics.ros import qos
from mapl_robotics.ros.agent_runtime import AgentRuntime, RuntimeSettings
from mapl_robotics.ros.controller import track
from mapl_robotics.ros.conversions import header, trajectory_to_path
from mapl_robotics.ros.diagnostics import robot_status
from mapl_robotics.ros.markers import (footprint_marker, marker_array, moving_obstacle_markers,
                                       plan_markers)
from mapl_robotics.ros.node_logging import Throttle, attach_to_node, detach_from_node
from mapl_robotics.ros.parameters import AGENT_PARAMETERS, declare_all, read_all
from mapl_robotics.ros.time_conversion import fleet_time_base
from mapl_robotics.ros.validation import validate_goal, validate_odometry
from mapl_robotics.ros.world_loading import load_node_world, load_optional_spec

__all__ = ['AgentNode']

_LOG = logging.getLogger(__name__)

_UPDATE_PERIOD_S = 0.05
_STATUS_PERIOD_S = 0.5
_OBSTACLE_HORIZON_S = 5.0


class AgentNode(Node):
    """One robot's agent: goals in, committed plans and velocity commands out."""

    def __init__(self, *, node_name: str = 'agent', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._log_handler = attach_to_node(self)
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        declare_all(self, AGENT_PARAMETERS)
        self.settings = read_all(self, AGENT_PARAMETERS)
        self.robot_name = (self.settings['robot_name']
                           or self.get_namespace().strip('/').replace('/', '_') or 'robot_0')
        self.time_base = fleet_time_base(self)
        self.spec = load_optional_spec(self.settings['spec_file'])
        self.world = load_node_world(self.settings['map_yaml'],
                                     cell_size_m=self.settings['map_cell_size_m'],
                                     spec=self.spec)
        self.moving_obstacles = self.spec.planned_obstacles() if self.spec else ()
        self.radius_m = float(self.settings['radius_m'])
        self.goal_frames = list(self.settings['goal_frames'])
        prefix = self.robot_name + '/'
        self.odom_frames = [frame for base in self.settings['odom_frames']
                            for frame in (base, prefix + base)]
        self._throttle = Throttle(period_s=1.0)
        self.rejected_messages = 0
        self._odom = None
        self._odom_received_s: float | None = None
        self._published_token = None

        self.runtime = AgentRuntime(RuntimeSettings.from_parameters(
            self.settings, robot_name=self.robot_name, spec=self.spec),
            world=self.world, moving_obstacles=self.moving_obstacles, clock_s=self.fleet_now_s)

        self.plan_publisher = self.create_publisher(Path, 'plan', qos.PLAN_QOS)
        self.markers_publisher = self.create_publisher(MarkerArray, 'markers', qos.MARKERS_QOS)
        self.status_publisher = self.create_publisher(DiagnosticArray, 'diagnostics',
                                                      qos.ROBOT_STATUS_QOS)
        self.cmd_vel_publisher = None
        if self.settings['controller.enabled']:
            self.cmd_vel_publisher = self.create_publisher(Twist, 'cmd_vel', qos.CMD_VEL_QOS)
            self._steady_timer(1.0 / self.settings['controller.rate_hz'], self._control)
        self.create_subscription(PoseStamped, 'goal_pose', self._on_goal, qos.GOAL_QOS)
        self.create_subscription(Odometry, 'odom', self._on_odom, qos.ODOM_QOS)
        self._steady_timer(_UPDATE_PERIOD_S, self._update)
        self._steady_timer(_STATUS_PERIOD_S, self._publish_status)
        self._steady_timer(1.0 / self.settings['markers.rate_hz'], self._publish_markers)
        self.runtime.start()
        # A restarted agent keeps the end of its committed plan, not the start parameter.
        hold_x_m, hold_y_m = (float(value) for value in self.runtime.agent.goal_xy_m)
        _LOG.info('agent %s started on map %r, radius %.3f m, controller %s; it holds at '
                  '(%.3f, %.3f) until a goal arrives', self.robot_name, self.world.name,
                  self.radius_m, 'on' if self.cmd_vel_publisher is not None else 'off',
                  hold_x_m, hold_y_m)

    # -- time ---------------------------------------------------------------------------------

    def now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _steady_timer(self, period_s: float, callback):
        """Create a timer on the steady clock: it keeps firing while simulation time is
        paused or has not started, unlike a timer on the ROS clock."""
        return self.create_timer(period_s, callback, clock=self._steady_clock)

    def fleet_now_s(self) -> float:
        return self.time_base.to_fleet_s(self.now_ns())

    # -- inputs ---------------------------------------------------------------------------------

    def _on_goal(self, message: PoseStamped) -> None:
        try:
            goal = validate_goal(message, world=self.world, radius_m=self.radius_m,
                                 accepted_frames=self.goal_frames)
        except MaplError as error:
            self.rejected_messages += 1
            _LOG.error('rejected goal_pose for %s: %s', self.robot_name, error)
            return
        _LOG.info('goal for %s: (%.3f, %.3f, yaw %.3f rad)', self.robot_name, goal.x_m,
                  goal.y_m, goal.yaw_rad)
        try:
            self.runtime.set_goal(goal.x_m, goal.y_m)
        except MaplError as error:
            self.rejected_messages += 1
            _LOG.error('goal for %s could not be accepted: %s', self.robot_name, error)

    def _on_odom(self, message: Odometry) -> None:
        try:
            odom = validate_odometry(message, accepted_frames=self.odom_frames)
        except MaplError as error:
            self.rejected_messages += 1
            key = type(error).__name__
            if self._throttle.allow(key):
                _LOG.error('rejected odom for %s: %s (%d similar suppressed)', self.robot_name,
                           error, self._throttle.take_suppressed(key))
            return
        self._odom = odom
        self._odom_received_s = time.monotonic()

    # -- outputs ------------------------------------------------------------------------------

    def _update(self) -> None:
        """Step the agent and publish the committed plan whenever its fencing token changes."""
        if self.now_ns() == 0:
            # With use_sim_time the clock reads zero until the first /clock message.
            if self._throttle.allow('clock'):
                _LOG.info('agent %s is waiting for /clock', self.robot_name)
            return
        self.runtime.step()
        committed = self.runtime.committed_plan()
        if committed is None:
            return
        trajectory, token = committed
        if token == self._published_token:
            return
        self._published_token = token
        path = trajectory_to_path(trajectory, time_base=self.time_base, stamp_ns=self.now_ns())
        self.plan_publisher.publish(path)
        _LOG.info('published plan of %s committed at term %d index %d: %d poses, %.2f s, '
                  '%.2f m, ends at (%.3f, %.3f)', self.robot_name, token.term, token.index,
                  len(trajectory), trajectory.duration_s, trajectory.length_m,
                  trajectory.end_xy_m[0], trajectory.end_xy_m[1])
        self._publish_markers()

    def _current_xy_m(self) -> np.ndarray:
        if self._odom is not None:
            return np.array([self._odom.x_m, self._odom.y_m])
        committed = self.runtime.committed_plan()
        if committed is not None:
            return committed[0].position_at(self.fleet_now_s())
        return np.array([self.settings['start.x_m'], self.settings['start.y_m']])

    def _publish_markers(self) -> None:
        stamp_ns = self.now_ns()
        markers = plan_markers(self.runtime.committed_plans(), stamp_ns=stamp_ns)
        markers.append(footprint_marker(name=self.robot_name, xy_m=self._current_xy_m(),
                                        radius_m=self.radius_m, stamp_ns=stamp_ns))
        if self.moving_obstacles:
            markers += moving_obstacle_markers(
                self.moving_obstacles, t_s=self.time_base.to_fleet_s(stamp_ns),
                horizon_s=_OBSTACLE_HORIZON_S, stamp_ns=stamp_ns,
                lifetime_s=2.0 / self.settings['markers.rate_hz'])
        self.markers_publisher.publish(marker_array(markers, clear_first=True,
                                                    stamp_ns=stamp_ns))

    def _control(self) -> None:
        """Publish cmd_vel toward the committed plan; stop when odometry is stale."""
        twist = Twist()
        fresh = (self._odom_received_s is not None
                 and time.monotonic() - self._odom_received_s
                 <= self.get_parameter('odom_timeout_s').value)
        committed = self.runtime.committed_plan()
        if fresh and committed is not None:
            command = track(committed[0], t_s=self.fleet_now_s(), x_m=self._odom.x_m,
                            y_m=self._odom.y_m, yaw_rad=self._odom.yaw_rad,
                            gain_per_s=self.get_parameter('controller.gain').value,
                            max_speed_mps=self.settings['max_speed_mps'],
                            max_yaw_rate_radps=self.settings['max_yaw_rate_radps'],
                            differential=self.settings['drive'] == 'differential')
            twist.linear.x = command.vx_mps
            twist.linear.y = command.vy_mps
            twist.angular.z = command.yaw_rate_radps
        elif not fresh and self._odom_received_s is not None and self._throttle.allow('stale'):
            _LOG.warning('odom for %s is older than %.2f s; commanding zero velocity',
                         self.robot_name, self.get_parameter('odom_timeout_s').value)
        self.cmd_vel_publisher.publish(twist)

    def _publish_status(self) -> None:
        report = self.runtime.report(rejected_messages=self.rejected_messages)
        array = DiagnosticArray(header=header(frame_id='', stamp_ns=self.now_ns()))
        array.status = [robot_status(report)]
        self.status_publisher.publish(array)

    def destroy_node(self) -> None:
        # The context may already be shut down (Ctrl-C), so later records skip /rosout. A node
        # whose constructor failed has no runtime yet.
        detach_from_node(self._log_handler)
        runtime = getattr(self, 'runtime', None)
        if runtime is not None:
            runtime.close()
        super().destroy_node()
