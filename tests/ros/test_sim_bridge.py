"""The simulator on ROS 2: odometry, tf frames and /clock out, goals in (``mapl sim --ros``),
and the world-only bridge that executes plans published by agent nodes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rosgraph_msgs.msg import Clock

from mapl_robotics.geometry import Trajectory
from mapl_robotics.ros import qos
from mapl_robotics.ros.conversions import quaternion_to_yaw, trajectory_to_path
from mapl_robotics.ros.sim_bridge import RobotState, odometry_message, robot_transforms
from mapl_robotics.ros.time_conversion import FleetTimeBase, stamp_to_ns
from ros_test_support import node_command

REPO_ROOT = Path(__file__).resolve().parents[2]
OPEN_ROOM = REPO_ROOT / 'sim' / 'scenarios' / 'maps' / 'open_room.yaml'
STAMP_NS = 1553575413247045598


def test_transforms_chain_map_odom_base_link():
    state = RobotState(name='robot_0', x_m=1.0, y_m=2.0, yaw_rad=0.5, speed_mps=0.3)
    to_odom, to_base = robot_transforms(state, stamp_ns=STAMP_NS)
    assert (to_odom.header.frame_id, to_odom.child_frame_id) == ('map', 'robot_0/odom')
    assert (to_odom.transform.translation.x, to_odom.transform.rotation.w) == (0.0, 1.0)
    assert (to_base.header.frame_id, to_base.child_frame_id) == ('robot_0/odom',
                                                                 'robot_0/base_link')
    assert (to_base.transform.translation.x, to_base.transform.translation.y) == (1.0, 2.0)
    assert math.isclose(quaternion_to_yaw(to_base.transform.rotation), 0.5)
    assert stamp_to_ns(to_base.header.stamp) == STAMP_NS
    odometry = odometry_message(state, stamp_ns=STAMP_NS)
    assert (odometry.header.frame_id, odometry.child_frame_id) == ('robot_0/odom',
                                                                   'robot_0/base_link')
    assert odometry.twist.twist.linear.x == 0.3
    assert stamp_to_ns(odometry.header.stamp) == STAMP_NS


def one_robot_scenario(path: Path) -> Path:
    spec = {
        'name': 'ros_room',
        'roboticSystem': {
            'coordination': {'protocol': 'consensus_based', 'synchronization': 'time_bounded'},
            'pathPlanning': {'algorithm': 'distributed_rrt',
                             'constraints': {'collision_avoidance': True,
                                             'dynamic_obstacles': True}},
            'communication': {'mesh_network': True, 'latency_bound': '100ms',
                              'reliability': 'guaranteed_delivery'}},
        'map': {'path': str(OPEN_ROOM)},
        'robots': [{'id': 'rover', 'start': [2.0, 4.0, 0.0], 'goal': [2.0, 4.0],
                    'radius_m': 0.3, 'max_speed_mps': 1.0, 'max_accel_mps2': 1.0,
                    'drive': 'differential', 'max_yaw_rate_radps': 2.0}],
        'scenario': {'seed': 1, 'time_limit_s': '300 s'},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def latest_xy(odometry: list) -> tuple[float, float]:
    position = odometry[-1].pose.pose.position
    return position.x, position.y


def test_mapl_sim_ros_takes_goals_and_publishes_odometry(spawn, probe, tmp_path):
    scenario = one_robot_scenario(tmp_path / 'room.yaml')
    sim = spawn([sys.executable, '-c',
                 'import sys; from mapl_robotics.cli import main; sys.exit(main())',
                 'sim', '--ros', '--in-process', '--scenario', str(scenario)], name='sim')
    odometry = probe.collect(Odometry, '/rover/odom', qos.ODOM_QOS)
    clocks = probe.collect(Clock, '/clock', qos.CLOCK_QOS)
    assert probe.spin_until(lambda: odometry and len(clocks) > 3, timeout_s=90.0), sim.output()
    assert odometry[-1].header.frame_id == 'rover/odom'
    assert odometry[-1].child_frame_id == 'rover/base_link'
    assert math.dist(latest_xy(odometry), (2.0, 4.0)) < 0.05
    clock_ns = [stamp_to_ns(message.clock) for message in clocks]
    assert all(later > earlier for earlier, later in zip(clock_ns, clock_ns[1:]))
    publisher = probe.node.create_publisher(PoseStamped, '/rover/goal_pose', qos.GOAL_QOS)
    assert probe.wait_for_subscribers(publisher, timeout_s=30.0)
    bad = PoseStamped()
    bad.header.frame_id = 'map'
    bad.pose.position.x = 4.0  # inside the pillar at (4.0, 7.2)
    bad.pose.position.y = 7.2
    bad.pose.orientation.w = 1.0
    publisher.publish(bad)
    assert probe.spin_until(lambda: 'rejected goal_pose for rover' in sim.output(),
                            timeout_s=20.0), sim.output()
    goal = PoseStamped()
    goal.header.frame_id = 'map'
    goal.pose.position.x, goal.pose.position.y = 5.0, 4.0
    goal.pose.orientation.w = 1.0
    publisher.publish(goal)
    # The simulated robot drives there and its odometry shows it.
    assert probe.spin_until(lambda: math.dist(latest_xy(odometry), (5.0, 4.0)) < 0.2,
                            timeout_s=60.0), sim.output()
    assert sim.stop() == 0, sim.output()


def test_world_bridge_executes_published_plans(spawn, probe):
    bridge = spawn([*node_command('sim_bridge'), '--map', str(OPEN_ROOM),
                    '--robots', 'rover={x: 2.0, y: 4.0, yaw: 0.0}'], name='sim_bridge')
    odometry = probe.collect(Odometry, '/rover/odom', qos.ODOM_QOS)
    clocks = probe.collect(Clock, '/clock', qos.CLOCK_QOS)
    assert probe.spin_until(lambda: odometry and clocks, timeout_s=60.0), bridge.output()
    # A committed plan as an agent node publishes it: poses stamped in simulation time.
    now_s = FleetTimeBase(epoch_ns=0).to_fleet_s(stamp_to_ns(clocks[-1].clock))
    plan = Trajectory.from_samples([(now_s + 1.0, 2.0, 4.0, 0.0), (now_s + 5.0, 4.0, 4.0, 0.0)])
    publisher = probe.node.create_publisher(PathMsg, '/rover/plan', qos.PLAN_QOS)
    publisher.publish(trajectory_to_path(plan, time_base=FleetTimeBase(epoch_ns=0),
                                         stamp_ns=stamp_to_ns(clocks[-1].clock)))
    assert probe.spin_until(lambda: math.dist(latest_xy(odometry), (4.0, 4.0)) < 0.1,
                            timeout_s=60.0), bridge.output()
    assert bridge.stop() == 0, bridge.output()
