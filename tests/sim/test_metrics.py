"""Metrics: percentiles, arrivals, the ledger history check, JSON output."""

from __future__ import annotations

import json

import pytest

from mapl_robotics.coordination import CommitRecord, FencingToken
from mapl_robotics.geometry import Trajectory
from mapl_robotics.sim.metrics import (ArrivalTracker, build_metrics, check_ledger_history,
                                       percentiles, write_metrics)


def test_percentiles_of_samples():
    summary = percentiles(range(1, 101))
    assert summary['p50'] == pytest.approx(50.5)
    assert summary['p99'] == pytest.approx(99.01)
    assert summary['count'] == 100


def test_percentiles_empty():
    assert percentiles([]) == {'p50': None, 'p99': None, 'max': None, 'count': 0}


def test_arrival_resets_when_robot_leaves_goal():
    tracker = ArrivalTracker({'r0': (1.0, 1.0)}, tolerance_m=0.1)
    tracker.update(1.0, 'r0', (1.0, 1.0), 0.0)
    assert tracker.arrival_s['r0'] == 1.0
    tracker.update(2.0, 'r0', (2.0, 1.0), 0.5)
    assert tracker.arrival_s['r0'] is None
    tracker.update(3.0, 'r0', (1.05, 1.0), 0.01)
    assert tracker.arrival_s['r0'] == 3.0
    assert tracker.all_arrived


def test_arrival_needs_rest():
    tracker = ArrivalTracker({'r0': (1.0, 1.0)})
    tracker.update(1.0, 'r0', (1.0, 1.0), 1.0)
    assert not tracker.arrived('r0')


def _record(index, robot_id, kind, rows, t_from_s=0.0):
    return CommitRecord(token=FencingToken(1, index), version=index, robot_id=robot_id,
                        kind=kind, t_from_s=t_from_s, radius_m=0.3,
                        trajectory=Trajectory.from_samples(rows))


def test_history_check_finds_conflicting_commits():
    records = [
        _record(1, 'a', 'register', [(0.0, 0.0, 0.0, 0.0)]),
        _record(2, 'b', 'register', [(0.0, 5.0, 0.0, 0.0)]),
        # Both robots drive to x = 2.5 at t = 2.5 s: a head-on conflict.
        _record(3, 'a', 'propose', [(0.0, 0.0, 0.0, 0.0), (5.0, 5.0, 0.0, 0.0)]),
        _record(4, 'b', 'propose', [(0.0, 5.0, 0.0, 0.0), (5.0, 0.0, 0.0, 0.0)]),
    ]
    check = check_ledger_history(records, clearance_m=0.1)
    assert not check.ok
    assert check.commits_checked == 4
    assert sorted(check.violations[0]['robots']) == ['a', 'b']


def test_history_check_accepts_separate_lanes():
    records = [
        _record(1, 'a', 'register', [(0.0, 0.0, 0.0, 0.0)]),
        _record(2, 'b', 'register', [(0.0, 0.0, 2.0, 0.0)]),
        _record(3, 'a', 'propose', [(0.0, 0.0, 0.0, 0.0), (5.0, 5.0, 0.0, 0.0)]),
        _record(4, 'b', 'propose', [(0.0, 0.0, 2.0, 0.0), (5.0, 5.0, 2.0, 0.0)]),
    ]
    assert check_ledger_history(records, clearance_m=0.1).ok


def test_metrics_json_has_required_keys(tmp_path):
    metrics = build_metrics(
        scenario='s', mode='in-process', seed=1, robot_ids=['a', 'b'], dead_robot_ids=['b'],
        arrival_s={'a': 4.0, 'b': None}, path_length_m={'a': 3.0, 'b': 0.0},
        collision_counts={'robot-robot': 0, 'robot-static': 0, 'robot-moving': 0},
        collision_events=[], min_separation_m=0.5, min_separation_bullet_m=0.5,
        min_obstacle_gap_m=float('inf'), planning_ms=[1.0, 2.0], commit_ms=[3.0],
        mesh_latency_ms=[], deadline_misses=0, replans=2, fault_events=[], history=None,
        sim_time_s=5.0, wall_time_s=1.0, all_committed_s=0.5, max_tracking_error_m=0.01)
    path = write_metrics(metrics, tmp_path)
    loaded = json.loads(path.read_text())
    for key in ('robots', 'reached', 'collisions', 'min_separation_m', 'makespan_s',
                'sum_of_costs_s', 'planning_ms', 'commit_ms', 'mesh_p99_ms',
                'deadline_misses', 'replans', 'fault_events', 'no_conflicting_commits'):
        assert key in loaded
    # The dead robot does not count against arrival; the live one set the makespan.
    assert loaded['makespan_s'] == 4.0
    assert loaded['failed_to_arrive'] == []
    assert loaded['success'] is True
    assert loaded['min_moving_obstacle_gap_m'] is None
