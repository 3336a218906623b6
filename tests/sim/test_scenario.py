"""Scenario loading: bundled files, MovingAI import, invalid input."""

from __future__ import annotations

import logging
import shutil

import pytest
import yaml

from mapl_robotics.errors import ScenarioError
from mapl_robotics.resources import bundled_path, share_dir
from mapl_robotics.sim.scenario import (DEFAULT_SCENARIO, bundled_scenarios, load_scenario_file,
                                        movingai_scenario)

WAREHOUSE_SCEN = ('maps/movingai/warehouse-10-20-10-2-1/'
                  'warehouse-10-20-10-2-1-even-1.scen')


@pytest.mark.parametrize('name', ['warehouse_default', 'corridor_swap', 'four_way',
                                  'moving_crossing', 'fault_kill_leader', 'fault_kill_agent',
                                  'fault_message_loss', 'fault_partition'])
def test_bundled_scenario_loads(name):
    assert name in bundled_scenarios()
    scenario = load_scenario_file(name)
    assert scenario.name == name
    assert len(scenario.robots) >= 2
    for robot in scenario.robots:
        checker = scenario.world.checker(robot.radius_m)
        assert checker.point_free(robot.start_xy_m)
        assert checker.point_free(robot.goal_xy_m)


def test_default_scenario_is_main_job_sized():
    scenario = load_scenario_file(DEFAULT_SCENARIO)
    assert len(scenario.robots) >= 8
    assert len(scenario.moving_obstacles) >= 2
    assert scenario.world.name == 'warehouse-10-20-10-2-1'


def test_movingai_takes_first_pairs():
    scenario = movingai_scenario(WAREHOUSE_SCEN, agents=3, cell_size_m=1.0, seed=4)
    assert [robot.robot_id for robot in scenario.robots] == ['r0', 'r1', 'r2']
    # First line of the file: start cell (69, 39), goal cell (139, 11) on a 63-row map.
    assert scenario.robots[0].start_xy_m == (69.5, 23.5)
    assert scenario.robots[0].goal_xy_m == (139.5, 51.5)
    assert scenario.robots[0].radius_m == pytest.approx(0.3)
    assert scenario.seed == 4


def test_movingai_too_many_agents_rejected():
    with pytest.raises(ScenarioError, match='--agents'):
        movingai_scenario(WAREHOUSE_SCEN, agents=100_000, cell_size_m=1.0)


def test_unknown_scenario_rejected():
    with pytest.raises(ScenarioError, match='bundled scenarios: .*four_way'):
        load_scenario_file('no_such_scenario')


def test_start_inside_obstacle_rejected(tmp_path):
    document = yaml.safe_load(open(load_scenario_file('four_way').source))
    document['map']['path'] = str(load_scenario_file('four_way').spec.map.path)
    document['robots'][0]['start'] = [2.0, 2.0]
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ScenarioError, match='north start'):
        load_scenario_file(path)


def test_invalid_scenario_message_reads_once(tmp_path):
    document = yaml.safe_load(open(load_scenario_file('four_way').source))
    document['map']['path'] = str(load_scenario_file('four_way').spec.map.path)
    document['robots'][1]['radius_m'] = -0.3
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ScenarioError) as caught:
        load_scenario_file(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"scenario file '{path}' is not a valid fleet spec: 1 problem"
    assert len(lines) == 2
    assert lines[1].startswith('  robots[1].radius_m: must be greater than 0')
    assert str(caught.value).count(str(path)) == 1


def test_copied_scenario_finds_bundled_map(tmp_path, caplog):
    copy = tmp_path / 'four_way.yaml'
    shutil.copy(load_scenario_file('four_way').source, copy)
    with caplog.at_level(logging.INFO, logger='mapl_robotics.spec.fleet'):
        scenario = load_scenario_file(copy)
    assert scenario.spec.map.path == bundled_path('sim/scenarios/maps/four_way.yaml').resolve()
    assert scenario.source == copy
    fallbacks = [record.getMessage() for record in caplog.records
                 if record.levelno == logging.INFO and 'using the bundled' in record.getMessage()]
    assert len(fallbacks) == 1
    assert 'maps/four_way.yaml' in fallbacks[0]


def test_bundled_scenario_loads_quietly(caplog):
    # The default scenario names its map by its path from the data root, which logs no INFO.
    with caplog.at_level(logging.INFO, logger='mapl_robotics.spec.fleet'):
        scenario = load_scenario_file(DEFAULT_SCENARIO)
    assert scenario.spec.map.path.is_file()
    fallbacks = [record.getMessage() for record in caplog.records
                 if record.levelno >= logging.INFO and 'using the bundled' in record.getMessage()]
    assert fallbacks == []


def test_missing_map_error_names_locations(tmp_path):
    document = yaml.safe_load(load_scenario_file('four_way').source.read_text())
    document['map']['path'] = 'maps/no_such_map.yaml'
    path = tmp_path / 'lost.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ScenarioError) as caught:
        load_scenario_file(path)
    message = str(caught.value)
    assert str(tmp_path / 'maps' / 'no_such_map.yaml') in message
    assert str(share_dir() / 'sim' / 'scenarios' / 'maps' / 'no_such_map.yaml') in message
    assert str(share_dir() / 'maps' / 'no_such_map.yaml') in message
    assert 'Pass an absolute path, or copy the file next to the spec file' in message


def test_with_seed_changes_both_seeds():
    scenario = load_scenario_file('four_way').with_seed(99)
    assert scenario.seed == 99
    assert scenario.spec.planner.seed == 99


def test_sim_agent_uses_spec_loop_settings():
    from mapl_robotics.coordination import generate_key_pair
    from mapl_robotics.sim.agents import (AgentStats, InProcessLedger, build_agent,
                                          in_process_client, ledger_config_for)

    scenario = load_scenario_file('corridor_swap')
    planner = scenario.spec.planner.model_copy(update={'max_replans': 7, 'clearance_m': 0.25})
    spec = scenario.spec.model_copy(update={'planner': planner})
    robot_id = spec.robots[0].id
    stats = AgentStats()
    private_key, _ = generate_key_pair()
    client = in_process_client(InProcessLedger(ledger_config_for(spec)), robot_id,
                               stats=stats, private_key=private_key)
    agent = build_agent(spec, robot_id, world=scenario.world, client=client, stats=stats)
    try:
        assert agent.settings.max_attempts == 7
        assert agent.settings.clearance_m == 0.25
    finally:
        agent.close()
