"""End-to-end fleet scenarios: real agents, the ledger, and the PyBullet simulator.

In-process runs step the real agent loops against the ledger's replicated state machine. The
fault scenarios run multi-process (ledger node processes, one agent process per robot, the
CurveZMQ mesh), because their faults act on real processes and sockets.
"""

from __future__ import annotations

import logging

import pytest

from mapl_robotics.sim.scenario import load_scenario_file, movingai_scenario
from tests.scenarios.fleet_checks import assert_fleet_safe_and_done, run

WAREHOUSE_SCEN = ('maps/movingai/warehouse-10-20-10-2-1/'
                  'warehouse-10-20-10-2-1-even-1.scen')


@pytest.mark.timeout(600)
def test_movingai_warehouse_eight_robots(out_dir):
    scenario = movingai_scenario(WAREHOUSE_SCEN, agents=8, cell_size_m=1.0, seed=1)
    metrics = run(scenario, out_dir, mode='in-process')
    assert metrics['robots'] == 8
    assert_fleet_safe_and_done(metrics)
    assert metrics['makespan_s'] is not None


@pytest.mark.timeout(300)
def test_corridor_swap_with_passing_bay(out_dir):
    metrics = run(load_scenario_file('corridor_swap'), out_dir, mode='in-process')
    assert_fleet_safe_and_done(metrics)


@pytest.mark.timeout(300)
def test_corridor_swap_repeats_with_seed(tmp_path):
    # Fields that measure the machine rather than the run.
    timing = ('wall_time_s', 'real_time_factor', 'planning_ms', 'commit_ms', 'mesh_ms',
              'mesh_p99_ms')
    runs = []
    for name in ('first', 'second'):
        metrics = run(load_scenario_file('corridor_swap').with_seed(5), tmp_path / name,
                      mode='in-process')
        runs.append({key: value for key, value in metrics.items() if key not in timing})
    assert runs[0]['success'] is True
    assert runs[0] == runs[1]


@pytest.mark.timeout(300)
def test_four_way_intersection(out_dir):
    metrics = run(load_scenario_file('four_way'), out_dir, mode='in-process')
    assert metrics['robots'] == 4
    assert_fleet_safe_and_done(metrics)


@pytest.mark.timeout(300)
def test_moving_obstacles_cross_paths(out_dir):
    metrics = run(load_scenario_file('moving_crossing'), out_dir, mode='in-process')
    assert_fleet_safe_and_done(metrics)
    # The walker and the forklift were simulated and kept clear of every robot.
    assert metrics['min_moving_obstacle_gap_m'] is not None
    assert metrics['min_moving_obstacle_gap_m'] > 0.0


@pytest.mark.timeout(600)
def test_ledger_leader_killed_mid_run(out_dir, caplog):
    with caplog.at_level(logging.WARNING, logger='mapl_robotics.sim.multiprocess'):
        metrics = run(load_scenario_file('fault_kill_leader'), out_dir, mode='multi-process')
    assert_fleet_safe_and_done(metrics)
    [event] = [e for e in metrics['fault_events'] if e['type'] == 'kill_leader']
    assert event['node'].startswith('ledger_')
    assert event['new_leader'] is not None
    assert event['new_leader'] != event['node']
    # The fault line is logged before the election, so the outcome gets a line of its own.
    assert any(f'{event["new_leader"]} is the new leader' in record.getMessage()
               for record in caplog.records)


@pytest.mark.timeout(600)
def test_ten_percent_message_loss(out_dir):
    metrics = run(load_scenario_file('fault_message_loss'), out_dir, mode='multi-process')
    assert_fleet_safe_and_done(metrics)
    assert [e['rate'] for e in metrics['fault_events'] if e['type'] == 'message_loss'] == [0.1]
    # Plans reached the simulator over the lossy mesh.
    assert metrics['mesh_messages'] > 0
    assert metrics['mesh_ms']['count'] > 0


@pytest.mark.timeout(600)
def test_agent_killed_robot_stops(out_dir):
    metrics = run(load_scenario_file('fault_kill_agent'), out_dir, mode='multi-process')
    assert metrics['dead_robots'] == ['r1']
    assert_fleet_safe_and_done(metrics)
    # The robot without an agent ends at rest where its last committed plan ends.
    final = metrics['final_pose']['r1']
    assert abs(final['speed_mps']) < 0.01
    assert final['distance_to_last_plan_end_m'] < 0.05


@pytest.mark.timeout(600)
def test_partition_heals_without_conflicts(out_dir):
    metrics = run(load_scenario_file('fault_partition'), out_dir, mode='multi-process')
    assert_fleet_safe_and_done(metrics)
    kinds = [event['type'] for event in metrics['fault_events']]
    assert kinds == ['partition', 'heal']
    assert metrics['fault_events'][0]['nodes'] == ['ledger_0', 'r0']
