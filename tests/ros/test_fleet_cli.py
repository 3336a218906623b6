"""``mapl fleet`` with 3 robots on a shipped map: goals in, committed plans out, over DDS,
and a clean stop on SIGINT."""

from __future__ import annotations

import itertools
import re
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path

from mapl_robotics.coordination.client import LedgerClient
from mapl_robotics.coordination.settings import client_address_for
from mapl_robotics.geometry import find_conflict
from mapl_robotics.geometry.maps import load_map
from mapl_robotics.resources import bundled_path
from mapl_robotics.ros import qos
from mapl_robotics.ros.conversions import path_to_trajectory
from mapl_robotics.ros.launch_description import fleet_node_descriptions
from mapl_robotics.ros.time_conversion import FleetTimeBase, stamp_to_ns

MAP = 'maps/ros/turtlebot3_world.yaml'
RADIUS_M = 0.2
CLEARANCE_M = 0.1
SEED = 3


def free_port_block(count: int) -> int:
    """Return a base port p with p..p+count-1 and their +1000 client ports free."""
    rng = np.random.default_rng(os.getpid())
    for _ in range(100):
        base = int(rng.integers(20000, 30000))
        ports = [base + i for i in range(count)] + [base + 1000 + i for i in range(count)]
        sockets = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(('127.0.0.1', port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError('no free block of ledger ports found')


def choose_goals(starts, *, rng: np.random.Generator):
    """Pick one free goal per robot, at least 1 m from every start and from each other."""
    world = load_map(bundled_path(MAP))
    checker = world.checker(RADIUS_M)
    x_min, y_min, x_max, y_max = world.bounds_m
    goals: list[tuple[float, float]] = []
    for _ in range(10000):
        if len(goals) == len(starts):
            break
        point = (float(rng.uniform(x_min, x_max)), float(rng.uniform(y_min, y_max)))
        if checker.point_free(point) and all(math.dist(point, other) >= 1.0
                                             for other in [*starts, *goals]):
            goals.append(point)
    assert len(goals) == len(starts)
    return goals


def goal_message(xy) -> PoseStamped:
    message = PoseStamped()
    message.header.frame_id = 'map'
    message.pose.position.x, message.pose.position.y = xy
    message.pose.orientation.w = 1.0
    return message


def test_mapl_fleet_three_robots(spawn, probe, tmp_path):
    names = ['robot_0', 'robot_1', 'robot_2']
    base_port = free_port_block(3)
    # The same function mapl fleet calls gives the start poses it will use.
    descriptions = fleet_node_descriptions(robots=3, map_path=MAP, seed=SEED, fleet_epoch_ns=0,
                                           ledger_base_port=base_port)
    starts = []
    for description in descriptions[:3]:
        values = description.parameters[0]
        starts.append((values['start.x_m'], values['start.y_m']))
    goals = choose_goals(starts, rng=np.random.default_rng(SEED))
    fleet = spawn([sys.executable, '-c',
                   'import sys; from mapl_robotics.cli import main; sys.exit(main())',
                   'fleet', '--robots', '3', '--map', MAP, '--seed', str(SEED),
                   '--ledger-base-port', str(base_port), '--journal-root', str(tmp_path / 'j')],
                  name='mapl-fleet')
    plans = {name: probe.collect(Path, f'/{name}/plan', qos.PLAN_QOS) for name in names}
    maps = probe.collect(OccupancyGrid, '/map', qos.MAP_QOS)
    assert probe.spin_until(lambda: all(plans.values()) and maps, timeout_s=120.0), \
        fleet.output()
    for name, start in zip(names, starts):
        first = plans[name][0].poses[0].pose.position
        assert math.dist((first.x, first.y), start) < 1e-6
    publishers = {}
    for name, goal in zip(names, goals):
        publishers[name] = probe.node.create_publisher(PoseStamped, f'/{name}/goal_pose',
                                                       qos.GOAL_QOS)
        assert probe.wait_for_subscribers(publishers[name], timeout_s=30.0)
        publishers[name].publish(goal_message(goal))

    def at_goal(name, goal) -> bool:
        end = plans[name][-1].poses[-1].pose.position
        return math.dist((end.x, end.y), goal) < 0.05

    ledger = [f'127.0.0.1:{base_port + i}' for i in range(3)]
    committed = {}
    with LedgerClient([client_address_for(a) for a in ledger], timeout_s=2.0) as client:

        def published_is_committed() -> bool:
            if not all(at_goal(name, goal) for name, goal in zip(names, goals)):
                return False
            view = client.read(full=True)
            base = FleetTimeBase(epoch_ns=0)
            for name in names:
                published = plans[name][-1]
                ledger_plan = view.robots[name].trajectory
                if len(published.poses) != len(ledger_plan):
                    return False
                xy = np.array([(p.pose.position.x, p.pose.position.y) for p in published.poses])
                if not np.allclose(xy, ledger_plan.xy_m, atol=1e-9):
                    return False
                committed[name] = path_to_trajectory(published, time_base=base)
            return True

        assert probe.spin_until(published_is_committed, timeout_s=120.0), fleet.output()
    for name in names:
        stamps = [stamp_to_ns(p.header.stamp) for p in plans[name][-1].poses]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
    for first, second in itertools.combinations(names, 2):
        conflict = find_conflict(committed[first], RADIUS_M, committed[second], RADIUS_M,
                                 clearance_m=CLEARANCE_M - 1e-6)
        assert conflict is None, (first, second, conflict)

    # Ctrl-C stops every node, each exiting cleanly, and mapl fleet itself exits 0.
    os.killpg(fleet.process.pid, signal.SIGINT)
    fleet.process.wait(timeout=60)
    assert fleet.process.returncode == 0, fleet.output()
    log = fleet.output()
    assert 'stopped: /robot_0/agent (0), /robot_1/agent (0), /robot_2/agent (0), /fleet (0)' \
        in log, log


def test_mapl_fleet_sim_moves_robot_to_goal(spawn, probe, tmp_path):
    """With --sim, the simulator executes the plan the agent node commits, and odometry in
    simulation time shows the robot arriving."""
    base_port = free_port_block(2)
    fleet = spawn([sys.executable, '-c',
                   'import sys; from mapl_robotics.cli import main; sys.exit(main())',
                   'fleet', '--robots', 'robot_0={x: -2.0, y: -0.5}; robot_1={x: 2.0, y: 0.5}',
                   '--map', MAP, '--sim', '--ledger-base-port', str(base_port),
                   '--journal-root', str(tmp_path / 'j')], name='mapl-fleet')
    odometry = probe.collect(Odometry, '/robot_0/odom', qos.ODOM_QOS)
    plans = probe.collect(Path, '/robot_0/plan', qos.PLAN_QOS)
    assert probe.spin_until(lambda: odometry and plans, timeout_s=120.0), fleet.output()
    publisher = probe.node.create_publisher(PoseStamped, '/robot_0/goal_pose', qos.GOAL_QOS)
    assert probe.wait_for_subscribers(publisher, timeout_s=30.0)
    goal = (-1.5, 1.5)
    publisher.publish(goal_message(goal))

    def arrived() -> bool:
        position = odometry[-1].pose.pose.position
        return math.dist((position.x, position.y), goal) < 0.1

    assert probe.spin_until(arrived, timeout_s=60.0), fleet.output()
    # Odometry is stamped in simulation time, which started at zero with the simulator.
    assert odometry[-1].header.stamp.sec < 600
    os.killpg(fleet.process.pid, signal.SIGINT)
    fleet.process.wait(timeout=60)
    assert fleet.process.returncode == 0, fleet.output()
    assert '/sim_bridge (0)' in fleet.output()


def _running(pid: int) -> bool:
    """Return whether ``pid`` is a live process (not a zombie)."""
    try:
        with open(f'/proc/{pid}/stat') as stat_file:
            stat = stat_file.read()
    except OSError:
        return False
    return stat[stat.rindex(')') + 2] != 'Z'


def test_fleet_nodes_stop_when_supervisor_killed(spawn, tmp_path):
    """SIGKILL of mapl fleet: every node it started notices and stops on its own."""
    base_port = free_port_block(1)
    fleet = spawn([sys.executable, '-c',
                   'import sys; from mapl_robotics.cli import main; sys.exit(main())',
                   'fleet', '--robots', '1', '--map', MAP, '--ledger-base-port', str(base_port),
                   '--journal-root', str(tmp_path / 'j')], name='mapl-fleet')
    assert fleet.wait_for_output('started /fleet (pid', timeout_s=60.0), fleet.output()
    pids = [int(found) for found in re.findall(r'started \S+ \(pid (\d+)\)', fleet.output())]
    # The agent of robot_0 and the fleet node.
    assert len(pids) == 2, fleet.output()
    assert all(_running(pid) for pid in pids)
    fleet.process.send_signal(signal.SIGKILL)
    fleet.process.wait(timeout=30)
    deadline_s = time.monotonic() + 30.0
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline_s:
        time.sleep(0.2)
    assert [pid for pid in pids if _running(pid)] == []


def test_fleet_stops_when_node_fails(spawn, tmp_path):
    """An agent that cannot start (invalid parameter) stops the fleet with status 1."""
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n    radius_m: -1.0\n')
    base_port = free_port_block(1)
    fleet = spawn([sys.executable, '-c',
                   'import sys; from mapl_robotics.cli import main; sys.exit(main())',
                   'fleet', '--robots', '1', '--map', MAP, '--params-file', str(params),
                   '--ledger-base-port', str(base_port), '--journal-root', str(tmp_path / 'j')],
                  name='mapl-fleet')
    assert fleet.process.wait(timeout=120) == 1, fleet.output()
    log = fleet.output()
    assert '/robot_0/agent exited with an error and will not restart; stopping the fleet' in log
    assert 'stopped: /robot_0/agent (2), /fleet (0)' in log


def test_node_help_prints_usage():
    for kind in ('agent', 'fleet'):
        result = subprocess.run([sys.executable, '-m', 'mapl_robotics.ros.entry_points', kind,
                                 '--help'], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f'usage: mapl-{kind} [--ros-args')
        assert 'docs/ros2.md' in result.stdout
