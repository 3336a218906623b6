"""Benchmark our RRT-Connect against OMPL's RRTConnect on two warehouse maps.

Runs the same seeded start/goal queries with the same disc radius through three planners:

- ``ours``: :func:`mapl_robotics.planning.plan_path` (RRT-Connect with exact whole-edge
  checks, compiled with numba on these maps, then shortcut smoothing and corner cutting);
- ``ompl_exact``: OMPL RRTConnect with a Python ``MotionValidator`` that makes one exact
  shapely check per edge (``LineString`` ``dwithin`` against the prepared obstacle union),
  then ``simplifySolution``;
- ``ompl_state``: OMPL RRTConnect with a Python state validity checker (point ``dwithin``)
  and OMPL's discrete motion validator at a fixed resolution, then ``simplifySolution``.

Times are for search plus simplification, per query, as wall-clock and as process CPU time. Every returned path is also
re-checked with our exact swept-disc checker, because the resolution-based planner can
return paths that clip obstacles between its checked states.

    python bench/planning.py --json bench-planning.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from tqdm import tqdm

from mapl_robotics.geometry.maps import load_map, load_scenario
from mapl_robotics.planning import PlannerSettings, plan_path
from mapl_robotics.planning.smoothing import path_length_m

REPO_ROOT = Path(__file__).resolve().parent.parent
NAV2_MAP = REPO_ROOT / 'maps/ros/warehouse.yaml'
MOVINGAI_DIR = REPO_ROOT / 'maps/movingai/warehouse-10-20-10-2-1'
MOVINGAI_MAP = MOVINGAI_DIR / 'warehouse-10-20-10-2-1.map'
MOVINGAI_SCENARIO = MOVINGAI_DIR / 'warehouse-10-20-10-2-1-random-1.scen'
MOVINGAI_CELL_M = 1.0
PLANNERS = ('ours', 'ompl_exact', 'ompl_state')


def nav2_queries(world, checker, *, count: int, seed: int, min_distance_m: float):
    """Return ``count`` free start/goal pairs drawn with a seeded generator."""
    rng = np.random.default_rng(seed)
    x_min, y_min, x_max, y_max = world.bounds_m
    queries = []
    # Most random points are free, so this bound is never reached in practice.
    for _ in range(100_000):
        if len(queries) == count:
            break
        pair = rng.uniform((x_min, y_min), (x_max, y_max), size=(2, 2))
        if (np.hypot(*(pair[1] - pair[0])) >= min_distance_m
                and np.all(checker.points_free(pair))):
            queries.append(pair)
    return queries


def movingai_queries(checker, *, count: int, min_distance_m: float):
    """Return the first ``count`` tasks of the scenario at least ``min_distance_m`` apart."""
    queries = []
    for task in load_scenario(MOVINGAI_SCENARIO, cell_size_m=MOVINGAI_CELL_M):
        pair = np.array([task.start_xy_m, task.goal_xy_m], dtype=float)
        if np.hypot(*(pair[1] - pair[0])) >= min_distance_m and np.all(
                checker.points_free(pair)):
            queries.append(pair)
        if len(queries) == count:
            break
    return queries


class ShapelyScene:
    """Exact shapely checks for OMPL's callbacks: the prepared obstacle union."""

    def __init__(self, world, radius_m: float) -> None:
        self.union = shapely.union_all(world.obstacles)
        shapely.prepare(self.union)
        self.radius_m = radius_m
        x_min, y_min, x_max, y_max = world.bounds_m
        self.inner_bounds = (x_min + radius_m, y_min + radius_m, x_max - radius_m,
                             y_max - radius_m)

    def point_free(self, x: float, y: float) -> bool:
        return not self.union.dwithin(Point(x, y), self.radius_m)

    def edge_free(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return not self.union.dwithin(LineString([(x0, y0), (x1, y1)]), self.radius_m)


class _Clock:
    """Wall-clock and process CPU time since construction. CPU time leaves out the time other
    processes hold the cores, so it varies less on a shared machine."""

    def __init__(self) -> None:
        self._wall_s = time.perf_counter()
        self._cpu_s = time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self._wall_s, time.process_time() - self._cpu_s


def make_ompl_runner(scene: ShapelyScene, *, exact_edges: bool, resolution_m: float,
                     time_limit_s: float):
    from ompl import base as ob
    from ompl import geometric as og

    x_min, y_min, x_max, y_max = scene.inner_bounds
    space = ob.RealVectorStateSpace(2)
    bounds = ob.RealVectorBounds(2)
    bounds.setLow(0, x_min)
    bounds.setLow(1, y_min)
    bounds.setHigh(0, x_max)
    bounds.setHigh(1, y_max)
    space.setBounds(bounds)

    class ExactEdgeValidator(ob.MotionValidator):
        """One shapely check per edge; the state space bounds keep edges inside the map."""

        def checkMotion(self, state_a, state_b):
            return scene.edge_free(state_a[0], state_a[1], state_b[0], state_b[1])

    def run(start, goal):
        setup = og.SimpleSetup(space)
        setup.setStateValidityChecker(lambda state: scene.point_free(state[0], state[1]))
        info = setup.getSpaceInformation()
        validator = None
        if exact_edges:
            validator = ExactEdgeValidator(info)
            info.setMotionValidator(validator)
        else:
            extent_m = space.getMaximumExtent()
            info.setStateValidityCheckingResolution(resolution_m / extent_m)
        start_state = space.allocState()
        goal_state = space.allocState()
        start_state[0], start_state[1] = float(start[0]), float(start[1])
        goal_state[0], goal_state[1] = float(goal[0]), float(goal[1])
        setup.setStartAndGoalStates(start_state, goal_state)
        setup.setPlanner(og.RRTConnect(info))
        setup.setup()
        began = _Clock()
        solved = setup.solve(time_limit_s)
        exact = bool(solved) and setup.haveExactSolutionPath()
        if exact:
            setup.simplifySolution()
        elapsed = began.elapsed()
        path = None
        if exact:
            solution = setup.getSolutionPath()
            path = np.array([[solution.getState(i)[0], solution.getState(i)[1]]
                             for i in range(solution.getStateCount())])
        del validator, setup
        return elapsed, path

    return run


def run_ours(checker, settings, start, goal, seed):
    from mapl_robotics.errors import PlanningError

    began = _Clock()
    try:
        result = plan_path(checker, start, goal, settings=settings,
                           rng=np.random.default_rng(seed))
    except PlanningError:
        return began.elapsed(), None
    return began.elapsed(), result.xy_m


def summarize(samples, checker):
    times_ms = [1e3 * wall_s for (wall_s, _), _ in samples]
    cpu_ms = [1e3 * cpu_s for (_, cpu_s), _ in samples]
    solved = [path for _, path in samples if path is not None]
    lengths = [path_length_m(path) for path in solved]
    valid = [bool(checker.path_free(path)) for path in solved]
    return {
        'queries': len(samples),
        'median_ms': statistics.median(times_ms),
        'p90_ms': float(np.percentile(times_ms, 90)),
        'median_cpu_ms': statistics.median(cpu_ms),
        'p90_cpu_ms': float(np.percentile(cpu_ms, 90)),
        'success': len(solved) / len(samples),
        'median_length_m': statistics.median(lengths) if lengths else math.nan,
        'exactly_valid': (sum(valid) / len(valid)) if valid else math.nan,
    }


def bench_map(name, world, radius_m, queries, *, settings, seed, time_limit_s,
              resolution_m, progress):
    checker = world.checker(radius_m)
    scene = ShapelyScene(world, radius_m)
    runners = {
        'ours': lambda start, goal, index: run_ours(checker, settings, start, goal,
                                                    seed + index),
        'ompl_exact': make_ompl_runner(scene, exact_edges=True, resolution_m=resolution_m,
                                       time_limit_s=time_limit_s),
        'ompl_state': make_ompl_runner(scene, exact_edges=False, resolution_m=resolution_m,
                                       time_limit_s=time_limit_s),
    }
    samples = {planner: [] for planner in PLANNERS}
    # One untimed warm-up query per planner builds caches (clearance field, STRtree).
    for planner in PLANNERS:
        start, goal = queries[0]
        if planner == 'ours':
            runners[planner](start, goal, 0)
        else:
            runners[planner](start, goal)
    # Interleave planners per query so machine load drifts affect all of them alike.
    for index, (start, goal) in enumerate(queries):
        for planner in PLANNERS:
            if planner == 'ours':
                samples[planner].append(runners[planner](start, goal, index))
            else:
                samples[planner].append(runners[planner](start, goal))
            progress.update(1)
    summary = {planner: summarize(samples[planner], checker) for planner in PLANNERS}
    ours = summary['ours']
    ratios = {}
    for peer in ('ompl_exact', 'ompl_state'):
        ratios[f'ours_over_{peer}_median_ms'] = ours['median_ms'] / summary[peer]['median_ms']
        ratios[f'ours_over_{peer}_median_cpu_ms'] = (ours['median_cpu_ms']
                                                     / summary[peer]['median_cpu_ms'])
        ratios[f'ours_over_{peer}_median_length'] = (ours['median_length_m']
                                                     / summary[peer]['median_length_m'])
    return {'map': name, 'radius_m': radius_m, 'planners': summary, 'ratios': ratios}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=Path, required=True, help='output JSON file')
    parser.add_argument('--queries', type=int, default=30, help='queries per map')
    parser.add_argument('--seed', type=int, default=2026, help='seed for queries and planners')
    parser.add_argument('--radius-m', type=float, default=0.25, help='robot radius in metres')
    parser.add_argument('--min-distance-m', type=float, default=10.0,
                        help='minimum straight-line distance between start and goal')
    parser.add_argument('--time-limit-s', type=float, default=5.0,
                        help='time budget per query for every planner')
    parser.add_argument('--resolution-m', type=float, default=0.125,
                        help='state spacing of the resolution-based OMPL motion check')
    args = parser.parse_args(argv)

    from ompl import util as ou

    ou.setLogLevel(ou.LOG_WARN)
    ou.RNG.setSeed(args.seed)
    settings = PlannerSettings(time_budget_s=args.time_limit_s)

    nav2 = load_map(NAV2_MAP)
    movingai = load_map(MOVINGAI_MAP, cell_size_m=MOVINGAI_CELL_M)
    maps = [
        ('nav2_warehouse', nav2,
         nav2_queries(nav2, nav2.checker(args.radius_m), count=args.queries, seed=args.seed,
                      min_distance_m=args.min_distance_m)),
        ('movingai_warehouse-10-20-10-2-1', movingai,
         movingai_queries(movingai.checker(args.radius_m), count=args.queries,
                          min_distance_m=args.min_distance_m)),
    ]
    total = sum(len(queries) for _, _, queries in maps) * len(PLANNERS)
    results = []
    with tqdm(total=total, desc='planning queries', file=sys.stderr) as progress:
        for name, world, queries in maps:
            results.append(bench_map(name, world, args.radius_m, queries, settings=settings,
                                     seed=args.seed, time_limit_s=args.time_limit_s,
                                     resolution_m=args.resolution_m, progress=progress))
    output = {
        'command': 'python bench/planning.py ' + ' '.join(argv if argv is not None
                                                          else sys.argv[1:]),
        'machine': {'python': platform.python_version(), 'processor': platform.processor(),
                    'cpus': __import__('os').cpu_count()},
        'settings': {'radius_m': args.radius_m, 'queries_per_map': args.queries,
                     'seed': args.seed, 'min_distance_m': args.min_distance_m,
                     'time_limit_s': args.time_limit_s, 'ompl_resolution_m': args.resolution_m,
                     'movingai_cell_m': MOVINGAI_CELL_M,
                     'movingai_scenario': MOVINGAI_SCENARIO.name,
                     'ours': {'algorithm': settings.algorithm,
                              'step_size_m': settings.step_size_m,
                              'connect_batch': settings.connect_batch,
                              'smoothing_iterations': settings.smoothing_iterations,
                              'shortcut_batch': settings.shortcut_batch}},
        'maps': results,
    }
    args.json.write_text(json.dumps(output, indent=2) + '\n')
    for result in results:
        for planner, summary in result['planners'].items():
            print(f"{result['map']:34s} {planner:11s} median {summary['median_ms']:7.2f} ms  "
                  f"p90 {summary['p90_ms']:7.2f} ms  "
                  f"cpu median {summary['median_cpu_ms']:7.2f} ms  success {summary['success']:.2f}  "
                  f"length {summary['median_length_m']:6.2f} m  "
                  f"exactly valid {summary['exactly_valid']:.2f}")
        print('  ratios: ' + ', '.join(f'{key} {value:.2f}'
                                       for key, value in result['ratios'].items()))
    gc.collect()
    return 0


if __name__ == '__main__':
    sys.exit(main())
