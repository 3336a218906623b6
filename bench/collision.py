"""Micro-benchmark of batched collision checks on nav2's warehouse and MovingAI's warehouse.

Times ``CollisionChecker.segments_free`` and ``points_free`` on seeded random queries in
batches, next to one GEOS ``dwithin`` query per batch (the exact check the fast path must
agree with), and prints microseconds per edge and per point. It also counts disagreements
with GEOS, which must be zero.

    python bench/collision.py --radius-m 0.3 --batch 100 --batches 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import shapely

from mapl_robotics.geometry import field_kernels
from mapl_robotics.geometry.maps import load_map

REPO_ROOT = Path(__file__).resolve().parent.parent
MAPS = {
    'nav2_warehouse': (REPO_ROOT / 'maps/ros/warehouse.yaml', None),
    'movingai_warehouse': (REPO_ROOT / 'maps/movingai/warehouse-10-20-10-2-1/'
                           'warehouse-10-20-10-2-1.map', 1.0),
}


def inside_inner_bounds(world, radius_m: float, xy: np.ndarray) -> np.ndarray:
    """Return whether a disc of ``radius_m`` centred at each point stays inside the bounds."""
    x_min, y_min, x_max, y_max = world.bounds_m
    return ((xy[:, 0] >= x_min + radius_m) & (xy[:, 0] <= x_max - radius_m)
            & (xy[:, 1] >= y_min + radius_m) & (xy[:, 1] <= y_max - radius_m))


def geos_blocked(world, radius_m: float, geometries: np.ndarray) -> np.ndarray:
    """Return whether each geometry comes closer than the radius to an obstacle, by GEOS."""
    tree = world.strtree()
    blocked = np.zeros(len(geometries), dtype=bool)
    if radius_m == 0.0:
        # A zero-radius robot collides on touching, which dwithin at distance 0 cannot tell.
        blocked[tree.query(geometries, predicate='intersects')[0]] = True
        return blocked
    query, obstacle = tree.query(geometries, predicate='dwithin', distance=radius_m)
    close = shapely.distance(geometries[query], tree.geometries.take(obstacle)) < radius_m
    blocked[query[close]] = True
    return blocked


def exact_segments_free(checker, start, end) -> np.ndarray:
    """Return the GEOS-only result: inside the inner bounds and no obstacle within radius."""
    world, radius_m = checker.world, checker.radius_m
    inside = inside_inner_bounds(world, radius_m, start) & inside_inner_bounds(world, radius_m,
                                                                                end)
    lines = shapely.linestrings(np.stack([start, end], axis=1))
    return inside & ~geos_blocked(world, radius_m, lines)


def exact_points_free(checker, xy) -> np.ndarray:
    """Return the GEOS-only result for points."""
    world, radius_m = checker.world, checker.radius_m
    return (inside_inner_bounds(world, radius_m, xy)
            & ~geos_blocked(world, radius_m, shapely.points(xy)))


def random_edges(world, rng, count, max_length_m):
    x_min, y_min, x_max, y_max = world.bounds_m
    start = rng.uniform((x_min, y_min), (x_max, y_max), size=(count, 2))
    angle = rng.uniform(-np.pi, np.pi, size=count)
    length = rng.uniform(0.0, max_length_m, size=count)
    end = start + length[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return start, end


def time_per_item_us(function, batches) -> float:
    samples = []
    for batch in batches:
        began = time.perf_counter()
        function(*batch)
        samples.append((time.perf_counter() - began) / len(batch[0]) * 1e6)
    return statistics.median(samples)


def run(args) -> dict:
    results = {}
    for name, (path, cell_size_m) in MAPS.items():
        world = load_map(path, cell_size_m=cell_size_m)
        checker = world.checker(args.radius_m)
        rng = np.random.default_rng(args.seed)
        # Edges from free starts, as a planner produces them.
        edge_batches = []
        point_batches = []
        while len(edge_batches) < args.batches:
            start, end = random_edges(world, rng, 4 * args.batch, args.max_edge_m)
            keep = checker.points_free(start)
            start, end = start[keep][:args.batch], end[keep][:args.batch]
            if len(start) == args.batch:
                edge_batches.append((start, end))
                point_batches.append((end,))
        edges_us = time_per_item_us(checker.segments_free, edge_batches)
        exact_edges_us = time_per_item_us(lambda a, b: exact_segments_free(checker, a, b),
                                          edge_batches)
        points_us = time_per_item_us(checker.points_free, point_batches)
        exact_points_us = time_per_item_us(lambda p: exact_points_free(checker, p),
                                           point_batches)
        single_edge_us = time_per_item_us(
            lambda starts, ends: [checker.segment_free(a, b) for a, b in zip(starts, ends)],
            edge_batches[:20])
        single_point_us = time_per_item_us(
            lambda points: [checker.point_free(p) for p in points], point_batches[:20])
        all_start = np.concatenate([b[0] for b in edge_batches])
        all_end = np.concatenate([b[1] for b in edge_batches])
        fast = checker.segments_free(all_start, all_end)
        exact = exact_segments_free(checker, all_start, all_end)
        fast_points = checker.points_free(all_end)
        exact_points = exact_points_free(checker, all_end)
        codes = np.empty(len(all_start), dtype=np.int8)
        check = checker.compiled_check()
        field_kernels.classify_edges(*check[:12], np.ascontiguousarray(all_start),
                                     np.ascontiguousarray(all_end), *check[12:], codes)
        results[name] = {
            'radius_m': args.radius_m,
            'edges': int(len(all_start)),
            'edge_us': round(edges_us, 2),
            'edge_exact_geos_us': round(exact_edges_us, 2),
            'single_edge_call_us': round(single_edge_us, 2),
            'single_point_call_us': round(single_point_us, 2),
            'point_us': round(points_us, 2),
            'point_exact_geos_us': round(exact_points_us, 2),
            'edges_free_fraction': round(float(fast.mean()), 3),
            'edges_sent_to_geos_fraction': round(
                float(np.mean(codes == field_kernels.UNDECIDED)), 4),
            'edge_disagreements': int(np.count_nonzero(fast != exact)),
            'point_disagreements': int(np.count_nonzero(fast_points != exact_points)),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--radius-m', type=float, default=0.3, help='robot radius in metres')
    parser.add_argument('--batch', type=int, default=100, help='edges per batched call')
    parser.add_argument('--batches', type=int, default=200, help='number of batches per map')
    parser.add_argument('--max-edge-m', type=float, default=2.0,
                        help='edge lengths are uniform in [0, this] metres')
    parser.add_argument('--seed', type=int, default=7, help='seed of the query generator')
    parser.add_argument('--json', type=Path, help='also write the results to this file')
    args = parser.parse_args()
    results = run(args)
    for name, row in results.items():
        print(f'{name}: ' + ', '.join(f'{key}={value}' for key, value in row.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + '\n')


if __name__ == '__main__':
    main()
