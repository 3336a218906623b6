"""The fleet node over DDS: /map reaches a late subscriber, /diagnostics lists every robot."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid

from mapl_robotics.geometry.maps import load_map
from mapl_robotics.resources import bundled_path
from mapl_robotics.ros import qos
from mapl_robotics.ros.diagnostics import LEDGER_STATUS_NAME, find_status

from ros_test_support import node_command

MAP = 'maps/ros/turtlebot3_world.yaml'


def test_map_reaches_late_subscriber(spawn, probe):
    fleet = spawn(node_command('fleet', '-p', f'map_yaml:={MAP}',
                               '-p', "robot_names:=['robot_0']",
                               '-p', "ledger.addresses:=['127.0.0.1:1']",
                               '-p', 'map_resolution_m:=0.1'), name='fleet')
    # Subscribe only after the map was published: transient-local durability replays it.
    assert fleet.wait_for_output('published /map', timeout_s=60.0), fleet.output()
    maps = probe.collect(OccupancyGrid, '/map', qos.MAP_QOS)
    assert probe.spin_until(lambda: maps, timeout_s=30.0), fleet.output()
    grid = maps[0]
    assert grid.header.frame_id == 'map'
    assert grid.info.resolution == np.float32(0.1)
    expected = load_map(bundled_path(MAP)).to_occupancy_grid(resolution_m=0.1)
    assert (grid.info.height, grid.info.width) == expected.data.shape
    cells = np.asarray(grid.data, dtype=np.int8).reshape(expected.data.shape)
    assert np.array_equal(cells, expected.data)
    assert 0 < np.count_nonzero(cells == 100) < cells.size
    assert fleet.alive()
    # SIGINT shuts rclpy down and the process exits cleanly.
    assert fleet.stop() == 0


def test_diagnostics_report_stale_robots_without_ledger(spawn, probe):
    fleet = spawn(node_command('fleet', '-p', "robot_names:=['robot_0', 'robot_1']",
                               '-p', "ledger.addresses:=['127.0.0.1:1']",
                               '-p', 'diagnostics.rate_hz:=5.0'), name='fleet')
    arrays = probe.collect(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS_QOS)
    assert probe.spin_until(lambda: arrays, timeout_s=60.0), fleet.output()
    names = [status.name for status in arrays[-1].status]
    assert names == [LEDGER_STATUS_NAME, 'mapl_robotics/robot_0', 'mapl_robotics/robot_1']
    ledger = find_status(arrays[-1], LEDGER_STATUS_NAME)
    assert ledger.level == DiagnosticStatus.ERROR
    assert 'no ledger leader' in ledger.message
    assert find_status(arrays[-1], 'mapl_robotics/robot_0').level == DiagnosticStatus.STALE
