"""The node set computed from launch arguments, and the launch file that uses it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from mapl_robotics.errors import LaunchArgumentError, MapFileNotFoundError
from mapl_robotics.geometry.maps import load_map
from mapl_robotics.ros.launch_description import (RobotStart, fleet_node_descriptions,
                                                  parse_robots)
from mapl_robotics.runtime import python_module_command

REPO_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE = REPO_ROOT / 'maps' / 'ros' / 'warehouse.yaml'


def agents(descriptions):
    return [d for d in descriptions if d.executable == 'agent']


def parameters(description) -> dict:
    merged = {}
    for entry in description.parameters:
        merged.update(entry)
    return merged


def test_count_gives_namespaced_agents_and_fleet_node():
    descriptions = fleet_node_descriptions(robots=3, map_path=WAREHOUSE, seed=4,
                                           fleet_epoch_ns=0)
    assert [(d.executable, d.namespace, d.name) for d in descriptions] == [
        ('agent', 'robot_0', 'agent'), ('agent', 'robot_1', 'agent'),
        ('agent', 'robot_2', 'agent'), ('fleet', '', 'fleet')]
    assert all(d.package == 'mapl_robotics' for d in descriptions)
    assert [d.fully_qualified_name for d in descriptions] == [
        '/robot_0/agent', '/robot_1/agent', '/robot_2/agent', '/fleet']
    world = load_map(WAREHOUSE)
    starts = []
    for index, description in enumerate(agents(descriptions)):
        values = parameters(description)
        assert values['robot_name'] == f'robot_{index}'
        assert values['ledger.index'] == index
        assert values['planner.seed'] == 4 + index
        assert values['robot_names'] == ['robot_0', 'robot_1', 'robot_2']
        assert len(values['ledger.addresses']) == 3
        assert values['map_yaml'] == str(WAREHOUSE.resolve())
        assert values['controller.enabled'] is False
        starts.append((values['start.x_m'], values['start.y_m']))
    # Chosen start poses are free for the default radius and spread apart.
    assert all(world.checker(0.2).point_free(start) for start in starts)
    for i in range(3):
        for j in range(i + 1, 3):
            assert math.dist(starts[i], starts[j]) >= 0.4
    fleet = parameters(descriptions[-1])
    assert fleet['robot_names'] == ['robot_0', 'robot_1', 'robot_2']
    assert fleet['fleet_epoch_ns'] == 0


def test_count_is_deterministic_per_seed():
    first = fleet_node_descriptions(robots='2', map_path=WAREHOUSE, seed=1, fleet_epoch_ns=0)
    second = fleet_node_descriptions(robots='2', map_path=WAREHOUSE, seed=1, fleet_epoch_ns=0)
    assert first == second


def test_named_list_with_poses():
    descriptions = fleet_node_descriptions(
        robots='alpha={x: 1.0, y: -3.0, yaw: 1.57}; beta={x: 3.0, y: 4.5}',
        map_path=WAREHOUSE, use_sim_time=True, log_level='debug', use_respawn=True)
    alpha, beta = agents(descriptions)
    assert (alpha.namespace, beta.namespace) == ('alpha', 'beta')
    assert (parameters(alpha)['start.x_m'], parameters(alpha)['start.y_m'],
            parameters(alpha)['start.yaw_rad']) == (1.0, -3.0, 1.57)
    assert parameters(beta)['start.yaw_rad'] == 0.0
    assert all(d.respawn and d.respawn_delay_s == 2.0 for d in descriptions)
    assert all(d.log_level == 'debug' for d in descriptions)
    assert parameters(alpha)['use_sim_time'] is True
    # With simulation time the fleet epoch is the simulator's zero.
    assert parameters(alpha)['fleet_epoch_ns'] == 0


def test_invalid_starts_rejected_before_launch():
    robots = ('alpha={x: 1.0, y: -2.0}; beta={x: 100.0, y: 0.0}; gamma={x: 3.0, y: 4.5}; '
              'delta={x: 3.05, y: 4.5}')
    with pytest.raises(LaunchArgumentError) as raised:
        fleet_node_descriptions(robots=robots, map_path=WAREHOUSE)
    message = str(raised.value)
    assert 'start of alpha (1.000, -2.000) m is not free for a robot of radius 0.2 m' in message
    assert "start of beta (100.000, 0.000) m is outside map 'warehouse'" in message
    assert 'starts of gamma and delta are 0.050 m apart' in message
    assert "leave a robot's pose out" in message


def test_sim_adds_world_bridge_on_sim_time():
    descriptions = fleet_node_descriptions(robots=['a', 'b'], map_path=WAREHOUSE, sim=True)
    bridge = descriptions[-1]
    assert (bridge.executable, bridge.name, bridge.is_ros_node) == ('sim_bridge', 'sim_bridge',
                                                                    True)
    assert all(parameters(d)['use_sim_time'] for d in agents(descriptions))
    # The simulator executes committed plans itself; agent controllers stay off.
    assert not any(parameters(d)['controller.enabled'] for d in agents(descriptions))
    assert all(parameters(d)['fleet_epoch_ns'] == 0 for d in agents(descriptions))
    robots_argument = bridge.arguments[bridge.arguments.index('--robots') + 1]
    parsed = parse_robots(robots_argument)
    assert [start.name for start in parsed] == ['a', 'b']
    assert all(start.has_pose for start in parsed)
    command = bridge.command(python='python3')
    assert command[:4] == ['python3', '-m', 'mapl_robotics.ros.entry_points', 'sim_bridge']
    assert command.index('--robots') < command.index('--ros-args')


def test_command_line_carries_ros_arguments():
    description = agents(fleet_node_descriptions(robots='alpha={x: 1.0, y: -3.0}',
                                                 map_path=WAREHOUSE, fleet_epoch_ns=0))[0]
    command = description.command(python='python3')
    assert command[:4] == ['python3', '-m', 'mapl_robotics.ros.entry_points', 'agent']
    assert command[command.index('--ros-args') + 1:][:4] == ['-r', '__node:=agent', '-r',
                                                             '__ns:=/alpha']
    assert 'robot_name:=alpha' in command
    assert 'start.x_m:=1.0' in command
    assert command[-2:] == ['--log-level', 'info']


def test_default_command_uses_this_package():
    description = agents(fleet_node_descriptions(robots=1, map_path=WAREHOUSE,
                                                 fleet_epoch_ns=0))[0]
    command = description.command()
    assert command[:4] == python_module_command('mapl_robotics.ros.entry_points', 'agent')
    assert command.index('--ros-args') > 3


def test_params_file_is_applied_last(tmp_path):
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': {'radius_m': 0.3}}}))
    description = agents(fleet_node_descriptions(robots=1, map_path=WAREHOUSE,
                                                 params_file=params_file, fleet_epoch_ns=0))[0]
    assert description.parameters[-1] == str(params_file.resolve())
    command = description.command()
    assert command[command.index('--params-file') + 1] == str(params_file.resolve())


@pytest.mark.parametrize('robots, reason', [
    (0, 'from 1 to'),
    ('-2', 'from 1 to'),
    ('2robots', 'not a valid ROS namespace'),
    ('a={x: 1.0}', 'needs both x and y'),
    ('a={x: one, y: 2}', 'not a number'),
    ('a={x: 1, y: 2, z: 0, speed: 3}', 'unknown keys'),
    ('a={x: 1, y: 2}; a={x: 3, y: 4}', 'appears twice'),
    (['a', 'a'], 'must be unique'),
    ('a={x: [1, y: 2}', 'not valid YAML'),
    (True, 'count or a list'),
])
def test_bad_robots_argument(robots, reason):
    with pytest.raises(LaunchArgumentError, match=reason):
        fleet_node_descriptions(robots=robots, map_path=WAREHOUSE, fleet_epoch_ns=0)


def test_bad_map_and_log_level():
    with pytest.raises(LaunchArgumentError, match='log_level'):
        fleet_node_descriptions(robots=1, map_path=WAREHOUSE, log_level='loud')
    with pytest.raises(MapFileNotFoundError, match='no_such_map.yaml'):
        fleet_node_descriptions(robots=1, map_path='no_such_map.yaml')


def test_parse_robots_forms():
    assert parse_robots('3') == [RobotStart('robot_0'), RobotStart('robot_1'),
                                 RobotStart('robot_2')]
    assert parse_robots('a, b') == [RobotStart('a'), RobotStart('b')]
    assert parse_robots({'a': {'x': 1, 'y': 2, 'yaw': 0.5}}) == [RobotStart('a', 1.0, 2.0, 0.5)]


def test_launch_file_builds_one_node_per_entry():
    # launch and launch_ros are not on PyPI; this part runs only on a ROS 2 installation.
    pytest.importorskip('launch_ros', reason='launch_ros comes with a ROS 2 installation, '
                                             'not from PyPI')
    import importlib.util

    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location(
        'fleet_launch', REPO_ROOT / 'launch' / 'fleet.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert declared == ['robots', 'map', 'spec', 'params_file', 'use_sim_time', 'sim',
                        'log_level', 'use_respawn', 'seed']
    context = LaunchContext()
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
    context.launch_configurations.update({'robots': '2', 'map': str(WAREHOUSE)})
    opaque = [e for e in description.entities if isinstance(e, OpaqueFunction)][0]
    nodes = opaque.execute(context)
    assert len(nodes) == 3
    assert all(isinstance(node, Node) for node in nodes)


def test_robot_poses_accept_exponent_numbers():
    starts = parse_robots('robot_0={x: 1e0, y: 5e-1}; robot_1={x: 2.0, y: -1e1}')
    assert [start.name for start in starts] == ['robot_0', 'robot_1']
    assert starts[0].x_m == 1.0
    assert starts[0].y_m == 0.5
    assert starts[1].y_m == -10.0
