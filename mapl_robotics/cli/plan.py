"""``mapl plan``: plan one robot on a map, or every robot of a fleet spec, and plot the result.

Robots of a spec are planned one after another in the order listed: each plans against the
trajectories of the robots before it and the predicted moving obstacles (prioritized planning,
the same space-time planner each agent runs). No ledger, mesh or simulator is involved.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import click

from mapl_robotics.cli import main
from mapl_robotics.planning.models import PlannerSettings

__all__ = ['plan', 'BUNDLED_MAPS']

_LOGGER = logging.getLogger(__name__)
_PLANNER_DEFAULTS = PlannerSettings()


@dataclass(frozen=True)
class BundledMap:
    """A map shipped in maps/, with a start and goal that are free for radii up to 0.45 m."""

    relative_path: str
    cell_size_m: float | None
    start_xy_m: tuple[float, float]
    goal_xy_m: tuple[float, float]


BUNDLED_MAPS: dict[str, BundledMap] = {
    'warehouse': BundledMap('maps/ros/warehouse.yaml', None, (-4.0, -20.0), (5.0, 20.0)),
    'turtlebot3_world': BundledMap('maps/ros/turtlebot3_world.yaml', None,
                                   (-2.0, -0.5), (2.0, 0.5)),
    'movingai_warehouse': BundledMap(
        'maps/movingai/warehouse-10-20-10-2-1/warehouse-10-20-10-2-1.map', 1.0,
        (3.5, 3.5), (157.5, 59.5)),
    'random_32': BundledMap('maps/movingai/random-32-32-10/random-32-32-10.map', 1.0,
                            (0.5, 0.5), (31.5, 31.5)),
    'room_32': BundledMap('maps/movingai/room-32-32-4/room-32-32-4.map', 1.0,
                          (1.5, 1.5), (30.5, 30.5)),
}


# Options that describe the single robot; a spec file describes its robots itself.
_SINGLE_ROBOT_OPTIONS = {
    'map_name': '--map', 'cell_size_m': '--cell-size', 'start_xy_m': '--start',
    'goal_xy_m': '--goal', 'radius_m': '--radius', 'max_speed_mps': '--max-speed',
    'max_accel_mps2': '--max-accel', 'drive': '--drive',
}


def _default_output() -> Path:
    stamp = datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')
    return Path('out') / f'plan-{stamp}'


@main.command('plan')
@click.option('--map', 'map_name', default='warehouse', show_default=True,
              help='Bundled map name (' + ', '.join(BUNDLED_MAPS) + ') or a map file: '
                   'map_server YAML, MovingAI .map, polygon YAML or GeoJSON.')
@click.option('--cell-size', 'cell_size_m', type=click.FloatRange(min=0.0, min_open=True),
              help='Edge length of a MovingAI grid cell, in metres (bundled MovingAI maps: 1).')
@click.option('--start', 'start_xy_m', type=(float, float), metavar='X Y',
              help='Start position in the map frame, in metres. Default: the bundled '
                   "map's start, scaled to --cell-size on MovingAI maps.")
@click.option('--goal', 'goal_xy_m', type=(float, float), metavar='X Y',
              help='Goal position in the map frame, in metres. Default: the bundled '
                   "map's goal, scaled to --cell-size on MovingAI maps.")
@click.option('--spec', 'spec_path', type=click.Path(dir_okay=False, path_type=Path),
              help='Fleet spec (JSON or YAML): plan all of its robots on its map, in order, '
                   'instead of one robot.')
@click.option('--radius', 'radius_m', type=click.FloatRange(min=0.0, min_open=True),
              default=0.3, show_default=True, help='Robot radius in metres.')
@click.option('--max-speed', 'max_speed_mps', type=click.FloatRange(min=0.0, min_open=True),
              default=1.0, show_default=True, help='Maximum speed in m/s.')
@click.option('--max-accel', 'max_accel_mps2', type=click.FloatRange(min=0.0, min_open=True),
              default=1.0, show_default=True, help='Maximum acceleration in m/s^2.')
@click.option('--drive', type=click.Choice(['holonomic', 'differential']),
              default='holonomic', show_default=True, help='Drive type of the robot.')
@click.option('--algorithm', type=click.Choice(['rrt', 'rrt_connect', 'rrt_star']),
              help=f'Planner (default: {_PLANNER_DEFAULTS.algorithm}, or the spec\'s '
                   'planner.algorithm).')
@click.option('--step-size', 'step_size_m', type=click.FloatRange(min=0.0, min_open=True),
              help=f'Maximum tree edge length in metres (default: '
                   f'{_PLANNER_DEFAULTS.step_size_m:g}, or the spec\'s value).')
@click.option('--time-budget', 'time_budget_s', type=click.FloatRange(min=0.0, min_open=True),
              help=f'Wall-clock budget of one search in seconds (default: '
                   f'{_PLANNER_DEFAULTS.time_budget_s:g}, or the spec\'s value).')
@click.option('--seed', type=click.IntRange(min=0),
              help='Seed of the planner\'s random generator (default: 0, or the spec\'s '
                   'planner.seed).')
@click.option('--output', '-o', 'output_dir', type=click.Path(file_okay=False, path_type=Path),
              help='Output folder for plan.png, trajectories.json and summary.json. Default: '
                   'out/plan-<UTC time>.')
def plan(map_name: str, cell_size_m: float | None, start_xy_m, goal_xy_m,
         spec_path: Path | None, radius_m: float, max_speed_mps: float, max_accel_mps2: float,
         drive: str, algorithm: str | None, step_size_m: float | None,
         time_budget_s: float | None, seed: int | None, output_dir: Path | None) -> None:
    """Plan collision-free, time-parameterized paths and plot them.

    Without --spec, plans one robot from --start to --goal on --map. With --spec, plans every
    robot of the spec on the spec's map in the order listed, each against the robots before it
    and the predicted moving obstacles, and checks that no two plans conflict.
    """
    from mapl_robotics.cli.plan_job import FleetPlanJob, SingleRobotJob

    ctx = click.get_current_context()
    overrides = {'algorithm': algorithm, 'step_size_m': step_size_m,
                 'time_budget_s': time_budget_s, 'seed': seed}
    if spec_path is not None:
        given = [flag for name, flag in _SINGLE_ROBOT_OPTIONS.items()
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f'--spec takes the map and the robots from the spec file; '
                                   f'drop {", ".join(given)}')
        job = FleetPlanJob.from_spec_file(spec_path, overrides=overrides)
    else:
        bundled = BUNDLED_MAPS.get(map_name)
        if bundled is None and not Path(map_name).expanduser().is_file():
            raise click.ClickException(
                f'--map {map_name!r} does not exist as a file and is not a bundled map name; '
                f'give the path of a map file or one of {", ".join(BUNDLED_MAPS)}')
        if bundled is None and (start_xy_m is None or goal_xy_m is None):
            raise click.UsageError(f'--map {map_name} is a map file, so give --start X Y and '
                                   '--goal X Y; only bundled maps come with a default start '
                                   'and goal')
        job = SingleRobotJob.create(
            map_name=map_name, bundled=bundled, cell_size_m=cell_size_m,
            start_xy_m=start_xy_m, goal_xy_m=goal_xy_m, radius_m=radius_m,
            max_speed_mps=max_speed_mps, max_accel_mps2=max_accel_mps2, drive=drive,
            overrides=overrides)
    output_dir = output_dir if output_dir is not None else _default_output()
    started = time.perf_counter()
    result = job.run()
    try:
        png_path = result.write(output_dir)
    except OSError as error:
        raise click.ClickException(f'cannot write the outputs to {str(output_dir)!r}: '
                                   f'{error.strerror or error}; choose another --output '
                                   'folder') from None
    for line in result.summary_lines():
        click.echo(line)
    click.echo(f'wrote {png_path}, {output_dir / "trajectories.json"} and '
               f'{output_dir / "summary.json"} ({time.perf_counter() - started:.1f} s)')
