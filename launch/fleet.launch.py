"""Start a mapl_robotics fleet: one agent node per robot in its namespace, the fleet node and,
with ``sim:=true``, the PyBullet simulator bridge.

    ros2 launch mapl_robotics fleet.launch.py robots:=3 map:=maps/ros/warehouse.yaml
    ros2 launch mapl_robotics fleet.launch.py \
        robots:="alpha={x: -1.0, y: -0.5, yaw: 0.0}; beta={x: 1.0, y: 0.5, yaw: 3.14}"

The node set comes from ``mapl_robotics.ros.launch_description.fleet_node_descriptions``, the
same function that ``mapl fleet`` uses, so both start the same processes.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mapl_robotics.ros.launch_description import DEFAULT_MAP, fleet_node_descriptions

_TRUE = ('true', '1', 'yes', 'on')


def _as_bool(text: str) -> bool:
    return text.strip().lower() in _TRUE


def _launch_setup(context, *args, **kwargs):
    """Resolve the launch arguments and return one launch_ros Node (or process) per entry."""
    value = {name: LaunchConfiguration(name).perform(context)
             for name in ('robots', 'map', 'params_file', 'spec', 'use_sim_time', 'sim',
                          'log_level', 'use_respawn', 'seed')}
    descriptions = fleet_node_descriptions(
        robots=value['robots'],
        map_path=value['map'] or None,
        spec_path=value['spec'] or None,
        params_file=value['params_file'] or None,
        use_sim_time=_as_bool(value['use_sim_time']),
        sim=_as_bool(value['sim']),
        log_level=value['log_level'],
        use_respawn=_as_bool(value['use_respawn']),
        seed=int(value['seed']),
    )
    actions = []
    for description in descriptions:
        common = dict(
            package=description.package,
            executable=description.executable,
            output='screen',
            respawn=description.respawn,
            respawn_delay=description.respawn_delay_s,
            arguments=list(description.arguments),
        )
        if description.is_ros_node:
            actions.append(Node(
                name=description.name,
                namespace=description.namespace,
                parameters=list(description.parameters),
                remappings=list(description.remappings),
                ros_arguments=['--log-level', description.log_level],
                **common))
        else:
            # Ledger node processes (``mapl ledger node``) are not ROS nodes, so they take no
            # node name, namespace or ROS arguments.
            actions.append(Node(**common))
    return actions


def generate_launch_description():
    return LaunchDescription([
        SetEnvironmentVariable('RCUTILS_LOGGING_BUFFERED_STREAM', '1'),
        DeclareLaunchArgument(
            'robots', default_value='2',
            description='Number of robots (robot_0, robot_1, ...), or names with start poses: '
                        '"alpha={x: 0.0, y: 1.0, yaw: 0.0}; beta={x: 2.0, y: 1.0}".'),
        DeclareLaunchArgument(
            'map', default_value=DEFAULT_MAP,
            description='Map file (map_server YAML); relative names are looked up among the '
                        'bundled maps.'),
        DeclareLaunchArgument(
            'spec', default_value='',
            description='MAPL fleet spec (JSON or YAML): robots, limits, planner, consensus, '
                        'mesh and moving obstacles. Empty: defaults.'),
        DeclareLaunchArgument(
            'params_file', default_value='',
            description='ROS 2 parameters file applied to every node after the computed '
                        'values. Empty: none.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use simulation (/clock) time if true.'),
        DeclareLaunchArgument(
            'sim', default_value='false',
            description='Start the PyBullet simulator as the robots\' world (publishes odom and '
                        'tf, enables cmd_vel).'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level: debug, info, warn, error or fatal.'),
        DeclareLaunchArgument(
            'use_respawn', default_value='false',
            description='Restart a node that exits, after 2 s.'),
        DeclareLaunchArgument(
            'seed', default_value='0',
            description='Seed of the planners (robot i uses seed + i) and of start poses.'),
        OpaqueFunction(function=_launch_setup),
    ])
