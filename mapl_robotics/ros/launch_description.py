"""The node set of a fleet, as plain data that both launchers consume.

:func:`fleet_node_descriptions` turns the launch arguments (robots, map, fleet spec,
``use_sim_time``, ``sim``, ``log_level``, ``use_respawn``) into a list of
:class:`NodeDescription`. ``launch/fleet.launch.py`` turns each entry into a
``launch_ros.actions.Node``; ``mapl fleet`` turns each into a subprocess command line with
:meth:`NodeDescription.command`. Keeping the logic here means both start the same processes,
and the logic is tested without ``launch_ros``.

The ``robots`` argument accepts, as in Nav2's multi-robot launch files:

- a count: ``3`` or ``"3"`` (robots ``robot_0`` ... ``robot_2``, start poses from the spec or
  spread over the free space of the map);
- names with start poses: ``"alpha={x: 1.0, y: 2.0, yaw: 0.0}; beta={x: 3.0, y: 2.0}"``;
- a list of names, or a mapping ``{name: {x:, y:, yaw:}}``, from Python.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from mapl_robotics.errors import LaunchArgumentError
from mapl_robotics.runtime import python_module_command
from mapl_robotics.yamlio import load_yaml

__all__ = [
    'DEFAULT_MAP',
    'LOG_LEVELS',
    'NodeDescription',
    'RobotStart',
    'fleet_node_descriptions',
    'parse_robots',
    'spread_starts',
]

PACKAGE = 'mapl_robotics'
DEFAULT_MAP = 'maps/ros/turtlebot3_world.yaml'
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
_NAME_PATTERN = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
_PLAIN_STRING = re.compile(r'[A-Za-z0-9_./-]+')
_RESPAWN_DELAY_S = 2.0
# Radius used to space start poses that neither the argument nor a spec gives; it matches the
# agent node's radius_m default.
_DEFAULT_RADIUS_M = 0.2
_MAX_ROBOTS = 1000
# Program of the installed ``mapl`` script, for command lines that must not rely on PATH.
_MAPL_MAIN = "import sys; from mapl_robotics.cli import main; sys.exit(main(prog_name='mapl'))"


@dataclasses.dataclass(frozen=True)
class RobotStart:
    """A robot name and its start pose in the map frame (``None`` until it is chosen)."""

    name: str
    x_m: float | None = None
    y_m: float | None = None
    yaw_rad: float = 0.0

    @property
    def has_pose(self) -> bool:
        return self.x_m is not None and self.y_m is not None


@dataclasses.dataclass(frozen=True)
class NodeDescription:
    """One process of the fleet, described the way ``launch_ros.actions.Node`` takes it.

    ``parameters`` is a tuple of mappings and parameter-file paths, applied in order.
    """

    package: str
    executable: str
    name: str
    namespace: str
    parameters: tuple[Any, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    respawn: bool = False
    respawn_delay_s: float = 0.0
    arguments: tuple[str, ...] = ()
    log_level: str = 'info'
    is_ros_node: bool = True

    @property
    def fully_qualified_name(self) -> str:
        namespace = self.namespace.strip('/')
        return f'/{namespace}/{self.name}' if namespace else f'/{self.name}'

    def ros_arguments(self) -> list[str]:
        """Return the ``--ros-args`` part of the command line that ``ros2 run`` would build."""
        if not self.is_ros_node:
            return []
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:=/{self.namespace.strip("/")}']
        for parameters in self.parameters:
            if isinstance(parameters, Mapping):
                for key, value in parameters.items():
                    args += ['-p', f'{key}:={_yaml_value(value)}']
            else:
                args += ['--params-file', str(parameters)]
        for source, target in self.remappings:
            args += ['-r', f'{source}:={target}']
        args += ['--log-level', self.log_level]
        return args

    def command(self, *, python: str | None = None) -> list[str]:
        """Return the command line that starts this process without the ``ros2`` command.

        Without ``python`` the process runs this interpreter and this copy of mapl_robotics,
        even when started from a folder that contains another one (a source checkout).
        """
        if python is None or python == sys.executable:
            if self.executable == 'mapl':
                program = python_module_command('mapl_robotics.cli')
            else:
                program = python_module_command('mapl_robotics.ros.entry_points',
                                                self.executable)
        elif self.executable == 'mapl':
            program = [python, '-c', _MAPL_MAIN]
        else:
            program = [python, '-m', 'mapl_robotics.ros.entry_points', self.executable]
        return program + list(self.arguments) + self.ros_arguments()


def _yaml_value(value: Any) -> str:
    """Format a parameter value for ``-p name:=value`` (YAML flow style, one line)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_yaml_value(v) for v in value) + ']'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # Quote everything but plain words that YAML reads back as the same string: rcl's
        # parser takes "host:port" inside a list for a mapping, and "3" or "true" for numbers
        # and booleans.
        plain = bool(_PLAIN_STRING.fullmatch(value)) and load_yaml(value) == value
        return value if plain else "'" + value.replace("'", "''") + "'"
    return str(value)


def _check_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise LaunchArgumentError(
            f'robot name {name!r} is not a valid ROS namespace; use letters, digits and '
            'underscores, starting with a letter (for example robot_0)')
    return name


def _pose_field(name: str, pose: Mapping[str, Any], key: str, default: float | None) -> Any:
    value = pose.get(key, default)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LaunchArgumentError(
            f'robot {name!r} start {key}={value!r} is not a number; write e.g. '
            f'"{name}={{x: 1.0, y: 2.0, yaw: 0.0}}"') from None
    if not math.isfinite(number):
        raise LaunchArgumentError(f'robot {name!r} start {key}={value!r} must be finite')
    return number


def _start_from_mapping(name: str, pose: Any) -> RobotStart:
    _check_name(name)
    if pose is None:
        return RobotStart(name=name)
    if not isinstance(pose, Mapping):
        raise LaunchArgumentError(
            f'robot {name!r} start pose {pose!r} must be a mapping such as {{x: 1.0, y: 2.0}}')
    unknown = sorted(set(pose) - {'x', 'y', 'z', 'roll', 'pitch', 'yaw'})
    if unknown:
        raise LaunchArgumentError(
            f'robot {name!r} start pose has unknown keys {unknown}; use x, y and yaw')
    x_m = _pose_field(name, pose, 'x', None)
    y_m = _pose_field(name, pose, 'y', None)
    if (x_m is None) != (y_m is None):
        raise LaunchArgumentError(f'robot {name!r} start pose needs both x and y, got {pose}')
    return RobotStart(name=name, x_m=x_m, y_m=y_m,
                      yaw_rad=_pose_field(name, pose, 'yaw', 0.0))


def parse_robots(robots: Any) -> list[RobotStart]:
    """Parse the ``robots`` launch argument into robot names with optional start poses.

    :raises LaunchArgumentError: for a count below 1, a malformed list, an invalid or
        duplicate name.
    """
    if isinstance(robots, bool):
        raise LaunchArgumentError(f'robots={robots!r} must be a count or a list of names')
    if isinstance(robots, str):
        text = robots.strip()
        if re.fullmatch(r'[+-]?\d+', text):
            robots = int(text)
        else:
            robots = _parse_robot_string(text)
    if isinstance(robots, int):
        if not 1 <= robots <= _MAX_ROBOTS:
            raise LaunchArgumentError(
                f'robots={robots} must be a count from 1 to {_MAX_ROBOTS}')
        return [RobotStart(name=f'robot_{index}') for index in range(robots)]
    if isinstance(robots, Mapping):
        starts = [_start_from_mapping(str(name), pose) for name, pose in robots.items()]
    elif isinstance(robots, Sequence):
        starts = []
        for entry in robots:
            if isinstance(entry, RobotStart):
                starts.append(entry)
            elif isinstance(entry, str):
                starts.append(RobotStart(name=_check_name(entry)))
            else:
                raise LaunchArgumentError(
                    f'robots entry {entry!r} must be a name or a RobotStart')
    else:
        raise LaunchArgumentError(
            f'robots={robots!r} must be a count, "name={{x: .., y: ..}}; ..." or a list')
    if not starts:
        raise LaunchArgumentError('robots names no robot; give a count or at least one name')
    names = [start.name for start in starts]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LaunchArgumentError(f'robot names must be unique, {duplicates} repeat')
    return starts


def _parse_robot_string(text: str) -> Mapping[str, Any] | list[str]:
    """Parse ``"a={x: 1, y: 2}; b={x: 3, y: 4}"`` or ``"a, b, c"``."""
    if '=' not in text:
        return [part.strip() for part in re.split(r'[;,\s]+', text) if part.strip()]
    robots: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(';')):
        if not part:
            continue
        name, _, pose_text = part.partition('=')
        name = name.strip()
        try:
            pose = load_yaml(pose_text) if pose_text.strip() else None
        except yaml.YAMLError as error:
            raise LaunchArgumentError(
                f'robot {name!r} start pose {pose_text.strip()!r} is not valid YAML '
                f'({error.__class__.__name__}); write e.g. {{x: 1.0, y: 2.0, yaw: 0.0}}'
            ) from None
        if name in robots:
            raise LaunchArgumentError(f'robot name {name!r} appears twice in robots')
        robots[name] = pose
    return robots


def spread_starts(world, names: Sequence[str], *, radius_m: float, clearance_m: float,
                  rng: np.random.Generator, max_samples: int = 20000) -> list[RobotStart]:
    """Choose a collision-free start pose for each name, at least ``2 * radius_m +
    clearance_m`` apart, by seeded rejection sampling over the map's free space.

    :raises LaunchArgumentError: when the map has no room for that many robots within
        ``max_samples`` samples.
    """
    checker = world.checker(radius_m)
    x_min, y_min, x_max, y_max = world.bounds_m
    spacing_m = 2.0 * radius_m + clearance_m
    chosen: list[tuple[float, float]] = []
    for _ in range(max_samples):
        if len(chosen) == len(names):
            break
        batch = np.column_stack([rng.uniform(x_min, x_max, 256), rng.uniform(y_min, y_max, 256)])
        for x_m, y_m in batch[checker.points_free(batch)]:
            if all(math.hypot(x_m - cx, y_m - cy) >= spacing_m for cx, cy in chosen):
                chosen.append((float(x_m), float(y_m)))
                if len(chosen) == len(names):
                    break
    if len(chosen) < len(names):
        raise LaunchArgumentError(
            f'found free start poses for only {len(chosen)} of {len(names)} robots of radius '
            f'{radius_m} m on map {world.name!r}; give start poses or fewer robots')
    return [RobotStart(name=name, x_m=x, y_m=y, yaw_rad=0.0)
            for name, (x, y) in zip(names, chosen)]


def _resolve_map(map_path: str | Path | None, spec) -> Path:
    from mapl_robotics.resources import bundled_path
    if map_path:
        path = Path(map_path)
        if not path.is_absolute() and not path.exists():
            path = bundled_path(str(map_path))
        if not path.exists():
            raise LaunchArgumentError(f'map {str(map_path)!r} does not exist; pass a '
                                      'map_server YAML such as maps/ros/warehouse.yaml')
        return path.resolve()
    if spec is not None and spec.map is not None:
        return Path(spec.map.path).resolve()
    return bundled_path(DEFAULT_MAP).resolve()


def fleet_node_descriptions(*, robots: Any = 1, map_path: str | Path | None = None,
                            spec_path: str | Path | None = None,
                            params_file: str | Path | None = None,
                            use_sim_time: bool = False, sim: bool = False,
                            log_level: str = 'info', use_respawn: bool = False,
                            seed: int = 0, fleet_epoch_ns: int | None = None,
                            ledger_base_port: int | None = None,
                            mesh_base_port: int | None = None,
                            journal_root: str | Path | None = None) -> list[NodeDescription]:
    """Compute the processes of a fleet from the launch arguments.

    :param robots: a count or names with start poses (see the module docstring). With a fleet
        spec and the default count, the spec's robots are used.
    :param map_path: a map file; defaults to the spec's map, else the bundled TurtleBot3 world.
    :param spec_path: a MAPL fleet spec (JSON or YAML): robots, limits, planner, consensus and
        mesh settings, moving obstacles.
    :param params_file: a ROS parameter YAML applied to every node after the computed values.
    :param sim: also start the PyBullet simulator (``sim_bridge``) as the robots' world: each
        robot executes its committed plan there, and the simulator publishes ``/clock``, odom
        and tf for every robot. Implies ``use_sim_time``.
    :param seed: seeds the planner of robot ``i`` with ``seed + i`` and the start-pose choice.
    :param fleet_epoch_ns: ROS time at which fleet time is zero, shared by every node. Default:
        0 with ``use_sim_time`` (the simulator clock starts at zero), else the current system
        time rounded down to a whole second.
    :param ledger_base_port: first Raft port of the ledger replicas (each also uses its port
        plus 1000 for clients); default: the spec's, else 47100.
    :param mesh_base_port: first mesh port; default: the spec's, else 47500.
    :param journal_root: folder of the ledger journals, one subfolder per replica; default: a
        folder in the system temporary directory named after the fleet epoch, so a respawned
        node finds its journal again.
    :returns: the dedicated ledger nodes (cluster mode of a spec), one entry per agent node,
        the fleet node, then the simulator if requested.
    :raises LaunchArgumentError: for an invalid argument, with the fix in its message.
    """
    if sim:
        use_sim_time = True
    if log_level not in LOG_LEVELS:
        raise LaunchArgumentError(f'log_level={log_level!r} must be one of {list(LOG_LEVELS)}')
    spec = _load_spec(spec_path) if spec_path else None
    map_file = _resolve_map(map_path, spec)
    if params_file is not None and not Path(params_file).is_file():
        raise LaunchArgumentError(f'params_file {str(params_file)!r} does not exist')
    spec_robots = {robot.id: robot for robot in spec.robots} if spec is not None else {}
    if spec_robots and str(robots).strip() in ('', '0', 'spec'):
        starts = [RobotStart(name=r.id, x_m=r.start[0], y_m=r.start[1], yaw_rad=r.start[2])
                  for r in spec.robots]
    else:
        starts = parse_robots(robots)
        starts = [_start_from_spec(start, spec_robots.get(start.name)) for start in starts]
    world = _load_world(map_file, spec)
    starts = _fill_missing_starts(starts, world, spec, seed=seed)
    _check_starts(starts, world, spec_robots, spec)
    names = [start.name for start in starts]
    if fleet_epoch_ns is None:
        fleet_epoch_ns = 0 if use_sim_time else (time.time_ns() // 10 ** 9) * 10 ** 9
    ledger_addresses, mesh_addresses = _ports(spec, names, ledger_base_port=ledger_base_port,
                                              mesh_base_port=mesh_base_port)
    journal_root = Path(journal_root) if journal_root else (
        Path(tempfile.gettempdir()) / f'mapl-ledger-{fleet_epoch_ns}')
    cluster = spec is not None and spec.consensus.mode == 'cluster'
    descriptions: list[NodeDescription] = []
    if cluster and not spec.consensus.addresses:
        descriptions += _ledger_cluster_nodes(spec, ledger_addresses, journal_root=journal_root,
                                              log_level=log_level, use_respawn=use_respawn)
    extra = (str(Path(params_file).resolve()),) if params_file else ()
    for index, start in enumerate(starts):
        parameters = _agent_parameters(start, spec_robots.get(start.name), spec,
                                       map_file=map_file, spec_path=spec_path,
                                       use_sim_time=use_sim_time, controller_enabled=False,
                                       seed=seed + index)
        parameters.update({
            'robot_names': names,
            'ledger.addresses': ledger_addresses,
            'ledger.index': index,
            'mesh.addresses': mesh_addresses,
            'mesh.index': index,
            'fleet_epoch_ns': int(fleet_epoch_ns),
        })
        # The replica's journal (replica per robot) and the robot's signing key, kept so that
        # a respawned agent rejoins with the same identity.
        parameters['ledger.journal_dir'] = str(journal_root / start.name)
        descriptions.append(NodeDescription(
            package=PACKAGE, executable='agent', name='agent', namespace=start.name,
            parameters=(parameters, *extra), respawn=use_respawn,
            respawn_delay_s=_RESPAWN_DELAY_S if use_respawn else 0.0, log_level=log_level))
    fleet_parameters = {'map_yaml': str(map_file), 'robot_names': names,
                        'ledger.addresses': ledger_addresses, 'use_sim_time': use_sim_time,
                        'fleet_epoch_ns': int(fleet_epoch_ns)}
    if spec_path:
        fleet_parameters['spec_file'] = str(Path(spec_path).resolve())
    descriptions.append(NodeDescription(
        package=PACKAGE, executable='fleet', name='fleet', namespace='',
        parameters=(fleet_parameters, *extra), respawn=use_respawn,
        respawn_delay_s=_RESPAWN_DELAY_S if use_respawn else 0.0, log_level=log_level))
    if sim:
        arguments = ['--map', str(map_file), '--robots',
                     '; '.join(f'{s.name}={{x: {s.x_m!r}, y: {s.y_m!r}, yaw: {s.yaw_rad!r}}}'
                               for s in starts)]
        if spec_path:
            arguments += ['--spec', str(Path(spec_path).resolve())]
        descriptions.append(NodeDescription(
            package=PACKAGE, executable='sim_bridge', name='sim_bridge', namespace='',
            arguments=tuple(arguments), log_level=log_level))
    return descriptions


def _load_spec(spec_path):
    from mapl_robotics.spec import load_spec
    path = Path(spec_path)
    if not path.is_file():
        raise LaunchArgumentError(f'fleet spec {str(spec_path)!r} does not exist')
    return load_spec(path)


def _start_from_spec(start: RobotStart, robot_spec) -> RobotStart:
    if start.has_pose or robot_spec is None:
        return start
    return RobotStart(name=start.name, x_m=robot_spec.start[0], y_m=robot_spec.start[1],
                      yaw_rad=robot_spec.start[2])


def _load_world(map_file: Path, spec):
    from mapl_robotics.geometry.maps import load_map
    cell_size_m = spec.map.cell_size_m if spec is not None and spec.map is not None else None
    return load_map(map_file, cell_size_m=cell_size_m)


def _check_starts(starts: list[RobotStart], world, spec_robots: Mapping, spec) -> None:
    """Raise LaunchArgumentError unless every start is free on the map and apart from the rest.

    An agent whose start is in a wall or off the map registers a hold there and never finds a
    plan, and of two overlapping robots the ledger admits only one, so both are rejected here,
    before any node starts.
    """
    clearance_m = spec.planner.clearance_m if spec is not None else 0.1
    radii_m = {start.name: (spec_robots[start.name].radius_m if start.name in spec_robots
                            else _DEFAULT_RADIUS_M) for start in starts}
    problems = []
    for start in starts:
        xy = (start.x_m, start.y_m)
        where = f'start of {start.name} ({start.x_m:.3f}, {start.y_m:.3f}) m'
        if not bool(world.contains_xy(xy)[0]):
            x_min, y_min, x_max, y_max = world.bounds_m
            problems.append(f'{where} is outside map {world.name!r} (x in [{x_min:g}, '
                            f'{x_max:g}], y in [{y_min:g}, {y_max:g}])')
        elif not world.checker(radii_m[start.name]).point_free(xy):
            problems.append(f'{where} is not free for a robot of radius '
                            f'{radii_m[start.name]:g} m: it overlaps an obstacle or the map '
                            'border')
    for index, first in enumerate(starts):
        for second in starts[index + 1:]:
            gap_m = math.dist((first.x_m, first.y_m), (second.x_m, second.y_m))
            needed_m = radii_m[first.name] + radii_m[second.name] + clearance_m
            if gap_m < needed_m:
                problems.append(f'starts of {first.name} and {second.name} are {gap_m:.3f} m '
                                f'apart, closer than the {needed_m:.3f} m their radii and the '
                                'clearance need')
    if problems:
        raise LaunchArgumentError('invalid robot starts: ' + '; '.join(problems) + '. Move '
                                  'them into free space, or leave a robot\'s pose out to have '
                                  'a free start chosen')


def _fill_missing_starts(starts: list[RobotStart], world, spec, *,
                         seed: int) -> list[RobotStart]:
    missing = [start.name for start in starts if not start.has_pose]
    if not missing:
        return starts
    clearance_m = spec.planner.clearance_m if spec is not None else 0.1
    spread = iter(spread_starts(world, missing, radius_m=_DEFAULT_RADIUS_M,
                                clearance_m=clearance_m + _DEFAULT_RADIUS_M,
                                rng=np.random.default_rng(seed)))
    return [start if start.has_pose else next(spread) for start in starts]


def _ports(spec, names: Sequence[str], *, ledger_base_port: int | None,
           mesh_base_port: int | None) -> tuple[list[str], list[str]]:
    """Return the ledger Raft addresses and the mesh addresses of the fleet.

    Without overrides, a fleet that is exactly the spec's robots uses the spec's addresses.
    Otherwise ports count up from the base ports (the arguments, else the spec's, else the
    defaults 47100 and 47500), one ledger replica per robot or ``node_count`` cluster nodes.
    """
    from mapl_robotics.spec import ConsensusSpec, MeshSpec
    consensus = spec.consensus if spec is not None else ConsensusSpec()
    mesh = spec.mesh if spec is not None else MeshSpec()
    overridden = ledger_base_port is not None or mesh_base_port is not None
    if spec is not None and not overridden and list(spec.robot_ids) == list(names):
        endpoints = spec.mesh_endpoints()
        return (list(spec.ledger_addresses()),
                [endpoint.removeprefix('tcp://') for endpoint in endpoints.values()])
    if consensus.addresses and ledger_base_port is None:
        ledger = list(consensus.addresses)
    else:
        ledger_count = len(names)
        if consensus.mode == 'cluster':
            ledger_count = consensus.node_count or 3
        base = consensus.base_port if ledger_base_port is None else ledger_base_port
        ledger = [f'{consensus.host}:{base + i}' for i in range(ledger_count)]
    base = mesh.base_port if mesh_base_port is None else mesh_base_port
    return ledger, [f'{mesh.host}:{base + i}' for i in range(len(names))]


def _ledger_cluster_nodes(spec, ledger_addresses: Sequence[str], *, journal_root: Path,
                          log_level: str, use_respawn: bool) -> list[NodeDescription]:
    """Return one ``mapl ledger node`` process per address of a dedicated ledger cluster."""
    consensus = spec.consensus
    nodes = []
    for index, address in enumerate(ledger_addresses):
        peers = [a for a in ledger_addresses if a != address]
        arguments = ('ledger', 'node', '--id', f'ledger_{index}', '--self', address,
                     '--peers', ','.join(peers),
                     '--journal-dir', str(journal_root / f'ledger_{index}'),
                     '--append-entries-period-s', repr(consensus.append_entries_period_s),
                     '--election-timeout-min-s', repr(consensus.election_timeout_min_s),
                     '--election-timeout-max-s', repr(consensus.election_timeout_max_s),
                     '--tick-s', repr(consensus.tick_s),
                     '--clearance-m', repr(spec.planner.clearance_m))
        nodes.append(NodeDescription(
            package=PACKAGE, executable='mapl', name=f'ledger_{index}', namespace='',
            arguments=arguments, respawn=use_respawn,
            respawn_delay_s=_RESPAWN_DELAY_S if use_respawn else 0.0, log_level=log_level,
            is_ros_node=False))
    return nodes


def _agent_parameters(start: RobotStart, robot_spec, spec, *, map_file: Path, spec_path,
                      use_sim_time: bool, controller_enabled: bool,
                      seed: int) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        'robot_name': start.name,
        'map_yaml': str(map_file),
        'start.x_m': float(start.x_m),
        'start.y_m': float(start.y_m),
        'start.yaw_rad': float(start.yaw_rad),
        'use_sim_time': bool(use_sim_time),
        'controller.enabled': bool(controller_enabled),
        'planner.seed': int(seed),
    }
    if spec_path:
        parameters['spec_file'] = str(Path(spec_path).resolve())
    if robot_spec is not None:
        parameters.update({
            'radius_m': float(robot_spec.radius_m),
            'max_speed_mps': float(robot_spec.max_speed_mps),
            'max_accel_mps2': float(robot_spec.max_accel_mps2),
            'max_yaw_rate_radps': float(robot_spec.max_yaw_rate_radps),
            'drive': robot_spec.drive,
        })
    if spec is not None:
        planner = spec.planner
        parameters.update({
            'planner.algorithm': planner.algorithm,
            'planner.step_size_m': float(planner.step_size_m),
            'planner.goal_bias': float(planner.goal_bias),
            'planner.time_budget_s': float(planner.time_budget_s),
            'planner.clearance_m': float(planner.clearance_m),
            'ledger.mode': spec.consensus.mode,
        })
    return parameters
