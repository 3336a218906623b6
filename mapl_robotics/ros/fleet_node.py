"""The fleet node: the map, the moving obstacles and the fleet's diagnostics.

Publishes

- ``/map`` (``nav_msgs/OccupancyGrid``, reliable, transient local): once at start-up; every
  later subscriber receives it, as from map_server.
- ``/moving_obstacles`` (``visualization_msgs/MarkerArray``): the moving obstacles of the
  fleet spec, at their positions at the current fleet time, with their predicted paths.
- ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``): the ledger leader and term, and per
  robot its state, commit latency, mesh latency and deadline misses.

Subscribes ``/<robot>/diagnostics`` of every robot in ``robot_names``.
"""

from __future__ import annotations

import logging
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from mapl_robotics.errors import MaplError
from mapl_robotics.ros import qos
from mapl_robotics.ros.conversions import header, occupancy_grid_from_world
from mapl_robotics.ros.diagnostics import ledger_status, status_values
from mapl_robotics.ros.ledger_status import LedgerProbe
from mapl_robotics.ros.markers import marker_array, moving_obstacle_markers
from mapl_robotics.ros.node_logging import attach_to_node, detach_from_node
from mapl_robotics.ros.parameters import FLEET_PARAMETERS, declare_all, read_all
from mapl_robotics.ros.time_conversion import fleet_time_base
from mapl_robotics.ros.world_loading import load_node_world, load_optional_spec

__all__ = ['FleetNode']

_LOG = logging.getLogger(__name__)


class FleetNode(Node):
    """Publishes ``/map``, ``/moving_obstacles`` and the aggregated ``/diagnostics``."""

    def __init__(self, *, node_name: str = 'fleet', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._log_handler = attach_to_node(self)
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        declare_all(self, FLEET_PARAMETERS)
        self.settings = read_all(self, FLEET_PARAMETERS)
        self.time_base = fleet_time_base(self)
        self.spec = load_optional_spec(self.settings['spec_file'])
        self.world = load_node_world(self.settings['map_yaml'],
                                     cell_size_m=self.settings['map_cell_size_m'],
                                     spec=self.spec)
        self.moving_obstacles = self.spec.moving_obstacle_models() if self.spec else ()
        self.robot_names = list(self.settings['robot_names'])
        # Latest status per robot and the steady-clock time it arrived.
        self._robot_status: dict[str, tuple[DiagnosticStatus, float]] = {}
        self._ledger = LedgerProbe(self.settings['ledger.addresses'])

        self.map_publisher = self.create_publisher(OccupancyGrid, '/map', qos.MAP_QOS)
        self.obstacles_publisher = self.create_publisher(MarkerArray, '/moving_obstacles',
                                                         qos.MOVING_OBSTACLES_QOS)
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, '/diagnostics',
                                                           qos.DIAGNOSTICS_QOS)
        for name in self.robot_names:
            self.create_subscription(DiagnosticArray, f'/{name}/diagnostics',
                                     self._on_robot_diagnostics, qos.ROBOT_STATUS_QOS)
        self.publish_map()
        self._steady_timer(1.0 / self.settings['diagnostics.rate_hz'], self.publish_diagnostics)
        if self.moving_obstacles:
            self._steady_timer(1.0 / self.settings['obstacles.rate_hz'],
                              self.publish_moving_obstacles)
        _LOG.info('fleet node started: map %r (%d obstacles), robots %s, %d moving obstacles',
                  self.world.name, len(self.world.obstacles), self.robot_names,
                  len(self.moving_obstacles))

    def now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _steady_timer(self, period_s: float, callback):
        """Create a timer on the steady clock: it keeps firing while simulation time is
        paused or has not started, unlike a timer on the ROS clock."""
        return self.create_timer(period_s, callback, clock=self._steady_clock)

    def publish_map(self) -> None:
        """Rasterize the world and publish it on ``/map`` (latched)."""
        grid = occupancy_grid_from_world(self.world,
                                         resolution_m=self.settings['map_resolution_m'],
                                         stamp_ns=self.now_ns())
        self.map_publisher.publish(grid)
        _LOG.info('published /map: %dx%d cells at %.3f m', grid.info.width, grid.info.height,
                  grid.info.resolution)

    def publish_moving_obstacles(self) -> None:
        stamp_ns = self.now_ns()
        markers = moving_obstacle_markers(
            self.moving_obstacles, t_s=self.time_base.to_fleet_s(stamp_ns),
            horizon_s=self.settings['obstacles.horizon_s'], stamp_ns=stamp_ns,
            lifetime_s=3.0 / self.settings['obstacles.rate_hz'])
        self.obstacles_publisher.publish(marker_array(markers))

    def _on_robot_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            robot = status.hardware_id
            if robot in self.robot_names:
                self._robot_status[robot] = (status, time.monotonic())

    def publish_diagnostics(self) -> None:
        """Publish the ledger status and one status per robot on ``/diagnostics``."""
        array = DiagnosticArray(header=header(frame_id='', stamp_ns=self.now_ns()))
        array.status.append(self._ledger_status())
        timeout_s = self.settings['status_timeout_s']
        now_s = time.monotonic()
        for name in self.robot_names:
            entry = self._robot_status.get(name)
            if entry is None:
                array.status.append(DiagnosticStatus(
                    level=DiagnosticStatus.STALE, name=f'mapl_robotics/{name}', hardware_id=name,
                    message='no status received from the agent yet'))
                continue
            status, received_s = entry
            if now_s - received_s > timeout_s:
                status = DiagnosticStatus(
                    level=DiagnosticStatus.STALE, name=status.name, hardware_id=name,
                    message=f'last status {now_s - received_s:.1f} s ago', values=status.values)
            array.status.append(status)
        self.diagnostics_publisher.publish(array)

    def _ledger_status(self) -> DiagnosticStatus:
        """Ask the ledger for its leader and term; fall back to what the agents reported."""
        replicas = len(self.settings['ledger.addresses'])
        try:
            leader, term = self._ledger.leader_and_term()
            if leader:
                return ledger_status(leader=leader, term=term, replicas=replicas,
                                     source='ledger')
        except MaplError as error:
            _LOG.debug('ledger status query failed: %s', error)
        best = ('', -1)
        for status, _ in self._robot_status.values():
            values = status_values(status)
            try:
                term = int(values.get('ledger_term', '-1'))
            except ValueError:
                continue
            if values.get('ledger_leader') and term >= best[1]:
                best = (values['ledger_leader'], term)
        return ledger_status(leader=best[0], term=best[1], replicas=replicas, source='agents')

    def destroy_node(self) -> None:
        detach_from_node(self._log_handler)
        ledger = getattr(self, '_ledger', None)
        if ledger is not None:
            ledger.close()
        super().destroy_node()
