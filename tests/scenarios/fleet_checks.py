"""Checks shared by the end-to-end scenario tests."""

from __future__ import annotations

from mapl_robotics.sim.runner import RunOptions, run_scenario


def run(scenario, out_dir, *, mode: str) -> dict:
    """Run ``scenario`` without pictures or progress bar and return its metrics."""
    result = run_scenario(scenario, RunOptions(out_dir=out_dir, mode=mode, progress=False,
                                               plots=False))
    return result.metrics


def assert_fleet_safe_and_done(metrics: dict) -> None:
    """Assert zero collisions, every live robot arrived, and a conflict-free ledger history."""
    assert metrics['collisions']['robot-robot'] == 0, metrics['collision_events']
    assert metrics['collisions']['robot-static'] == 0, metrics['collision_events']
    assert metrics['collisions']['robot-moving'] == 0, metrics['collision_events']
    assert metrics['failed_to_arrive'] == [], metrics['agent_status']
    assert metrics['live_reached'] == metrics['live_robots']
    assert metrics['ledger_history']['commits_checked'] > 0
    assert metrics['no_conflicting_commits'] is True, metrics['ledger_history']
    assert metrics['min_separation_m'] > 0.0
    assert metrics['success'] is True
