"""Agent nodes over DDS: goals in, committed plans out, bad messages rejected, lossless time.

Every node runs in its own process with a real ledger replica (pysyncobj over loopback TCP);
the test talks to it through a probe node in the same private DDS domain.
"""

from __future__ import annotations

import math
import os
import signal
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry, Path
from rosgraph_msgs.msg import Clock
from visualization_msgs.msg import MarkerArray

from mapl_robotics.coordination.agent import AgentSettings
from mapl_robotics.coordination.client import LedgerClient
from mapl_robotics.coordination.settings import client_address_for
from mapl_robotics.geometry import find_conflict
from mapl_robotics.geometry.maps import load_map
from mapl_robotics.resources import bundled_path
from mapl_robotics.ros import qos
from mapl_robotics.ros.conversions import path_to_trajectory
from mapl_robotics.ros.diagnostics import LEDGER_STATUS_NAME, find_status, status_values
from mapl_robotics.ros.time_conversion import FleetTimeBase, ns_to_stamp, stamp_to_ns
from ros_test_support import free_ledger_addresses, node_command

MAP = 'maps/ros/turtlebot3_world.yaml'
RADIUS_M = 0.2
CLEARANCE_M = 0.1
WORLD = load_map(bundled_path(MAP))


def agent_args(name: str, start_xy, *, ledger: list[str], index: int, extra=()) -> list[str]:
    return ['-r', f'__ns:=/{name}', '-p', f'robot_name:={name}', '-p', f'map_yaml:={MAP}',
            '-p', f'start.x_m:={float(start_xy[0])!r}', '-p', f'start.y_m:={float(start_xy[1])!r}',
            '-p', f'radius_m:={RADIUS_M!r}', '-p', f'planner.clearance_m:={CLEARANCE_M!r}',
            '-p', 'planner.seed:=7', '-p', f"ledger.addresses:={ledger!r}",
            '-p', f'ledger.index:={index}', *extra]


def goal_message(x_m: float, y_m: float, *, frame_id: str = 'map') -> PoseStamped:
    message = PoseStamped()
    message.header.frame_id = frame_id
    message.pose.position.x = x_m
    message.pose.position.y = y_m
    message.pose.orientation.w = 1.0
    return message


def ends_at(path: Path, xy) -> bool:
    end = path.poses[-1].pose.position
    return math.hypot(end.x - xy[0], end.y - xy[1]) < 0.05


def plan_reaching(plans: list, xy):
    matching = [path for path in plans if path.poses and ends_at(path, xy)]
    return matching[-1] if matching else None


def assert_plan_valid(path: Path, *, start_xy, goal_xy) -> None:
    assert path.header.frame_id == 'map'
    assert all(pose.header.frame_id == 'map' for pose in path.poses)
    stamps = [stamp_to_ns(pose.header.stamp) for pose in path.poses]
    assert len(stamps) >= 2
    assert all(later > earlier for earlier, later in zip(stamps, stamps[1:])), stamps
    xy = np.array([(p.pose.position.x, p.pose.position.y) for p in path.poses])
    assert np.linalg.norm(xy[0] - np.asarray(start_xy)) < 0.05
    assert np.linalg.norm(xy[-1] - np.asarray(goal_xy)) < 0.05
    # The robot's disc stays inside the map and clear of obstacles at every pose and along
    # every straight segment between poses.
    checker = WORLD.checker(RADIUS_M)
    assert checker.points_free(xy).all()
    assert checker.path_free(xy)


@pytest.fixture
def publish_goal(probe):
    publishers = {}

    def publish(robot: str, message: PoseStamped) -> None:
        if robot not in publishers:
            publishers[robot] = probe.node.create_publisher(PoseStamped, f'/{robot}/goal_pose',
                                                            qos.GOAL_QOS)
            assert probe.wait_for_subscribers(publishers[robot], timeout_s=60.0)
        publishers[robot].publish(message)

    return publish


def test_goal_yields_committed_plan(spawn, probe, publish_goal):
    start, goal = (-2.0, -0.5), (2.0, 0.5)
    ledger = free_ledger_addresses(1)
    agent = spawn(node_command('agent', *agent_args('robot_0', start, ledger=ledger, index=0)),
                  name='robot_0')
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)
    markers = probe.collect(MarkerArray, '/robot_0/markers', qos.MARKERS_QOS)
    # The registration commits a hold at the start before any goal.
    assert probe.spin_until(lambda: plans, timeout_s=60.0), agent.output()
    publish_goal('robot_0', goal_message(*goal))
    assert probe.spin_until(lambda: plan_reaching(plans, goal) is not None,
                            timeout_s=60.0), agent.output()
    assert_plan_valid(plan_reaching(plans, goal), start_xy=start, goal_xy=goal)
    assert 'committed at term' in agent.output()

    def plan_marker_reaches_goal() -> bool:
        for array in markers:
            for marker in array.markers:
                if marker.ns == 'plans' and marker.text == 'robot_0' and marker.points \
                        and math.dist((marker.points[-1].x, marker.points[-1].y), goal) < 0.05:
                    return True
        return False

    assert probe.spin_until(plan_marker_reaches_goal, timeout_s=30.0)
    footprints = [m for m in markers[-1].markers if m.ns == 'footprint']
    assert len(footprints) == 1
    assert footprints[0].scale.x == pytest.approx(2 * RADIUS_M)
    assert agent.stop() == 0, agent.output()


def test_out_of_range_parameter_rejected(spawn):
    ledger = free_ledger_addresses(1)
    agent = spawn(node_command('agent', *agent_args('robot_0', (-2.0, -0.5), ledger=ledger,
                                                    index=0), '-p', 'radius_m:=-1.0'),
                  name='robot_0')
    assert agent.process.wait(timeout=60) == 2, agent.output()
    assert 'radius_m out of range' in agent.output()
    assert 'Traceback' not in agent.output()


def test_cmd_vel_tracks_plan_and_stops_without_odom(spawn, probe, publish_goal):
    start, goal = (-2.0, -0.5), (2.0, 0.5)
    ledger = free_ledger_addresses(1)
    agent = spawn(node_command('agent', *agent_args(
        'robot_0', start, ledger=ledger, index=0,
        extra=['-p', 'controller.enabled:=true', '-p', 'odom_timeout_s:=0.5'])),
        name='robot_0')
    commands = probe.collect(Twist, '/robot_0/cmd_vel', qos.CMD_VEL_QOS)
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)
    odom_publisher = probe.node.create_publisher(Odometry, '/robot_0/odom', qos.ODOM_PUBLISHER_QOS)

    def send_odom() -> None:
        message = Odometry()
        message.header.frame_id = 'robot_0/odom'
        message.pose.pose.position.x, message.pose.pose.position.y = start
        message.pose.pose.orientation.w = 1.0
        odom_publisher.publish(message)

    def with_odom(condition):
        def check() -> bool:
            send_odom()
            return condition()
        return check

    assert probe.spin_until(with_odom(lambda: plans and commands), timeout_s=60.0), \
        agent.output()
    publish_goal('robot_0', goal_message(*goal))
    # While odometry is fresh, the controller drives toward the committed plan.
    assert probe.spin_until(with_odom(lambda: any(math.hypot(c.linear.x, c.linear.y) > 0.05
                                                  for c in commands)),
                            timeout_s=60.0), agent.output()
    # Without odometry for longer than odom_timeout_s, every command is zero.
    probe.spin_until(lambda: False, timeout_s=1.5)
    count = len(commands)
    assert probe.spin_until(lambda: len(commands) >= count + 5, timeout_s=10.0)
    assert all(c.linear.x == 0.0 and c.linear.y == 0.0 and c.angular.z == 0.0
               for c in commands[count:])
    assert 'commanding zero velocity' in agent.output()
    assert agent.stop() == 0


BAD_GOALS = [
    ('nan', goal_message(float('nan'), 0.5), 'position.x is nan'),
    ('frame', goal_message(2.0, 0.5, frame_id='odom'), "frame_id 'odom'"),
    ('obstacle', goal_message(0.0, 0.0), 'inside an obstacle'),
    ('outside', goal_message(50.0, 0.5), 'outside map'),
]


def test_bad_goals_rejected_node_keeps_running(spawn, probe, publish_goal):
    start, goal = (-2.0, -0.5), (-1.5, 1.5)
    ledger = free_ledger_addresses(1)
    agent = spawn(node_command('agent', *agent_args('robot_0', start, ledger=ledger, index=0)),
                  name='robot_0')
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)
    assert probe.spin_until(lambda: plans, timeout_s=60.0), agent.output()
    for _, message, reason in BAD_GOALS:
        publish_goal('robot_0', message)
        assert probe.spin_until(lambda reason=reason: reason in agent.output(),
                                timeout_s=20.0), agent.output()
        assert agent.alive()
    log = agent.output()
    assert log.count('rejected goal_pose for robot_0') == len(BAD_GOALS)
    assert plan_reaching(plans, (0.0, 0.0)) is None
    # The node still plans after every kind of bad goal.
    publish_goal('robot_0', goal_message(*goal))
    assert probe.spin_until(lambda: plan_reaching(plans, goal) is not None,
                            timeout_s=60.0), agent.output()
    assert_plan_valid(plan_reaching(plans, goal), start_xy=start, goal_xy=goal)
    assert agent.stop() == 0


def test_crossing_goals_commit_conflict_free_plans(spawn, probe, publish_goal):
    """Two robots swap sides across the same free area; the ledger commits plans that keep
    them apart, and /diagnostics reports the ledger leader."""
    starts = {'robot_0': (-2.0, -0.5), 'robot_1': (-2.0, 0.5)}
    goals = {'robot_0': (-2.0, 0.5), 'robot_1': (-2.0, -0.5)}
    ledger = free_ledger_addresses(2)
    names = list(starts)
    # One fleet time base for both agents, as the launch file sets it.
    base = FleetTimeBase.starting_at(time.time_ns())
    agents = {name: spawn(node_command('agent', *agent_args(
        name, starts[name], ledger=ledger, index=index,
        extra=['-p', f'robot_names:={names!r}', '-p', f'fleet_epoch_ns:={base.epoch_ns}'])),
        name=name)
        for index, name in enumerate(names)}
    fleet = spawn(node_command('fleet', '-p', f'map_yaml:={MAP}', '-p', f'robot_names:={names!r}',
                               '-p', f'ledger.addresses:={ledger!r}',
                               '-p', 'diagnostics.rate_hz:=4.0'), name='fleet')
    plans = {name: probe.collect(Path, f'/{name}/plan', qos.PLAN_QOS) for name in names}
    diagnostics = probe.collect(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS_QOS)
    assert probe.spin_until(lambda: all(plans.values()), timeout_s=90.0), \
        '\n'.join(a.output() for a in agents.values())
    for name in names:
        publish_goal(name, goal_message(*goals[name]))
    # Wait until each robot's latest published plan is its commit in the ledger (a quorum
    # read), so the pair compared below is one the ledger checked against each other.
    trajectories = {}
    with LedgerClient([client_address_for(a) for a in ledger], timeout_s=2.0) as client:

        def published_is_committed() -> bool:
            if not all(plans[n] and ends_at(plans[n][-1], goals[n]) for n in names):
                return False
            view = client.read(full=True)
            for name in names:
                published = path_to_trajectory(plans[name][-1], time_base=base)
                committed = view.robots[name].trajectory
                if not (len(published) == len(committed)
                        and np.allclose(published.xy_m, committed.xy_m, atol=1e-9)
                        and np.allclose(published.t_s, committed.t_s, atol=1e-6)):
                    return False
                trajectories[name] = published
            return True

        assert probe.spin_until(published_is_committed, timeout_s=90.0), \
            '\n'.join(a.output() for a in agents.values())
    for name in names:
        assert_plan_valid(plans[name][-1], start_xy=starts[name], goal_xy=goals[name])
    conflict = find_conflict(trajectories['robot_0'], RADIUS_M, trajectories['robot_1'],
                             RADIUS_M, clearance_m=CLEARANCE_M - 1e-6)
    assert conflict is None, (conflict, {n: t.to_list() for n, t in trajectories.items()},
                              [a.output() for a in agents.values()])

    def leader_reported() -> bool:
        for array in diagnostics:
            status = find_status(array, LEDGER_STATUS_NAME)
            if status is not None and status_values(status)['leader'] in ledger:
                return True
        return False

    assert probe.spin_until(leader_reported, timeout_s=30.0), fleet.output()

    def commits_reported() -> bool:
        # A robot's status reaches /diagnostics on its own period, so the first arrays may
        # still carry one from before its first proposal, whose commit times are NaN.
        if not diagnostics:
            return False
        for name in names:
            status = find_status(diagnostics[-1], f'mapl_robotics/{name}')
            if status is None or math.isnan(float(status_values(status)['commit_ms_p50'])):
                return False
        return True

    assert probe.spin_until(commits_reported, timeout_s=30.0), fleet.output()
    latest = diagnostics[-1]
    ledger_values = status_values(find_status(latest, LEDGER_STATUS_NAME))
    assert ledger_values['source'] == 'ledger'
    assert int(ledger_values['term']) >= 1
    for name in names:
        robot_values = status_values(find_status(latest, f'mapl_robotics/{name}'))
        assert robot_values['state'] in ('executing', 'holding', 'parked', 'planning')
        assert float(robot_values['commit_ms_p50']) > 0.0
    for process in [*agents.values(), fleet]:
        assert process.stop() == 0, process.output()


def test_stamps_survive_the_bridge_exactly(spawn, probe, publish_goal):
    """With simulation time frozen at 1553575413247045598 ns, the plan's header carries that
    stamp to the nanosecond, and so do the pose stamps that derive from it."""
    clock_ns = 1553575413247045598
    epoch_ns = 1553575413000000000
    start, goal = (-2.0, -0.5), (-1.5, 1.5)
    ledger = free_ledger_addresses(1)
    clock_publisher = probe.node.create_publisher(Clock, '/clock', qos.CLOCK_QOS)
    agent = spawn(node_command('agent', *agent_args(
        'robot_0', start, ledger=ledger, index=0,
        extra=['-p', 'use_sim_time:=true', '-p', f'fleet_epoch_ns:={epoch_ns}'])),
        name='robot_0')
    assert probe.wait_for_subscribers(clock_publisher, timeout_s=60.0), agent.output()
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)

    def clock_until(condition):
        # The clock stays at one instant; it is republished in case the first one was missed.
        def check() -> bool:
            clock_publisher.publish(Clock(clock=ns_to_stamp(clock_ns)))
            return condition()
        return check

    assert probe.spin_until(clock_until(lambda: plans), timeout_s=60.0), agent.output()
    publish_goal('robot_0', goal_message(*goal))
    assert probe.spin_until(clock_until(lambda: plan_reaching(plans, goal) is not None),
                            timeout_s=60.0), agent.output()
    path = plan_reaching(plans, goal)
    assert path.header.stamp == TimeMsg(sec=1553575413, nanosec=247045598)
    assert stamp_to_ns(path.header.stamp) == clock_ns
    # The committed trajectory starts with the hold committed at registration (at the clock
    # instant) and the move starts one commit lead later; both went through float fleet
    # seconds in the ledger and come back to the exact nanosecond.
    stamps = [stamp_to_ns(pose.header.stamp) for pose in path.poses]
    assert stamps[0] == clock_ns
    lead_ns = round(AgentSettings().commit_lead_s * 1e9)
    assert clock_ns + lead_ns in stamps
    assert agent.stop() == 0


def test_restarted_agent_keeps_identity(spawn, probe, publish_goal, tmp_path):
    """An agent killed with SIGKILL and started again with the same journal folder signs with
    the same key, recovers its committed plan from its replica's journal and plans again."""
    start, first_goal, second_goal = (-2.0, -0.5), (-1.5, 1.5), (2.0, 0.5)
    ledger = free_ledger_addresses(1)
    arguments = agent_args('robot_0', start, ledger=ledger, index=0,
                           extra=['-p', f'ledger.journal_dir:={tmp_path / "robot_0"}'])
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)
    agent = spawn(node_command('agent', *arguments), name='robot_0')
    assert probe.spin_until(lambda: plans, timeout_s=60.0), agent.output()
    publish_goal('robot_0', goal_message(*first_goal))
    assert probe.spin_until(lambda: plan_reaching(plans, first_goal) is not None,
                            timeout_s=60.0), agent.output()
    key = (tmp_path / 'robot_0' / 'robot_signing.key').read_bytes()
    assert len(key) == 32
    os.killpg(agent.process.pid, signal.SIGKILL)
    agent.process.wait(timeout=30)
    plans.clear()
    restarted = spawn(node_command('agent', *arguments), name='robot_0_restarted')
    # The first plan after the restart is the commit the ledger kept for the robot.
    assert probe.spin_until(lambda: plans, timeout_s=60.0), restarted.output()
    assert ends_at(plans[0], first_goal)
    # The start-up line names where the robot holds, not its start parameter.
    assert 'it holds at (-1.500, 1.500) until a goal arrives' in restarted.output()
    publish_goal('robot_0', goal_message(*second_goal))
    assert probe.spin_until(lambda: plan_reaching(plans, second_goal) is not None,
                            timeout_s=60.0), restarted.output()
    assert (tmp_path / 'robot_0' / 'robot_signing.key').read_bytes() == key
    assert 'not_authorized' not in restarted.output()
    assert restarted.stop() == 0
