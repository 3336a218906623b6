"""Run metrics: what happened in a simulation, as numbers, written to ``metrics.json``.

:class:`ArrivalTracker` decides when each robot arrived, and :func:`percentiles` summarizes
latency samples. :func:`check_ledger_history` replays the ledger's commit history and checks the
safety invariant: no two committed plans ever conflicted. :func:`build_metrics` puts it all into
one JSON-ready mapping whose keys the Simulator section of ``docs/architecture.md`` lists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np


__all__ = ['ArrivalTracker', 'HistoryCheck', 'percentiles', 'check_ledger_history',
           'build_metrics', 'write_metrics']


def percentiles(samples: Iterable[float]) -> dict[str, float | int | None]:
    """Return ``{'p50', 'p99', 'max', 'count'}`` of ``samples``; ``None`` values when empty."""
    values = np.asarray([value for value in samples if math.isfinite(value)], dtype=float)
    if values.size == 0:
        return {'p50': None, 'p99': None, 'max': None, 'count': 0}
    return {'p50': round(float(np.percentile(values, 50)), 3),
            'p99': round(float(np.percentile(values, 99)), 3),
            'max': round(float(values.max()), 3),
            'count': int(values.size)}


class ArrivalTracker:
    """Records when each robot reached its goal.

    A robot has arrived once its centre is within ``tolerance_m`` of its goal and nearly at rest.
    Its arrival time is the last time it entered that state, so a robot that passes through its
    goal and leaves again arrives later, when it comes back to stay.
    """

    def __init__(self, goals_xy_m: Mapping[str, Sequence[float]], *,
                 tolerance_m: float = 0.1, rest_speed_mps: float = 0.05) -> None:
        self.goals_xy_m = {robot: (float(goal[0]), float(goal[1]))
                           for robot, goal in goals_xy_m.items()}
        self.tolerance_m = float(tolerance_m)
        self.rest_speed_mps = float(rest_speed_mps)
        self.arrival_s: dict[str, float | None] = {robot: None for robot in goals_xy_m}

    def update(self, t_s: float, robot_id: str, xy_m, speed_mps: float) -> None:
        goal = self.goals_xy_m[robot_id]
        at_goal = (math.hypot(float(xy_m[0]) - goal[0], float(xy_m[1]) - goal[1])
                   <= self.tolerance_m and abs(speed_mps) <= self.rest_speed_mps)
        if at_goal and self.arrival_s[robot_id] is None:
            self.arrival_s[robot_id] = float(t_s)
        elif not at_goal:
            self.arrival_s[robot_id] = None

    def arrived(self, robot_id: str) -> bool:
        return self.arrival_s[robot_id] is not None

    @property
    def all_arrived(self) -> bool:
        return all(value is not None for value in self.arrival_s.values())


@dataclasses.dataclass(frozen=True)
class HistoryCheck:
    """Result of replaying the ledger's commit history."""

    commits_checked: int
    violations: tuple[dict, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict:
        return {'ok': self.ok, 'commits_checked': self.commits_checked,
                'violations': [{key: list(value) if isinstance(value, tuple) else value
                                for key, value in violation.items()}
                               for violation in self.violations]}


def check_ledger_history(records: Sequence, *, clearance_m: float) -> HistoryCheck:
    """Re-check that no two committed plans ever conflicted, over the ledger's full history.

    ``records`` are the ledger's :class:`~mapl_robotics.coordination.CommitRecord` entries in
    log order. The replay is :func:`~mapl_robotics.coordination.audit_history`: it rebuilds each
    robot's effective motion from its commits and compares every pair of robots over the time
    both were registered.
    """
    from mapl_robotics.coordination import audit_history
    violations = audit_history(list(records), clearance_m=clearance_m)
    return HistoryCheck(commits_checked=len(records), violations=tuple(violations))


def build_metrics(*, scenario: str, mode: str, seed: int, robot_ids: Sequence[str],
                  dead_robot_ids: Iterable[str], arrival_s: Mapping[str, float | None],
                  path_length_m: Mapping[str, float], collision_counts: Mapping[str, int],
                  collision_events: Sequence[dict], min_separation_m: float,
                  min_separation_bullet_m: float, min_obstacle_gap_m: float,
                  planning_ms: Sequence[float], commit_ms: Sequence[float],
                  mesh_latency_ms: Sequence[float], deadline_misses: int, replans: int,
                  fault_events: Sequence[dict], history: HistoryCheck | None,
                  sim_time_s: float, wall_time_s: float, all_committed_s: float | None,
                  max_tracking_error_m: float, extra: Mapping | None = None) -> dict:
    """Return the metrics of one run as a JSON-ready mapping."""
    dead = set(dead_robot_ids)
    live = [robot for robot in robot_ids if robot not in dead]
    reached = [robot for robot in robot_ids if arrival_s.get(robot) is not None]
    live_arrivals = [arrival_s[robot] for robot in live if arrival_s.get(robot) is not None]
    every_live_arrived = len(live_arrivals) == len(live)
    collisions_total = int(sum(collision_counts.values()))
    metrics = {
        'scenario': scenario,
        'mode': mode,
        'seed': int(seed),
        'robots': len(robot_ids),
        'reached': len(reached),
        'live_robots': len(live),
        'live_reached': len(live_arrivals),
        'failed_to_arrive': sorted(robot for robot in live if arrival_s.get(robot) is None),
        'dead_robots': sorted(dead),
        'collisions': {**{kind: int(count) for kind, count in collision_counts.items()},
                       'total': collisions_total},
        'collision_events': list(collision_events),
        'min_separation_m': _rounded(min_separation_m),
        'min_separation_bullet_m': _rounded(min_separation_bullet_m),
        'min_moving_obstacle_gap_m': _rounded(min_obstacle_gap_m),
        'makespan_s': round(max(live_arrivals), 3) if every_live_arrived and live_arrivals
        else None,
        'sum_of_costs_s': round(float(sum(live_arrivals)), 3) if every_live_arrived else None,
        'arrival_s': {robot: _rounded(arrival_s.get(robot)) for robot in robot_ids},
        'path_length_m': {robot: round(float(path_length_m[robot]), 3) for robot in robot_ids},
        'planning_ms': percentiles(planning_ms),
        'commit_ms': percentiles(commit_ms),
        'mesh_p99_ms': percentiles(mesh_latency_ms)['p99'],
        'mesh_ms': percentiles(mesh_latency_ms),
        'deadline_misses': int(deadline_misses),
        'replans': int(replans),
        'fault_events': list(fault_events),
        'no_conflicting_commits': history.ok if history is not None else None,
        'ledger_history': history.to_json() if history is not None else None,
        'all_committed_s': _rounded(all_committed_s),
        'sim_time_s': round(float(sim_time_s), 3),
        'wall_time_s': round(float(wall_time_s), 3),
        'real_time_factor': round(float(sim_time_s) / wall_time_s, 3) if wall_time_s > 0
        else None,
        'max_tracking_error_m': round(float(max_tracking_error_m), 4),
    }
    metrics['success'] = bool(collisions_total == 0 and every_live_arrived
                              and (history is None or history.ok))
    if extra:
        metrics.update(extra)
    return metrics


def _rounded(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def write_metrics(metrics: Mapping, out_dir: str | Path) -> Path:
    """Write ``metrics.json`` into ``out_dir`` and return its path."""
    path = Path(out_dir) / 'metrics.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=False) + '\n', encoding='utf-8')
    return path
