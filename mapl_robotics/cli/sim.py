"""``mapl sim``: run a fleet scenario in the headless PyBullet simulator.

Without arguments it runs the bundled default scenario (eight robots and two moving obstacles
on the MovingAI warehouse-10-20-10-2-1 map) with every agent in its own process. The exit
status is 0 only when no robot collided, every live robot arrived and no two committed plans
ever conflicted.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timezone
from pathlib import Path

import click

from mapl_robotics.cli import main
from mapl_robotics.errors import MaplError
from mapl_robotics.sim.termination import SimulationTerminated

__all__ = ['sim', 'format_summary']

_LOGGER = logging.getLogger(__name__)


def _default_output(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')
    return Path('out') / f'sim-{name}-{stamp}'


def _cell(value, unit: str = '') -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.3f}{unit}'
    return f'{value}{unit}'


def _fault_cell(event: dict) -> str:
    """Return a fault's type, marked when the run mode could not inject it."""
    effect = str(event.get('effect', ''))
    return f"{event['type']} (skipped in-process)" if effect.startswith('skipped') \
        else event['type']


def _history_cell(metrics: dict, history: dict) -> str:
    if metrics.get('ledger_history_error'):
        return f"UNAVAILABLE: {metrics['ledger_history_error']}"
    if metrics['no_conflicting_commits'] is None:
        return 'not checked'
    return (f"{history.get('commits_checked', 0)} commits, "
            + ('no conflicts' if metrics['no_conflicting_commits'] else 'CONFLICTS FOUND'))


def format_summary(metrics: dict) -> str:
    """Return the end-of-run summary table of a metrics mapping."""
    collisions = metrics['collisions']
    history = metrics.get('ledger_history') or {}
    rows = [
        ('scenario', f"{metrics['scenario']} ({metrics['mode']}, seed {metrics['seed']})"),
        ('robots arrived', f"{metrics['reached']}/{metrics['robots']}"
                           + (f" (dead agents: {', '.join(metrics['dead_robots'])})"
                              if metrics['dead_robots'] else '')),
        ('collisions', f"{collisions['total']} (robot-robot {collisions['robot-robot']}, "
                       f"robot-static {collisions['robot-static']}, "
                       f"robot-moving {collisions['robot-moving']})"),
        ('min separation', _cell(metrics['min_separation_m'], ' m')),
        ('makespan', _cell(metrics['makespan_s'], ' s')),
        ('sum of costs', _cell(metrics['sum_of_costs_s'], ' s')),
        ('planning p50 / p99', f"{_cell(metrics['planning_ms']['p50'])} / "
                               f"{_cell(metrics['planning_ms']['p99'])} ms"),
        ('commit p50 / p99', f"{_cell(metrics['commit_ms']['p50'])} / "
                             f"{_cell(metrics['commit_ms']['p99'])} ms"),
        ('mesh p99', _cell(metrics['mesh_p99_ms'], ' ms')),
        ('deadline misses', _cell(metrics['deadline_misses'])),
        ('replans', _cell(metrics['replans'])),
        ('faults', ', '.join(_fault_cell(event) for event in metrics['fault_events'])
                   or 'none'),
        ('ledger history', _history_cell(metrics, history)),
        ('time', f"{metrics['sim_time_s']:.1f} s simulated in {metrics['wall_time_s']:.1f} s "
                 f"({_cell(metrics['real_time_factor'])}x real time)"),
        ('result', 'PASS' if metrics['success'] else 'FAIL'),
    ]
    width = max(len(name) for name, _ in rows)
    line = '-' * (width + 3 + max(len(value) for _, value in rows))
    body = '\n'.join(f'{name:<{width}} | {value}' for name, value in rows)
    return f'{line}\n{body}\n{line}'


@main.command('sim')
@click.option('--scenario', 'scenario_file', default=None,
              help='Scenario file (fleet spec YAML or JSON) or the name of a bundled scenario '
                   'in sim/scenarios/. Default: warehouse_default.')
@click.option('--scen', 'scen_file', type=click.Path(dir_okay=False, path_type=Path),
              default=None, help='MovingAI .scen file: simulate its first --agents start/goal '
                                 'pairs on the map it names.')
@click.option('--agents', type=click.IntRange(min=1), default=None,
              help='Number of start/goal pairs to take from --scen.')
@click.option('--cell-size', 'cell_size_m', type=click.FloatRange(min=0.0, min_open=True),
              default=None, help='Edge length of one MovingAI grid cell in metres (with --scen).')
@click.option('--out', 'out_dir', type=click.Path(file_okay=False, path_type=Path),
              default=None, help='Output folder for metrics.json, trajectories.png and logs. '
                                 'Default: out/sim-<scenario>-<UTC time>.')
@click.option('--keep-ledger', is_flag=True,
              help='Keep the Raft journals of the ledger nodes in OUT/ledger/ (multi-process '
                   'mode). By default they go to a temporary folder that is removed when the '
                   'run ends.')
@click.option('--in-process', is_flag=True,
              help='Run every agent in this process in lockstep with the simulation (fast and '
                   'deterministic) instead of one process per agent over the mesh.')
@click.option('--seed', type=click.IntRange(min=0), default=None,
              help='Override the scenario seed (simulator, faults and planners).')
@click.option('--gif', is_flag=True, help='Also write an animation, run.gif.')
@click.option('--no-progress', is_flag=True, help='Hide the progress bar.')
@click.option('--ros', is_flag=True,
              help='Run the whole fleet in this process as a ROS 2 system until Ctrl-C: '
                   'publish /clock and each robot\'s odom and tf, take goals from '
                   '/<robot>/goal_pose (docs/ros2.md).')
def sim(scenario_file, scen_file, agents, cell_size_m, out_dir, keep_ledger, in_process, seed,
        gif, no_progress, ros) -> None:
    """Simulate a fleet headless and report whether every robot arrived without a collision.

    \b
    Examples:
      mapl sim
      mapl sim --scenario corridor_swap --in-process
      mapl sim --scen maps/movingai/warehouse-10-20-10-2-1/warehouse-10-20-10-2-1-even-1.scen \\
               --agents 8 --cell-size 1.0
    """
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # The mesh logs every duplicate it drops at INFO; at the default level that buries the
        # progress bar. Warnings and errors still show.
        logging.getLogger('mapl_robotics.mesh').setLevel(logging.WARNING)
    from mapl_robotics.sim.runner import RunOptions, run_scenario
    from mapl_robotics.sim.scenario import (DEFAULT_SCENARIO, load_scenario_file,
                                            movingai_scenario)
    try:
        if scen_file is not None:
            if scenario_file is not None:
                raise click.UsageError('give either --scenario or --scen, not both')
            if agents is None or cell_size_m is None:
                raise click.UsageError('--scen needs --agents N and --cell-size METRES')
            scenario = movingai_scenario(scen_file, agents=agents, cell_size_m=cell_size_m,
                                         seed=seed or 0)
        else:
            if agents is not None or cell_size_m is not None:
                raise click.UsageError('--agents and --cell-size only apply with --scen')
            scenario = load_scenario_file(scenario_file or DEFAULT_SCENARIO)
        if seed is not None:
            scenario = scenario.with_seed(seed)
        if ros:
            from mapl_robotics.ros.sim_ros import run_scenario_with_ros
            click.echo(f'simulating {scenario.name} for ROS 2: {len(scenario.robots)} robots; '
                       'Ctrl-C stops')
            run_scenario_with_ros(scenario)
            return
        out_dir = out_dir or _default_output(scenario.name)
        click.echo(f'simulating {scenario.name}: {len(scenario.robots)} robots, '
                   f'{len(scenario.moving_obstacles)} moving obstacles on {scenario.world.name}; '
                   f'writing to {out_dir}')
        # Agent and ledger node processes log at the level given to mapl --log-level.
        log_level = click.get_current_context().find_root().params['log_level']
        result = run_scenario(scenario, RunOptions(
            out_dir=out_dir, mode='in-process' if in_process else 'multi-process',
            progress=not no_progress, gif=gif, log_level=log_level, keep_ledger=keep_ledger))
    except MaplError as error:
        raise click.ClickException(str(error)) from None
    except SimulationTerminated as terminated:
        # run_scenario has stopped the agents and ledger nodes and removed its temporary
        # folders. The exit status is 128 plus the signal number, as shells report a signal.
        click.echo(f'mapl sim: {terminated}; stopped the agents and ledger nodes', err=True)
        raise SystemExit(128 + terminated.signal_number) from None
    except KeyboardInterrupt:
        # Ctrl-C: the same clean-up has run. Status 130 (128 + SIGINT), as shells report it,
        # rather than click's "Aborted!" with status 1, which a failed run also returns.
        click.echo('mapl sim: interrupted; stopped the agents and ledger nodes', err=True)
        raise SystemExit(128 + signal.SIGINT) from None
    click.echo(format_summary(result.metrics))
    for path in result.files:
        click.echo(f'wrote {path}')
    if not result.success:
        raise SystemExit(1)
