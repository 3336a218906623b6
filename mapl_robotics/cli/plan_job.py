"""The work behind ``mapl plan``: build the planning problem, plan, check, and write outputs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mapl_robotics.errors import PlanningError, SpecError
from mapl_robotics.geometry import MovingObstacle, Trajectory, World, find_conflict

__all__ = ['PlannedRobot', 'PlanResult', 'SingleRobotJob', 'FleetPlanJob']

_LOGGER = logging.getLogger(__name__)

# Clearance between the robot and moving obstacles in single-robot mode, as in the spec.
_DEFAULT_CLEARANCE_M = 0.1


@dataclass(frozen=True)
class PlannedRobot:
    """One robot's planned trajectory and how long planning took."""

    robot_id: str
    radius_m: float
    trajectory: Trajectory
    planning_ms: float


@dataclass(frozen=True)
class PlanResult:
    """Planned trajectories on one world, ready to check and write out."""

    world: World
    robots: tuple[PlannedRobot, ...]
    moving_obstacles: tuple[MovingObstacle, ...]
    clearance_m: float
    title: str

    def conflicts(self) -> list[tuple[str, str, float]]:
        """Return ``(id_a, id_b, time_s)`` for every pair of robots whose plans conflict."""
        found = []
        for j, later in enumerate(self.robots):
            for earlier in self.robots[:j]:
                conflict = find_conflict(earlier.trajectory, earlier.radius_m,
                                         later.trajectory, later.radius_m,
                                         clearance_m=self.clearance_m)
                if conflict is not None:
                    found.append((earlier.robot_id, later.robot_id, conflict.time_s))
        return found

    def write(self, output_dir: Path) -> Path:
        """Write plan.png, trajectories.json and summary.json; return the PNG's path."""
        from mapl_robotics.plotting import plot_plan

        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        trajectories = {robot.robot_id: {'radius_m': robot.radius_m,
                                         'samples_t_x_y_yaw': robot.trajectory.to_list()}
                        for robot in self.robots}
        (output_dir / 'trajectories.json').write_text(json.dumps(trajectories) + '\n',
                                                      encoding='utf-8')
        (output_dir / 'summary.json').write_text(json.dumps(self.summary(), indent=2) + '\n',
                                                 encoding='utf-8')
        return plot_plan(self.world,
                         {robot.robot_id: robot.trajectory for robot in self.robots},
                         radii_m={robot.robot_id: robot.radius_m for robot in self.robots},
                         moving_obstacles=self.moving_obstacles,
                         output_path=output_dir / 'plan.png', title=self.title)

    def summary(self) -> dict[str, Any]:
        """Return per-robot length, duration and planning time, and the conflict check."""
        return {
            'map': self.world.name,
            'robots': {robot.robot_id: {
                'length_m': round(robot.trajectory.length_m, 4),
                'duration_s': round(robot.trajectory.duration_s, 4),
                'planning_ms': round(robot.planning_ms, 2),
            } for robot in self.robots},
            'clearance_m': self.clearance_m,
            'conflicts': [list(item) for item in self.conflicts()],
        }

    def summary_lines(self) -> list[str]:
        """Return a small text table of the result."""
        lines = [f'{"robot":<16} {"length [m]":>10} {"duration [s]":>12} {"planning [ms]":>13}']
        for robot in self.robots:
            lines.append(f'{robot.robot_id:<16} {robot.trajectory.length_m:>10.2f} '
                         f'{robot.trajectory.duration_s:>12.2f} {robot.planning_ms:>13.1f}')
        conflicts = self.conflicts()
        if len(self.robots) > 1:
            lines.append('conflicts between plans: '
                         + (', '.join(f'{a}-{b} at {t:.2f} s' for a, b, t in conflicts)
                            or 'none'))
        return lines


def _planner_settings(base, overrides: Mapping[str, Any]):
    changes = {key: value for key, value in overrides.items()
               if value is not None and key != 'seed'}
    return base.replace(**changes) if changes else base


@dataclass(frozen=True)
class SingleRobotJob:
    """One robot from start to goal on a map, with no other robots."""

    world: World
    robot: Any
    start_xy_m: tuple[float, float]
    goal_xy_m: tuple[float, float]
    settings: Any
    seed: int

    @classmethod
    def create(cls, *, map_name: str, bundled, cell_size_m: float | None, start_xy_m,
               goal_xy_m, radius_m: float, max_speed_mps: float, max_accel_mps2: float,
               drive: str, overrides: Mapping[str, Any]) -> 'SingleRobotJob':
        """Load the map (a bundled name or a file) and build the planning problem."""
        from mapl_robotics.geometry.maps import load_map
        from mapl_robotics.planning import PlannerSettings, RobotModel
        from mapl_robotics.resources import bundled_path

        if bundled is not None:
            path = bundled_path(bundled.relative_path)
            # The bundled start and goal are cell centres for the bundled cell size, so they
            # scale with the cell size the user asks for.
            scale = 1.0
            if cell_size_m is not None and bundled.cell_size_m is not None:
                scale = cell_size_m / bundled.cell_size_m
            cell_size_m = cell_size_m if cell_size_m is not None else bundled.cell_size_m
            if start_xy_m is None:
                start_xy_m = tuple(scale * value for value in bundled.start_xy_m)
            if goal_xy_m is None:
                goal_xy_m = tuple(scale * value for value in bundled.goal_xy_m)
        else:
            path = Path(map_name)
        world = load_map(path, cell_size_m=cell_size_m)
        robot = RobotModel(radius_m=radius_m, max_speed_mps=max_speed_mps,
                           max_accel_mps2=max_accel_mps2, drive=drive)
        settings = _planner_settings(PlannerSettings(), overrides)
        seed = overrides.get('seed')
        return cls(world=world, robot=robot, start_xy_m=tuple(start_xy_m),
                   goal_xy_m=tuple(goal_xy_m), settings=settings,
                   seed=0 if seed is None else int(seed))

    def run(self) -> PlanResult:
        from mapl_robotics.planning import plan_trajectory

        started = time.perf_counter()
        trajectory = plan_trajectory(self.world, self.robot, self.start_xy_m, self.goal_xy_m,
                                     t_start_s=0.0, rng=np.random.default_rng(self.seed),
                                     settings=self.settings, clearance_m=_DEFAULT_CLEARANCE_M)
        planning_ms = (time.perf_counter() - started) * 1000.0
        planned = PlannedRobot('robot', self.robot.radius_m, trajectory, planning_ms)
        return PlanResult(world=self.world, robots=(planned,), moving_obstacles=(),
                          clearance_m=_DEFAULT_CLEARANCE_M,
                          title=f'{self.world.name}: {self.settings.algorithm}')


@dataclass(frozen=True)
class FleetPlanJob:
    """Every robot of a fleet spec, planned in order against the ones before it."""

    spec: Any
    world: World
    settings: Any
    seed: int

    @classmethod
    def from_spec_file(cls, path: Path, *, overrides: Mapping[str, Any]) -> 'FleetPlanJob':
        """Load the spec and its map; command-line planner options replace the spec's."""
        from mapl_robotics.spec import load_spec

        spec = load_spec(path)
        if not spec.robots:
            raise SpecError(f'spec {str(path)!r} lists no robots; add a robots section with '
                            'id, radius_m, max_speed_mps, max_accel_mps2, start and goal')
        world = spec.load_world()
        spec.check_positions(world)
        settings = _planner_settings(spec.planner.to_settings(), overrides)
        seed = overrides.get('seed')
        return cls(spec=spec, world=world, settings=settings,
                   seed=spec.planner.seed if seed is None else int(seed))

    def run(self) -> PlanResult:
        from mapl_robotics.planning import plan_trajectory

        spec = self.spec
        moving = spec.planned_obstacles()
        committed: dict[str, tuple[Trajectory, float]] = {}
        planned: list[PlannedRobot] = []
        for index, robot in enumerate(spec.robots):
            started = time.perf_counter()
            try:
                trajectory = plan_trajectory(
                    self.world, robot.to_model(), robot.start_xy_m, robot.goal,
                    t_start_s=0.0, rng=np.random.default_rng([self.seed, index]),
                    settings=self.settings, moving_obstacles=moving, committed=committed,
                    clearance_m=spec.planner.clearance_m, start_yaw_rad=robot.start_yaw_rad)
            except PlanningError as error:
                against = f' against the plans of {", ".join(committed)}' if committed else ''
                raise PlanningError(f'planning robot {robot.id!r} (robots[{index}]){against} '
                                    f'failed: {error}') from error
            planning_ms = (time.perf_counter() - started) * 1000.0
            _LOGGER.info('planned %s: %.1f m in %.1f ms', robot.id, trajectory.length_m,
                         planning_ms)
            committed[robot.id] = (trajectory, robot.radius_m)
            planned.append(PlannedRobot(robot.id, robot.radius_m, trajectory, planning_ms))
        return PlanResult(world=self.world, robots=tuple(planned),
                          moving_obstacles=spec.moving_obstacle_models(),
                          clearance_m=spec.planner.clearance_m,
                          title=f'{spec.name or self.world.name}: {self.settings.algorithm}, '
                                f'{len(planned)} robots')
