"""Declaration of node parameters with descriptors, ranges and descriptions.

Each :class:`ParameterSpec` becomes one ``declare_parameter`` call with an
``rcl_interfaces/ParameterDescriptor``: the description shows in ``ros2 param describe``, and
numeric ranges are enforced by rclpy, which rejects an out-of-range value at start-up or on
``ros2 param set`` with a reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

__all__ = [
    'AGENT_PARAMETERS',
    'FLEET_PARAMETERS',
    'ParameterSpec',
    'declare_all',
    'read_all',
]


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: name, default, description, optional range or choices."""

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    kind: int | None = None

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=self.name, description=self.description,
                                         read_only=self.read_only)
        if self.kind is not None:
            descriptor.type = self.kind
        if self.choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(self.choices)
        if self.range is not None:
            low, high = self.range
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                         step=0)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
        return descriptor


_STRINGS = ParameterType.PARAMETER_STRING_ARRAY

AGENT_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('robot_name', '', 'Robot id; defaults to the node namespace without "/".',
                  read_only=True),
    ParameterSpec('robot_names', [''], 'Ids of every robot of the fleet (markers, status).',
                  read_only=True, kind=_STRINGS),
    ParameterSpec('map_yaml', '', 'Map file (map_server YAML, MovingAI .map or polygon YAML); '
                  'empty: the bundled TurtleBot3 world.', read_only=True),
    ParameterSpec('map_cell_size_m', 1.0, 'Cell edge of a MovingAI map in metres.',
                  range=(0.001, 100.0), read_only=True),
    ParameterSpec('spec_file', '', 'MAPL fleet spec; its moving obstacles and consensus '
                  'settings are used. Empty: none.', read_only=True),
    ParameterSpec('radius_m', 0.2, 'Radius of the disc that contains the footprint, metres.',
                  range=(0.01, 10.0), read_only=True),
    ParameterSpec('max_speed_mps', 0.5, 'Maximum linear speed, m/s.', range=(0.01, 20.0),
                  read_only=True),
    ParameterSpec('max_accel_mps2', 1.0, 'Maximum linear acceleration, m/s^2.',
                  range=(0.01, 50.0), read_only=True),
    ParameterSpec('max_yaw_rate_radps', 1.5, 'Maximum turn rate for differential drive, '
                  'rad/s.', range=(0.01, 50.0), read_only=True),
    ParameterSpec('drive', 'holonomic', 'Drive model.', choices=('holonomic', 'differential'),
                  read_only=True),
    ParameterSpec('start.x_m', 0.0, 'Start x in the map frame, metres.',
                  range=(-1.0e6, 1.0e6), read_only=True),
    ParameterSpec('start.y_m', 0.0, 'Start y in the map frame, metres.',
                  range=(-1.0e6, 1.0e6), read_only=True),
    ParameterSpec('start.yaw_rad', 0.0, 'Start heading, radians.', range=(-6.3, 6.3),
                  read_only=True),
    ParameterSpec('planner.algorithm', 'rrt_connect', 'Sampling planner.',
                  choices=('rrt', 'rrt_connect', 'rrt_star'), read_only=True),
    ParameterSpec('planner.step_size_m', 0.5, 'Tree extension step, metres.',
                  range=(0.01, 100.0), read_only=True),
    ParameterSpec('planner.goal_bias', 0.05, 'Probability of sampling the goal.',
                  range=(0.0, 1.0), read_only=True),
    ParameterSpec('planner.time_budget_s', 1.0, 'Planning time per attempt, seconds.',
                  range=(0.01, 3600.0), read_only=True),
    ParameterSpec('planner.clearance_m', 0.1, 'Extra gap kept to other robots, metres.',
                  range=(0.0, 10.0), read_only=True),
    ParameterSpec('planner.seed', 0, 'Seed of the planner random generator.',
                  range=(0, 2 ** 31 - 1), read_only=True),
    ParameterSpec('ledger.mode', 'replica_per_robot', 'Ledger deployment.',
                  choices=('replica_per_robot', 'cluster'), read_only=True),
    ParameterSpec('ledger.addresses', [''], 'host:port of every ledger replica.',
                  read_only=True, kind=_STRINGS),
    ParameterSpec('ledger.index', 0, 'Index of this robot\'s replica in ledger.addresses '
                  '(replica_per_robot mode).', range=(0, 1000), read_only=True),
    ParameterSpec('ledger.journal_dir', '', 'Folder of this robot\'s ledger journal and '
                  'signing key; empty: a temporary folder, removed at exit.', read_only=True),
    ParameterSpec('mesh.addresses', [''], 'host:port of every agent\'s mesh node.',
                  read_only=True, kind=_STRINGS),
    ParameterSpec('mesh.index', 0, 'Index of this agent in mesh.addresses.', range=(0, 1000),
                  read_only=True),
    ParameterSpec('mesh.latency_bound_ms', 100.0, 'End-to-end delivery deadline, ms.',
                  range=(1.0, 10000.0), read_only=True),
    ParameterSpec('fleet_epoch_ns', 0, 'ROS time at which fleet time is zero, ns; every '
                  'node of a fleet must use the same value. 0: the simulator clock\'s zero '
                  'with use_sim_time, else the last midnight UTC.', range=(0, 2 ** 62),
                  read_only=True),
    ParameterSpec('goal_frames', ['map'], 'Frames accepted on goal_pose.', kind=_STRINGS),
    ParameterSpec('odom_frames', ['map', 'odom'], 'Frames accepted on odom (the robot\'s '
                  'namespace is also accepted as a frame prefix).', kind=_STRINGS),
    ParameterSpec('controller.enabled', False, 'Publish cmd_vel that tracks the committed '
                  'plan.'),
    ParameterSpec('controller.rate_hz', 20.0, 'cmd_vel rate, Hz.', range=(1.0, 200.0),
                  read_only=True),
    ParameterSpec('controller.gain', 1.5, 'Position error gain, 1/s.', range=(0.0, 20.0)),
    ParameterSpec('odom_timeout_s', 0.5, 'Steady-clock time without odom after which '
                  'cmd_vel stops the robot.', range=(0.01, 60.0)),
    ParameterSpec('markers.rate_hz', 2.0, 'Marker refresh rate, Hz.', range=(0.1, 50.0),
                  read_only=True),
)

FLEET_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('map_yaml', '', 'Map published on /map; empty: the bundled TurtleBot3 '
                  'world.', read_only=True),
    ParameterSpec('map_cell_size_m', 1.0, 'Cell edge of a MovingAI map in metres.',
                  range=(0.001, 100.0), read_only=True),
    ParameterSpec('map_resolution_m', 0.05, 'Resolution of the published grid, metres.',
                  range=(0.005, 10.0), read_only=True),
    ParameterSpec('spec_file', '', 'MAPL fleet spec whose moving obstacles are published.',
                  read_only=True),
    ParameterSpec('robot_names', [''], 'Ids of the robots whose status is aggregated.',
                  read_only=True, kind=_STRINGS),
    ParameterSpec('ledger.addresses', [''], 'host:port of every ledger replica.',
                  read_only=True, kind=_STRINGS),
    ParameterSpec('fleet_epoch_ns', 0, 'ROS time at which fleet time is zero, ns; 0 as for '
                  'the agents.',
                  range=(0, 2 ** 62), read_only=True),
    ParameterSpec('diagnostics.rate_hz', 1.0, '/diagnostics rate, Hz.', range=(0.1, 50.0),
                  read_only=True),
    ParameterSpec('obstacles.rate_hz', 5.0, '/moving_obstacles rate, Hz.', range=(0.1, 50.0),
                  read_only=True),
    ParameterSpec('obstacles.horizon_s', 5.0, 'Prediction drawn per obstacle, seconds.',
                  range=(0.0, 600.0), read_only=True),
    ParameterSpec('status_timeout_s', 3.0, 'Steady-clock age after which a robot status is '
                  'reported stale.', range=(0.1, 600.0)),
)


def declare_all(node, specs: Iterable[ParameterSpec]) -> None:
    """Declare every parameter on ``node`` with its descriptor."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())


def read_all(node, specs: Sequence[ParameterSpec]) -> dict[str, Any]:
    """Return ``{name: value}`` for the declared parameters; string arrays lose empty
    strings, which stand for "no value" in the defaults."""
    values = {}
    for spec in specs:
        value = node.get_parameter(spec.name).value
        if spec.kind == _STRINGS:
            value = [item for item in (value or []) if item]
        if spec.choices and value not in spec.choices:
            from mapl_robotics.errors import RosBridgeError
            raise RosBridgeError(
                f'parameter {spec.name}={value!r} must be one of {list(spec.choices)}')
        values[spec.name] = value
    return values
