"""Benchmark whole-fleet simulation on MovingAI warehouse-10-20-10-2-1 against grid MAPF.

For each agent count, the first N start/goal pairs of one ``.scen`` file run once through the
simulator (real agents and ledger; ``in-process`` and/or ``multi-process``), and pymapf solves
the same instance on the 4-connected grid with PIBT, prioritized planning and bounded-
suboptimal CBS (focal search, w = 1.5) under a time limit.

    python bench/fleet.py --json OUT.json [--agents 8,32,64] [--modes in-process,multi-process]

Reported per run: wall time, real-time factor, fleet time until every robot held a committed
plan toward its goal, success (no collision, every robot arrived, conflict-free ledger history)
and sum of costs (sum of arrival times in seconds). Grid solutions count one cell per time step.
Their cost in seconds assumes that a robot crosses one cell at its full speed and ignores
acceleration and turns, which flatters the grid planners.

Each instance also reports a lower bound on any continuous solution: every robot alone on the
map, on its shortest any-angle path, accelerating at its limit from rest to rest and turning
in no time. No planner for these robots can beat it.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import shapely

from mapl_robotics.geometry.maps.movingai import load_scenario, read_movingai_map
from mapl_robotics.sim.runner import RunOptions, run_scenario
from mapl_robotics.sim.scenario import movingai_scenario

logger = logging.getLogger('bench.fleet')

MAP_DIR = Path(__file__).resolve().parent.parent / 'maps' / 'movingai' / 'warehouse-10-20-10-2-1'
DEFAULT_SCEN = MAP_DIR / 'warehouse-10-20-10-2-1-even-1.scen'
GRID_SOLVERS = (('pibt', {}), ('prioritized', {}), ('wcbs', {'weight': 1.5}))


def grid_baselines(scen_path: Path, agents: int, *, cell_size_m: float, max_speed_mps: float,
                   time_limit_s: float) -> dict:
    """Solve the instance with pymapf's grid solvers; return cost and runtime per solver."""
    import pymapf
    tasks = load_scenario(scen_path, cell_size_m=cell_size_m)[:agents]
    grid_map = read_movingai_map(scen_path.parent / tasks[0].map_name)
    grid = pymapf.GridMap((~grid_map.passable).astype(int).tolist())
    # MovingAI cells are (x = column, y = row from the top); pymapf cells are (row, column).
    problem = pymapf.MAPFProblem(grid, [
        pymapf.Agent(f'r{index}', (task.start_cell[1], task.start_cell[0]),
                     (task.goal_cell[1], task.goal_cell[0]))
        for index, task in enumerate(tasks)])
    cell_time_s = cell_size_m / max_speed_mps
    results = {}
    for name, options in GRID_SOLVERS:
        started = time.perf_counter()
        kwargs = dict(options)
        if name in ('pibt', 'wcbs'):
            kwargs['time_limit'] = time_limit_s
        try:
            solution = pymapf.solve(problem, name, **kwargs)
        except Exception as error:  # noqa: BLE001 - a baseline failing must not stop the run
            logger.warning('%s failed on %d agents: %s', name, agents, error)
            solution = None
        runtime_s = time.perf_counter() - started
        if solution is None or not solution.is_valid():
            results[name] = {'solved': False, 'runtime_s': round(runtime_s, 3)}
            continue
        results[name] = {'solved': True, 'runtime_s': round(runtime_s, 3),
                         'sum_of_costs_steps': int(solution.sum_of_costs),
                         'makespan_steps': int(solution.makespan),
                         'sum_of_costs_s': round(solution.sum_of_costs * cell_time_s, 3)}
    return results


def any_angle_lower_bounds(scen_path: Path, agents: int, *, cell_size_m: float, radius_m: float,
                           max_speed_mps: float, max_accel_mps2: float) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Return each of the first ``agents`` robots' shortest path length and least travel time.

    Summed over robots, the times are a lower bound on the sum of costs of any continuous
    solution of the instance.

    The shortest path of a disc among obstacles runs on the visibility graph of the obstacles
    grown by its radius. The map is grown by a polygon inscribed in the disc, which is smaller
    than the true growth, so the paths found are no longer than the true shortest paths. Each
    robot then drives its path alone with a trapezoidal speed profile and turns in no time.
    """
    from mapl_robotics.geometry.maps.movingai import load_movingai_map
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    tasks = load_scenario(scen_path, cell_size_m=cell_size_m)[:agents]
    world = load_movingai_map(scen_path.parent / tasks[0].map_name, cell_size_m=cell_size_m)
    x_min, y_min, x_max, y_max = world.bounds_m
    grown = world.obstacle_union.buffer(radius_m * 0.999, quad_segs=2)
    free = shapely.box(x_min + radius_m, y_min + radius_m, x_max - radius_m,
                       y_max - radius_m).difference(grown)
    shapely.prepare(free)
    corners = []
    for polygon in getattr(free, 'geoms', [free]):
        for ring in (polygon.exterior, *polygon.interiors):
            corners.extend(np.asarray(ring.coords)[:-1])
    corners = np.unique(np.round(np.asarray(corners), 9), axis=0)
    ends = np.array([task.start_xy_m for task in tasks] + [task.goal_xy_m for task in tasks])
    nodes = np.vstack([corners, ends])
    rows, cols, weights = [], [], []
    for index in range(len(nodes) - 1):
        others = np.arange(index + 1, len(nodes))
        segments = shapely.linestrings(np.stack(
            [np.repeat(nodes[index:index + 1], len(others), axis=0), nodes[others]], axis=1))
        visible = others[shapely.covers(free, segments)]
        rows.extend([index] * len(visible))
        cols.extend(visible)
        weights.extend(np.linalg.norm(nodes[visible] - nodes[index], axis=1))
    graph = csr_matrix((weights, (rows, cols)), shape=(len(nodes), len(nodes)))
    first_start = len(corners)
    distances = dijkstra(graph, directed=False,
                         indices=list(range(first_start, first_start + agents)))
    lengths_m = np.array([distances[k, first_start + agents + k] for k in range(agents)])
    ramp_m = max_speed_mps ** 2 / max_accel_mps2
    times_s = np.where(lengths_m >= ramp_m,
                       lengths_m / max_speed_mps + max_speed_mps / max_accel_mps2,
                       2.0 * np.sqrt(lengths_m / max_accel_mps2))
    return lengths_m, times_s


def lower_bound_summary(lengths_m: np.ndarray, times_s: np.ndarray, *, radius_m: float,
                        max_speed_mps: float) -> dict:
    """Sum the per-robot bounds of one instance into the figures the report lists."""
    return {'radius_m': radius_m, 'path_length_m': round(float(lengths_m.sum()), 3),
            'sum_of_costs_s': round(float(times_s.sum()), 3),
            'sum_of_costs_full_speed_s': round(float(lengths_m.sum() / max_speed_mps), 3)}


def simulate(scen_path: Path, agents: int, *, mode: str, cell_size_m: float, seed: int,
             step_s: float, out_dir: Path) -> dict:
    """Run one fleet simulation and return the benchmark figures from its metrics."""
    scenario = movingai_scenario(scen_path, agents=agents, cell_size_m=cell_size_m, seed=seed,
                                 overrides={'scenario': {'step_s': step_s}})
    started = time.perf_counter()
    result = run_scenario(scenario, RunOptions(out_dir=out_dir, mode=mode, progress=True,
                                               plots=False))
    metrics = result.metrics
    return {
        'mode': mode, 'agents': agents, 'success': metrics['success'],
        'reached': metrics['reached'], 'collisions': metrics['collisions']['total'],
        'no_conflicting_commits': metrics['no_conflicting_commits'],
        'wall_time_s': metrics['wall_time_s'],
        'total_wall_time_s': round(time.perf_counter() - started, 3),
        'sim_time_s': metrics['sim_time_s'], 'real_time_factor': metrics['real_time_factor'],
        'all_committed_s': metrics['all_committed_s'], 'makespan_s': metrics['makespan_s'],
        'sum_of_costs_s': metrics['sum_of_costs_s'], 'planning_ms': metrics['planning_ms'],
        'commit_ms': metrics['commit_ms'], 'mesh_p99_ms': metrics['mesh_p99_ms'],
        'deadline_misses': metrics['deadline_misses'], 'replans': metrics['replans'],
        'max_pacer_lag_s': metrics.get('max_pacer_lag_s'),
        'out_dir': str(out_dir),
    }


@click.command(context_settings={'help_option_names': ['-h', '--help']})
@click.option('--json', 'json_path', type=click.Path(dir_okay=False, path_type=Path),
              required=True, help='Where to write the results.')
@click.option('--agents', default='8,32,64', show_default=True,
              help='Comma-separated agent counts.')
@click.option('--modes', default='in-process,multi-process', show_default=True,
              help='Comma-separated simulation modes.')
@click.option('--multi-process-max-agents', default=32, show_default=True,
              help='Largest agent count run in multi-process mode.')
@click.option('--scen', 'scen_path', type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_SCEN, show_default=True, help='MovingAI .scen file.')
@click.option('--cell-size', 'cell_size_m', default=1.0, show_default=True,
              help='Grid cell edge length in metres.')
@click.option('--grid-time-limit-s', default=60.0, show_default=True,
              help='Time limit of each pymapf solver run, in seconds.')
@click.option('--seed', default=1, show_default=True, help='Simulation and planner seed.')
@click.option('--step-s', default=0.05, show_default=True,
              help='Simulation step in seconds; the swept collision checks keep large steps '
                   'exact.')
@click.option('--out', 'out_root', type=click.Path(file_okay=False, path_type=Path),
              default=None, help='Folder for the run outputs (default: a temporary folder).')
def main(json_path, agents, modes, multi_process_max_agents, scen_path, cell_size_m,
         grid_time_limit_s, seed, step_s, out_root) -> None:
    """Benchmark fleet simulation against pymapf grid solvers."""
    logging.basicConfig(level=logging.WARNING,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    counts = [int(value) for value in agents.split(',') if value]
    mode_list = [value for value in modes.split(',') if value]
    out_root = Path(out_root or tempfile.mkdtemp(prefix='mapl-bench-fleet-'))
    max_speed_mps = 2.0  # the movingai_scenario defaults
    max_accel_mps2 = 1.5
    radius_m = 0.3 * cell_size_m
    report = {'benchmark': 'fleet', 'scen': scen_path.name, 'cell_size_m': cell_size_m,
              'step_s': step_s,
              'max_speed_mps': max_speed_mps, 'seed': seed,
              'command': ' '.join(['python'] + sys.argv),
              'machine': {'python': platform.python_version(), 'platform': platform.platform(),
                          'cpus': __import__('os').cpu_count()},
              'instances': []}
    # One visibility graph serves every agent count: the instances are prefixes of one list.
    click.echo('computing the any-angle lower bound (about a minute on MovingAI warehouse)')
    bound_lengths_m, bound_times_s = any_angle_lower_bounds(
        scen_path, max(counts), cell_size_m=cell_size_m, radius_m=radius_m,
        max_speed_mps=max_speed_mps, max_accel_mps2=max_accel_mps2)
    for count in counts:
        instance = {'agents': count, 'runs': [],
                    'grid': grid_baselines(scen_path, count, cell_size_m=cell_size_m,
                                           max_speed_mps=max_speed_mps,
                                           time_limit_s=grid_time_limit_s),
                    'lower_bound': lower_bound_summary(
                        bound_lengths_m[:count], bound_times_s[:count], radius_m=radius_m,
                        max_speed_mps=max_speed_mps)}
        solved = [item['sum_of_costs_s'] for item in instance['grid'].values()
                  if item.get('solved')]
        if solved:
            instance['lower_bound']['vs_best_grid'] = round(
                instance['lower_bound']['sum_of_costs_s'] / min(solved), 3)
        click.echo(json.dumps({'agents': count, 'lower_bound': instance['lower_bound']}))
        for mode in mode_list:
            if mode == 'multi-process' and count > multi_process_max_agents:
                continue
            run = simulate(scen_path, count, mode=mode, cell_size_m=cell_size_m, seed=seed,
                           step_s=step_s, out_dir=out_root / f'{mode}-{count}')
            bound_s = instance['lower_bound']['sum_of_costs_s']
            if run['sum_of_costs_s'] is not None and run['sum_of_costs_s'] < bound_s:
                logger.error('%s run with %d agents has a sum of costs of %.1f s, below the '
                             'lower bound of %.1f s; the bound or the metric is wrong',
                             mode, count, run['sum_of_costs_s'], bound_s)
            if run['sum_of_costs_s'] is not None and solved:
                run['sum_of_costs_vs_best_grid'] = round(run['sum_of_costs_s'] / min(solved), 3)
            instance['runs'].append(run)
            click.echo(json.dumps(run))
        report['instances'].append(instance)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + '\n', encoding='utf-8')
    click.echo(f'wrote {json_path}')


if __name__ == '__main__':
    main()
