"""Scenarios: a fleet spec (map, robots, moving obstacles, faults, seed) ready to simulate.

A scenario file is a fleet spec in YAML or JSON (see ``docs/spec.md``) whose ``scenario``
section sets the seed, time limit, step and faults. Bundled scenarios live in
``sim/scenarios/``; :func:`movingai_scenario` builds one from the first N start/goal pairs of a
MovingAI ``.scen`` file.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from mapl_robotics.errors import ScenarioError, SpecError
from mapl_robotics.geometry.obstacles import MovingObstacle
from mapl_robotics.geometry.world import World
from mapl_robotics.resources import bundled_path, share_dir
from mapl_robotics.sim.engine import DEFAULT_FOOTPRINT_MARGIN_M, RobotSetup
from mapl_robotics.spec import FleetSpec, load_spec

__all__ = ['Scenario', 'DEFAULT_SCENARIO', 'load_scenario_file', 'scenario_from_spec',
           'movingai_scenario', 'bundled_scenarios', 'scenario_path', 'ROBOTIC_SYSTEM']

DEFAULT_SCENARIO = 'warehouse_default'
"""Name of the bundled scenario that ``mapl sim`` runs without arguments."""

ROBOTIC_SYSTEM: dict[str, Any] = {
    'coordination': {'protocol': 'consensus_based', 'synchronization': 'time_bounded'},
    'pathPlanning': {'algorithm': 'distributed_rrt',
                     'constraints': {'collision_avoidance': True, 'dynamic_obstacles': True}},
    'communication': {'mesh_network': True, 'latency_bound': '100ms',
                      'reliability': 'guaranteed_delivery'},
}
"""The ``roboticSystem`` block that generated scenarios use."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A validated fleet spec plus what the simulator derives from it."""

    name: str
    spec: FleetSpec
    world: World
    robots: tuple[RobotSetup, ...]
    moving_obstacles: tuple[MovingObstacle, ...]
    source: Path | None = None

    @property
    def seed(self) -> int:
        return self.spec.scenario.seed

    @property
    def time_limit_s(self) -> float:
        return float(self.spec.scenario.time_limit_s)

    @property
    def step_s(self) -> float:
        return float(self.spec.scenario.step_s)

    @property
    def faults(self) -> tuple:
        return tuple(self.spec.scenario.faults)

    def with_seed(self, seed: int) -> 'Scenario':
        """Return the same scenario with another ``scenario.seed`` and ``planner.seed``."""
        scenario = self.spec.scenario.model_copy(update={'seed': int(seed)})
        planner = self.spec.planner.model_copy(update={'seed': int(seed)})
        spec = self.spec.model_copy(update={'scenario': scenario, 'planner': planner})
        return dataclasses.replace(self, spec=spec)


def scenario_from_spec(spec: FleetSpec, *, source: Path | None = None,
                       world: World | None = None) -> Scenario:
    """Build a :class:`Scenario` from a validated spec; the spec must have a map and robots."""
    if not spec.robots:
        raise ScenarioError(f'scenario {spec.name or source} has no robots; add at least one '
                            'entry under robots')
    world = world if world is not None else spec.load_world()
    robots = tuple(
        RobotSetup(robot_id=robot.id, radius_m=robot.radius_m,
                   max_speed_mps=robot.max_speed_mps, max_accel_mps2=robot.max_accel_mps2,
                   start_xy_m=robot.start_xy_m, goal_xy_m=tuple(robot.goal),
                   start_yaw_rad=robot.start_yaw_rad,
                   max_yaw_rate_radps=robot.max_yaw_rate_radps
                   if robot.drive == 'differential' else None)
        for robot in spec.robots)
    for robot in spec.robots:
        checker = world.checker(robot.radius_m)
        for what, xy in (('start', robot.start_xy_m), ('goal', robot.goal)):
            world.require_inside(xy, what=f'robot {robot.id} {what}')
            if not checker.point_free(xy):
                raise ScenarioError(
                    f'robot {robot.id} {what} ({xy[0]:.3f}, {xy[1]:.3f}) m collides with the '
                    f'map {world.name!r} for radius_m={robot.radius_m}; move it into free space '
                    'or reduce the radius')
    name = spec.name or (source.stem if source else 'scenario')
    return Scenario(name=name, spec=spec, world=world, robots=robots,
                    moving_obstacles=tuple(spec.moving_obstacle_models()), source=source)


def scenario_path(name_or_path: str | Path) -> Path:
    """Return the file of a scenario given as a path or a bundled scenario name."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    name = str(name_or_path)
    for suffix in ('', '.yaml', '.yml', '.json'):
        path = share_dir() / 'sim' / 'scenarios' / f'{name}{suffix}'
        if path.is_file():
            return path
    known = ', '.join(bundled_scenarios()) or '(none)'
    raise ScenarioError(f'scenario {name!r} is neither a file nor a bundled scenario; '
                        f'bundled scenarios: {known}')


def bundled_scenarios() -> list[str]:
    """Return the names of the scenarios shipped in ``sim/scenarios/``."""
    folder = share_dir() / 'sim' / 'scenarios'
    return sorted(path.stem for path in folder.glob('*.yaml'))


def load_scenario_file(name_or_path: str | Path) -> Scenario:
    """Load a scenario from a fleet spec file or a bundled scenario name."""
    path = scenario_path(name_or_path)
    try:
        spec = load_spec(path)
    except SpecError as error:
        raise ScenarioError(_spec_error_text(error, f'scenario file {str(path)!r}')) from None
    return scenario_from_spec(spec, source=path)


def _spec_error_text(error: SpecError, subject: str) -> str:
    """Return the message of ``error`` with ``subject`` named once as the invalid spec.

    Without a problem list, the message of a spec loaded from a file names that file already.
    """
    if not error.problems:
        return str(error)
    count = len(error.problems)
    lines = [f'{subject} is not a valid fleet spec: {count} problem{"s" if count != 1 else ""}']
    lines += [f'  {path}: {message}' for path, message in error.problems]
    return '\n'.join(lines)


def movingai_scenario(scen_path: str | Path, *, agents: int, cell_size_m: float,
                      radius_m: float | None = None, max_speed_mps: float = 2.0,
                      max_accel_mps2: float = 1.5, max_yaw_rate_radps: float = 3.0,
                      drive: str = 'differential', seed: int = 0,
                      time_limit_s: float | None = None, map_path: str | Path | None = None,
                      moving_obstacles: Sequence[Mapping] = (), faults: Sequence[Mapping] = (),
                      overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Build a scenario from the first ``agents`` start/goal pairs of a MovingAI ``.scen``.

    The robot radius defaults to 0.3 cells, which leaves room in the one-cell corridors of
    MovingAI maps. The time limit defaults to twice the longest optimal path at
    ``max_speed_mps`` plus 60 s.
    """
    from mapl_robotics.geometry.maps import load_scenario
    if agents < 1:
        raise ScenarioError(f'agents={agents} must be at least 1')
    scen_path = Path(scen_path)
    if not scen_path.is_file():
        try:
            scen_path = bundled_path(str(scen_path))
        except FileNotFoundError:
            raise ScenarioError(f'MovingAI scenario file {str(scen_path)!r} was not found; '
                                'pass the path of a .scen file') from None
    tasks = load_scenario(scen_path, cell_size_m=cell_size_m,
                          **({'map_path': map_path} if map_path else {}))
    if len(tasks) < agents:
        raise ScenarioError(f'{scen_path.name} has {len(tasks)} start/goal pairs but '
                            f'agents={agents}; pass --agents {len(tasks)} or fewer')
    tasks = tasks[:agents]
    radius = radius_m if radius_m is not None else 0.3 * cell_size_m
    # The simulated body is the planning disc less a fixed margin, which needs a disc of more
    # than twice the margin.
    smallest_radius_m = 2.0 * DEFAULT_FOOTPRINT_MARGIN_M
    if radius <= smallest_radius_m:
        if radius_m is not None:
            raise ScenarioError(f'radius_m={radius_m:g} is too small to simulate; pass a '
                                f'radius above {smallest_radius_m:g} m')
        smallest_cell_m = math.ceil(smallest_radius_m / 0.3 * 100.0) / 100.0
        raise ScenarioError(f'--cell-size {cell_size_m:g} gives robots of radius '
                            f'{radius:g} m (0.3 cells), too small to simulate; pass '
                            f'--cell-size {smallest_cell_m:g} or more')
    the_map = Path(map_path) if map_path else scen_path.parent / tasks[0].map_name
    longest_m = max(task.optimal_length_m for task in tasks)
    limit_s = time_limit_s if time_limit_s else 2.0 * longest_m * cell_size_m / max_speed_mps + 60
    document: dict[str, Any] = {
        'roboticSystem': copy.deepcopy(ROBOTIC_SYSTEM),
        'name': f'{scen_path.stem}-{agents}',
        'description': f'first {agents} start/goal pairs of {scen_path.name}, '
                       f'{cell_size_m} m cells',
        'map': {'path': str(the_map.resolve()), 'cell_size_m': cell_size_m},
        'robots': [{'id': f'r{index}', 'radius_m': radius, 'max_speed_mps': max_speed_mps,
                    'max_accel_mps2': max_accel_mps2, 'drive': drive,
                    'max_yaw_rate_radps': max_yaw_rate_radps,
                    'start': list(task.start_xy_m), 'goal': list(task.goal_xy_m)}
                   for index, task in enumerate(tasks)],
        'movingObstacles': [dict(obstacle) for obstacle in moving_obstacles],
        'consensus': {'mode': 'cluster', 'node_count': 3},
        'planner': {'seed': int(seed)},
        'scenario': {'seed': int(seed), 'time_limit_s': float(limit_s),
                     'faults': [dict(fault) for fault in faults]},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(document.get(key), dict):
            document[key].update(value)
        else:
            document[key] = value
    try:
        spec = load_spec(document)
    except SpecError as error:
        raise ScenarioError(_spec_error_text(
            error, f'the scenario built from {scen_path.name}')) from None
    return scenario_from_spec(spec, source=scen_path)
