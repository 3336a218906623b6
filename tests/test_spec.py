"""Fleet spec: the roboticSystem block as given, extensions, and every kind of rejection."""

from __future__ import annotations

import copy
import json
import math
import pickle

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mapl_robotics.errors import SpecError, SpecFileNotFoundError
from mapl_robotics.geometry import ConstantVelocity, MovingObstacle, TimedWaypoints
from mapl_robotics.spec import (DURATION_UNITS, FleetSpec, format_duration, load_spec,
                                parse_duration, spec_json_schema)

GIVEN_BLOCK = {"roboticSystem": {
    "coordination": {"protocol": "consensus_based", "synchronization": "time_bounded"},
    "pathPlanning": {"algorithm": "distributed_rrt",
                     "constraints": {"collision_avoidance": True, "dynamic_obstacles": True}},
    "communication": {"mesh_network": True, "latency_bound": "100ms",
                      "reliability": "guaranteed_delivery"}}}


def robot(robot_id: str, start, goal, **extra) -> dict:
    fields = {'id': robot_id, 'radius_m': 0.3, 'max_speed_mps': 1.0, 'max_accel_mps2': 1.0,
              'start': start, 'goal': goal}
    fields.update(extra)
    return fields


def full_document() -> dict:
    document = copy.deepcopy(GIVEN_BLOCK)
    document.update({
        'name': 'two_robots',
        'map': {'path': 'maps/ros/warehouse.yaml'},
        'robots': [robot('r0', [0.0, 0.0, 1.57], [5.0, 0.0]),
                   robot('r1', [2.0, 0.0], [10.0, 0.0], drive='differential',
                         max_yaw_rate_radps=2.0)],
        'movingObstacles': [
            {'id': 'walker', 'kind': 'person', 'radius_m': 0.3,
             'motion': {'type': 'constant_velocity', 'start': [1.0, 3.0],
                        'velocity_mps': [0.0, -1.0], 't0_s': '2 s'}},
            {'id': 'truck', 'kind': 'forklift', 'radius_m': 1.0,
             'motion': {'type': 'waypoints', 'waypoints': [[0, 5, 5], [10, 5, -5]],
                        'loop': True}},
        ],
        'planner': {'algorithm': 'rrt_star', 'step_size_m': 0.4, 'seed': 7},
        'consensus': {'mode': 'cluster', 'node_count': 3, 'append_entries_period_s': '20ms'},
        'mesh': {'base_port': 48000, 'curve': False},
        'scenario': {'seed': 3, 'time_limit_s': '2 min', 'faults': [
            {'type': 'kill_leader', 'at_s': 5},
            {'type': 'kill_agent', 'robot': 'r1', 'at_s': '7.5 s'},
            {'type': 'message_loss', 'rate': 0.1},
            {'type': 'partition', 'at_s': 10, 'duration_s': 3, 'nodes': ['ledger_0', 'r0']},
        ]},
    })
    return document


def problems_of(document) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_spec(document)
    return dict(caught.value.problems)


def with_change(path: str, value) -> dict:
    """Return the given block with the value at a dotted key path replaced."""
    document = copy.deepcopy(GIVEN_BLOCK)
    keys = path.split('.')
    target = document
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return document


def test_given_block_accepted_as_is():
    spec = load_spec(GIVEN_BLOCK)
    assert spec.system.coordination.protocol == 'consensus_based'
    assert spec.system.coordination.synchronization == 'time_bounded'
    assert spec.system.path_planning.algorithm == 'distributed_rrt'
    assert spec.system.path_planning.constraints.collision_avoidance is True
    assert spec.system.path_planning.constraints.dynamic_obstacles is True
    assert spec.system.communication.mesh_network is True
    assert spec.system.communication.latency_bound_s == pytest.approx(0.1)
    assert spec.system.communication.reliability == 'guaranteed_delivery'
    assert spec.system.communication.acknowledged
    assert spec.hold_timeout_s == pytest.approx(0.1)
    assert spec.map is None
    assert spec.robots == ()


def test_given_block_defaults_for_sections():
    spec = load_spec(GIVEN_BLOCK)
    assert spec.planner.algorithm == 'rrt_connect'
    assert spec.consensus.mode == 'replica_per_robot'
    assert spec.mesh.curve is True
    assert spec.mesh.host == '127.0.0.1'
    assert spec.consensus.host == '127.0.0.1'
    assert spec.scenario.faults == ()


def test_full_document_fields():
    spec = load_spec(full_document())
    assert spec.map is not None and spec.map.path.is_absolute()
    assert spec.map.resolved_format == 'map_server'
    assert spec.robot_ids == ('r0', 'r1')
    assert spec.robots[0].start == (0.0, 0.0, 1.57)
    assert spec.robots[1].start == (2.0, 0.0, 0.0)
    assert spec.robots[1].drive == 'differential'
    assert spec.moving_obstacles[0].motion.t0_s == 2.0
    assert spec.planner.algorithm == 'rrt_star'
    assert spec.consensus.append_entries_period_s == pytest.approx(0.02)
    assert spec.scenario.time_limit_s == 120.0
    assert spec.scenario.faults[1].at_s == 7.5
    assert spec.ledger_node_names == ('ledger_0', 'ledger_1', 'ledger_2')
    assert spec.ledger_addresses() == ('127.0.0.1:47100', '127.0.0.1:47101', '127.0.0.1:47102')
    assert spec.mesh_endpoints()['r0'] == 'tcp://127.0.0.1:48000'
    assert spec.mesh_endpoints()['ledger_2'] == 'tcp://127.0.0.1:48004'


def test_dump_round_trip():
    spec = load_spec(full_document())
    dumped = spec.model_dump(mode='json')
    assert dumped['roboticSystem']['communication']['latency_bound'] == '0.1 s'
    assert load_spec(json.loads(json.dumps(dumped))) == spec


def test_yaml_and_json_files(tmp_path):
    document = full_document()
    yaml_path = tmp_path / 'fleet.yaml'
    yaml_path.write_text(yaml.safe_dump(document))
    json_path = tmp_path / 'fleet.json'
    json_path.write_text(json.dumps(document))
    assert load_spec(yaml_path) == load_spec(json_path) == load_spec(str(json_path))


def test_yaml_exponent_notation_numbers(tmp_path):
    document = full_document()
    path = tmp_path / 'fleet.yaml'
    text = yaml.safe_dump(document).replace('radius_m: 0.3', 'radius_m: 3e-1')
    text = text.replace('step_size_m: 0.4', 'step_size_m: 4e-1')
    assert 'radius_m: 3e-1' in text
    path.write_text(text)
    spec = load_spec(path)
    assert spec.robots[0].radius_m == 0.3
    assert spec.planner.step_size_m == 0.4
    assert spec == load_spec(document)


def test_json_file_with_byte_order_mark(tmp_path):
    path = tmp_path / 'fleet.json'
    path.write_bytes(b'\xef\xbb\xbf' + json.dumps(full_document()).encode())
    assert load_spec(path) == load_spec(full_document())


def test_relative_map_path_next_to_spec(tmp_path, maps_dir):
    (tmp_path / 'site').mkdir()
    target = tmp_path / 'site' / 'grid.map'
    target.write_bytes((maps_dir / 'movingai' / 'room-32-32-4' / 'room-32-32-4.map')
                       .read_bytes())
    document = copy.deepcopy(GIVEN_BLOCK)
    document['map'] = {'path': 'site/grid.map', 'cell_size_m': 0.5}
    spec_path = tmp_path / 'fleet.yaml'
    spec_path.write_text(yaml.safe_dump(document))
    spec = load_spec(spec_path)
    assert spec.map.path == target.resolve()
    assert spec.map.resolved_format == 'movingai'


def test_movingai_map_needs_cell_size():
    document = copy.deepcopy(GIVEN_BLOCK)
    document['map'] = {'path': 'maps/movingai/room-32-32-4/room-32-32-4.map'}
    problems = problems_of(document)
    assert 'cell_size_m' in problems['map']


def test_missing_map_file_named():
    document = copy.deepcopy(GIVEN_BLOCK)
    document['map'] = {'path': 'maps/no_such_map.yaml'}
    problems = problems_of(document)
    assert 'not found' in problems['map.path']


@pytest.mark.parametrize('text, seconds', [
    ('100ms', 0.1), ('0.1 s', 0.1), ('2 min', 120.0), ('1h', 3600.0), ('250 us', 250e-6),
    ('1.5e3 ms', 1.5), (' 3 seconds ', 3.0), (0.25, 0.25), (2, 2.0),
])
def test_duration_parser_accepts(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize('text', ['100 parsecs', 'fast', '-1 s', '1e999 s', 'nan s', '', True,
                                  None, [1]])
def test_duration_parser_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@settings(derandomize=True, max_examples=200)
@given(st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_duration_format_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@settings(derandomize=True, max_examples=200)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(DURATION_UNITS)),
       st.sampled_from(['', ' ']))
def test_duration_units_scale(count, unit, space):
    assert parse_duration(f'{count}{space}{unit}') == pytest.approx(count * DURATION_UNITS[unit])


def test_bad_unit_names_path_value_and_units():
    document = with_change('roboticSystem.communication.latency_bound', '100 parsecs')
    with pytest.raises(SpecError) as caught:
        load_spec(document)
    message = str(caught.value)
    assert 'roboticSystem.communication.latency_bound' in message
    assert "'100 parsecs'" in message
    assert 'ms, s, min' in message
    assert len(caught.value.problems) == 1


def test_latency_bound_needs_unit():
    problems = problems_of(with_change('roboticSystem.communication.latency_bound', 0.1))
    assert 'unit' in problems['roboticSystem.communication.latency_bound']


@pytest.mark.parametrize('path, value, expected', [
    ('roboticSystem.coordination.protocol', 'voting', 'consensus_based'),
    ('roboticSystem.coordination.synchronization', 'none', 'time_bounded'),
    ('roboticSystem.pathPlanning.algorithm', 'a_star', 'distributed_rrt'),
    ('roboticSystem.communication.reliability', 'maybe', 'best_effort'),
])
def test_unknown_enum_values(path, value, expected):
    problems = problems_of(with_change(path, value))
    assert expected in problems[path]
    assert repr(value) in problems[path]


def test_collision_avoidance_false_explained():
    path = 'roboticSystem.pathPlanning.constraints.collision_avoidance'
    problems = problems_of(with_change(path, False))
    assert 'never runs without' in problems[path]


def test_mesh_network_false_explained():
    path = 'roboticSystem.communication.mesh_network'
    problems = problems_of(with_change(path, False))
    assert 'ZeroMQ mesh' in problems[path]


def test_best_effort_accepted():
    spec = load_spec(with_change('roboticSystem.communication.reliability', 'best_effort'))
    assert not spec.system.communication.acknowledged


@pytest.mark.parametrize('path, value', [
    ('roboticSystem.pathPlanning.constraints.dynamic_obstacles', 'yes'),
    ('roboticSystem.pathPlanning.constraints.dynamic_obstacles', 1),
    ('roboticSystem.communication.mesh_network', 'true'),
    ('roboticSystem.coordination', 'consensus_based'),
])
def test_wrong_types(path, value):
    assert path in problems_of(with_change(path, value))


def test_unknown_keys_listed_with_allowed():
    document = with_change('roboticSystem.communication.reliabilty', 'best_effort')
    document['planer'] = {}
    problems = problems_of(document)
    assert 'reliability' in problems['roboticSystem.communication.reliabilty']
    assert 'planner' in problems['planer']


@pytest.mark.parametrize('path, value, expected', [
    ('roboticSystem.communication.latency_bound', '1 h', 'must be at most 60.0 s, got 3600.0 s'),
    ('roboticSystem.communication.latency_bound', '0ms', 'must be greater than 0.0 s, got 0.0 s'),
    ('robots.0.radius_m', 20, 'must be at most 10.0 m, got 20 m'),
    ('robots.0.max_accel_mps2', -1, 'must be greater than 0.0 m/s^2, got -1 m/s^2'),
    ('planner.goal_bias', 1.0, 'must be less than 1.0, got 1.0'),
    ('mesh.base_port', 80, 'must be at least 1024, got 80'),
])
def test_range_errors_give_units(path, value, expected):
    document = full_document()
    target = document
    keys = [int(key) if key.isdigit() else key for key in path.split('.')]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    location = '.'.join(str(key) for key in keys).replace('.0.', '[0].')
    assert problems_of(document)[location] == expected


def test_missing_required_key():
    document = copy.deepcopy(GIVEN_BLOCK)
    del document['roboticSystem']['communication']['latency_bound']
    problems = problems_of(document)
    assert 'missing' in problems['roboticSystem.communication.latency_bound']


def test_every_problem_listed_at_once():
    document = full_document()
    document['robots'][0]['radius_m'] = -0.3
    document['robots'][1]['start'] = [math.nan, 0.0]
    document['robots'][1]['max_speed_mps'] = '1'
    document['planner']['goal_bias'] = 1.5
    problems = problems_of(document)
    assert set(problems) == {'robots[0].radius_m', 'robots[1].start[0]',
                             'robots[1].max_speed_mps', 'planner.goal_bias'}
    assert '-0.3' in problems['robots[0].radius_m']


@pytest.mark.parametrize('value, expected', [
    ('abc', "must be a list of numbers such as [1.5, 2.0], got 'abc'"),
    ([1.0], 'needs at least 2 numbers, got [1.0]'),
    ([1.0, 2.0, 3.0, 4.0], 'must have at most 2 items, got [1.0, 2.0, 3.0, 4.0]'),
])
def test_malformed_goal_explained(value, expected):
    document = full_document()
    document['robots'][0]['goal'] = value
    assert problems_of(document)['robots[0].goal'] == expected


@pytest.mark.parametrize('value', [math.inf, -math.inf, math.nan])
def test_non_finite_goal_rejected(value):
    document = full_document()
    document['robots'][0]['goal'] = [value, 1.0]
    assert 'robots[0].goal[0]' in problems_of(document)


def test_nan_in_json_file_rejected(tmp_path):
    path = tmp_path / 'fleet.json'
    document = full_document()
    document['robots'][0]['start'] = [0.0, 0.0]
    path.write_text(json.dumps(document).replace('[0.0, 0.0]', '[NaN, 0.0]', 1))
    with pytest.raises(SpecError, match=r'robots\[0\]\.start\[0\]'):
        load_spec(path)


def test_duplicate_robot_ids():
    document = full_document()
    document['robots'][1]['id'] = 'r0'
    problems = problems_of(document)
    assert 'unique' in problems['robots[1].id']


def test_goal_equal_to_other_goal():
    document = full_document()
    document['robots'][1]['goal'] = [5.0, 0.0]
    problems = problems_of(document)
    assert "robot 'r0'" in problems['robots[1].goal']


def test_overlapping_starts():
    document = full_document()
    document['robots'][1]['start'] = [0.5, 0.0]
    assert 'robots[1].start' in problems_of(document)


def test_obstacle_id_clash_with_robot():
    document = full_document()
    document['movingObstacles'][0]['id'] = 'r1'
    assert 'movingObstacles[0].id' in problems_of(document)


def test_robot_id_must_suit_ros_names():
    document = full_document()
    document['robots'][0]['id'] = 'robot-1'
    assert 'robots[0].id' in problems_of(document)


def test_waypoint_times_must_increase():
    document = full_document()
    document['movingObstacles'][1]['motion']['waypoints'] = [[0, 1, 1], [0, 2, 2]]
    assert 'increase' in problems_of(document)['movingObstacles[1].motion']


def test_motion_errors_skip_union_tag():
    document = full_document()
    document['movingObstacles'][0]['motion']['speed'] = 2.0
    problems = problems_of(document)
    assert 'velocity_mps' in problems['movingObstacles[0].motion.speed']


def test_unknown_motion_type():
    document = full_document()
    document['movingObstacles'][0]['motion']['type'] = 'teleport'
    problems = problems_of(document)
    assert 'constant_velocity' in problems['movingObstacles[0].motion']


def test_consensus_timing_checked():
    document = full_document()
    document['consensus'].update(election_timeout_min_s='0.3 s', election_timeout_max_s='0.2 s')
    assert 'consensus' in problems_of(document)
    document['consensus'].update(election_timeout_min_s=0.03, election_timeout_max_s=0.06)
    assert 'less than a third' in problems_of(document)['consensus']


def test_heartbeat_third_of_election_timeout():
    document = full_document()
    document['consensus'].update(append_entries_period_s=0.05, election_timeout_min_s=0.15,
                                 election_timeout_max_s=0.3)
    problem = problems_of(document)['consensus']
    assert 'append_entries_period_s=0.05' in problem
    assert 'election_timeout_min_s=0.15' in problem
    document['consensus']['append_entries_period_s'] = 0.049
    assert load_spec(document).consensus.append_entries_period_s == pytest.approx(0.049)


def test_consensus_defaults_match_ledger():
    from mapl_robotics.coordination import LedgerSettings
    ledger = LedgerSettings(self_address='127.0.0.1:47100', peers=(), journal_dir='.')
    ours = load_spec(GIVEN_BLOCK).consensus
    for key in ('append_entries_period_s', 'election_timeout_min_s', 'election_timeout_max_s',
                'tick_s'):
        assert getattr(ours, key) == getattr(ledger, key), key


def test_reference_page_consensus_defaults():
    from mapl_robotics.spec import ConsensusSpec
    from tests.conftest import REPO_ROOT
    defaults = ConsensusSpec()
    text = (REPO_ROOT / 'docs' / 'spec.md').read_text(encoding='utf-8')
    rows = {line.split('|')[1].strip(' `'): line.split('|')[3].strip(' `')
            for line in text[text.index('## consensus'):text.index('## mesh')].splitlines()
            if line.startswith('| `')}
    for key in ('append_entries_period_s', 'election_timeout_min_s', 'election_timeout_max_s',
                'tick_s', 'commit_timeout_s'):
        written = rows[key].removesuffix(' s')
        assert float(written) == getattr(defaults, key), \
            f'docs/spec.md gives {key} the default {written}; update the consensus table'


def test_consensus_node_count_and_addresses_exclusive():
    document = full_document()
    document['consensus']['addresses'] = ['127.0.0.1:47100', '127.0.0.1:47101',
                                          '127.0.0.1:47102']
    assert 'consensus' in problems_of(document)
    del document['consensus']['node_count']
    assert load_spec(document).ledger_addresses()[2] == '127.0.0.1:47102'
    document['consensus']['addresses'][1] = 'localhost:99999'
    assert 'consensus.addresses[1]' in problems_of(document)


def test_ports_must_not_overlap():
    document = full_document()
    document['mesh']['base_port'] = 47101
    assert 'consensus.base_port' in problems_of(document)


def test_heartbeat_must_fit_latency_bound():
    document = full_document()
    document['mesh']['heartbeat_period_s'] = '50ms'
    assert 'latency_bound' in problems_of(document)['mesh.heartbeat_period_s']


def test_fault_references_checked():
    document = full_document()
    document['scenario']['faults'][1]['robot'] = 'r7'
    document['scenario']['faults'][3]['nodes'] = ['ledger_9']
    document['scenario']['faults'][0]['at_s'] = '3 min'
    problems = problems_of(document)
    assert 'r0, r1' in problems['scenario.faults[1].robot']
    assert 'scenario.faults[3].nodes[0]' in problems
    assert 'time_limit_s' in problems['scenario.faults[0].at_s']


def test_kill_leader_needs_three_nodes():
    document = full_document()
    document['consensus']['node_count'] = 1
    document['scenario']['faults'][3]['nodes'] = ['r0']
    assert 'scenario.faults[0].type' in problems_of(document)


def test_message_loss_rate_range():
    document = full_document()
    document['scenario']['faults'][2]['rate'] = 1.0
    assert 'scenario.faults[2].rate' in problems_of(document)


def test_duplicate_yaml_key_rejected(tmp_path):
    path = tmp_path / 'fleet.yaml'
    path.write_text('roboticSystem: {}\nrobots: []\nrobots: []\n')
    with pytest.raises(SpecError, match="'robots' appears twice") as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"'{path}' is not a valid fleet spec: key")


def test_duplicate_json_key_rejected(tmp_path):
    path = tmp_path / 'fleet.json'
    path.write_text('{"roboticSystem": {}, "map": null, "map": null}')
    with pytest.raises(SpecError, match="'map' appears twice") as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"'{path}' is not a valid fleet spec: key")


def test_malformed_files(tmp_path):
    broken_yaml = tmp_path / 'broken.yaml'
    broken_yaml.write_text('roboticSystem: [unclosed\n')
    with pytest.raises(SpecError, match='not valid YAML'):
        load_spec(broken_yaml)
    broken_json = tmp_path / 'broken.json'
    broken_json.write_text('{"roboticSystem": ')
    with pytest.raises(SpecError, match='not valid JSON'):
        load_spec(broken_json)
    scalar = tmp_path / 'scalar.yaml'
    scalar.write_text('42\n')
    with pytest.raises(SpecError, match='must be a mapping'):
        load_spec(scalar)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecFileNotFoundError, match='does not exist'):
        load_spec(tmp_path / 'absent.yaml')
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / 'absent.yaml')


def test_spec_error_pickles():
    with pytest.raises(SpecError) as caught:
        load_spec(with_change('roboticSystem.communication.latency_bound', '1 parsec'))
    copy_of = pickle.loads(pickle.dumps(caught.value))
    assert copy_of.problems == caught.value.problems
    assert str(copy_of) == str(caught.value)


def test_spec_is_frozen():
    spec = load_spec(GIVEN_BLOCK)
    with pytest.raises(ValueError):
        spec.planner = None


def test_moving_obstacles_convert():
    spec = load_spec(full_document())
    walker, truck = spec.moving_obstacle_models()
    assert isinstance(walker, MovingObstacle)
    assert isinstance(walker.motion, ConstantVelocity)
    assert isinstance(truck.motion, TimedWaypoints)
    assert walker.kind == 'person'
    # The walker waits at its start until t0_s = 2 s, then moves at 1 m/s in -y.
    assert np.allclose(walker.position_at(1.0), [1.0, 3.0])
    assert np.allclose(walker.position_at(4.0), [1.0, 1.0])


def test_dynamic_obstacles_false_hides_them_from_planning():
    document = full_document()
    document['roboticSystem']['pathPlanning']['constraints']['dynamic_obstacles'] = False
    spec = load_spec(document)
    assert spec.planned_obstacles() == ()
    assert len(spec.moving_obstacle_models()) == 2
    assert len(load_spec(full_document()).planned_obstacles()) == 2


def test_planner_rng_per_robot():
    spec = load_spec(full_document())
    first = spec.planner_rng('r0').random(3)
    assert np.array_equal(first, spec.planner_rng('r0').random(3))
    assert not np.array_equal(first, spec.planner_rng('r1').random(3))
    with pytest.raises(SpecError, match="'r9'"):
        spec.planner_rng('r9')


def test_schema_export():
    schema = spec_json_schema()
    assert schema['title'] == 'MAPL fleet spec'
    assert schema['required'] == ['roboticSystem']
    assert schema['additionalProperties'] is False
    assert {'map', 'robots', 'movingObstacles', 'planner', 'consensus', 'mesh',
            'scenario'} <= set(schema['properties'])
    communication = schema['$defs']['Communication']['properties']
    assert communication['latency_bound']['type'] == 'string'
    json.dumps(schema)


def test_fleet_spec_model_validate_direct():
    spec = FleetSpec.model_validate(GIVEN_BLOCK)
    assert spec.system.communication.latency_bound_s == pytest.approx(0.1)


def test_robot_to_model():
    from mapl_robotics.planning import RobotModel
    spec = load_spec(full_document())
    model = spec.robots[1].to_model()
    assert isinstance(model, RobotModel)
    assert model.radius_m == 0.3
    assert model.drive == 'differential'
    assert model.max_yaw_rate_radps == 2.0


def test_planner_defaults_match_library():
    from mapl_robotics.planning import PlannerSettings
    library = PlannerSettings()
    ours = load_spec(GIVEN_BLOCK).planner.to_settings()
    assert ours == library


def test_reference_page_planner_defaults():
    from mapl_robotics.planning import PlannerSettings
    from tests.conftest import REPO_ROOT
    library = PlannerSettings()
    text = (REPO_ROOT / 'docs' / 'spec.md').read_text(encoding='utf-8')
    rows = {line.split('|')[1].strip(' `'): line.split('|')[3].strip(' `')
            for line in text[text.index('## planner'):text.index('## consensus')].splitlines()
            if line.startswith('| `')}
    for key in ('algorithm', 'step_size_m', 'goal_bias', 'time_budget_s', 'max_iterations',
                'smoothing_iterations', 'corner_rule', 'horizon_s', 'max_wait_s'):
        value = getattr(library, key)
        written = rows[key].removesuffix(' s')
        hint = (f'docs/spec.md gives {key} the default {written}, but PlannerSettings has '
                f'{value!r}; update the planner table')
        if isinstance(value, str):
            assert written == value, hint
        else:
            assert float(written) == value, hint


def test_planner_settings_converted():
    settings = load_spec(full_document()).planner.to_settings()
    assert settings.algorithm == 'rrt_star'
    assert settings.step_size_m == 0.4


def _keys_of(model) -> set[str]:
    from mapl_robotics.spec.loading import _unwrap
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for inner in _unwrap(field.annotation):
            keys |= _keys_of(inner)
    return keys


def test_reference_page_lists_every_key():
    from tests.conftest import REPO_ROOT
    text = (REPO_ROOT / 'docs' / 'spec.md').read_text(encoding='utf-8')
    missing = sorted(key for key in _keys_of(FleetSpec)
                     if f'`{key}`' not in text and f'.{key}`' not in text)
    assert missing == []


def test_folders_resolved_next_to_spec(tmp_path):
    (tmp_path / 'keys').mkdir()
    document = copy.deepcopy(GIVEN_BLOCK)
    document['mesh'] = {'keys_dir': 'keys'}
    document['consensus'] = {'journal_dir': 'journal'}
    path = tmp_path / 'fleet.yaml'
    path.write_text(yaml.safe_dump(document))
    spec = load_spec(path)
    assert spec.mesh.keys_dir == tmp_path / 'keys'
    assert spec.consensus.journal_dir == tmp_path / 'journal'
    assert spec.mesh.authorized_keys_dir is None


def test_missing_keys_dir_rejected(tmp_path):
    document = copy.deepcopy(GIVEN_BLOCK)
    document['mesh'] = {'keys_dir': str(tmp_path / 'absent')}
    assert 'does not exist' in problems_of(document)['mesh.keys_dir']


def test_agent_settings_from_spec():
    from mapl_robotics.coordination.agent import AgentSettings
    document = full_document()
    document['planner']['max_replans'] = 7
    document['consensus']['commit_timeout_s'] = '250ms'
    settings = load_spec(document).agent_settings(refresh_period_s=0.25)
    assert isinstance(settings, AgentSettings)
    assert settings.max_attempts == 7
    assert settings.ledger_timeout_s == pytest.approx(0.25)
    assert settings.clearance_m == 0.1
    assert settings.refresh_period_s == 0.25


def test_agent_defaults_match_library():
    from mapl_robotics.coordination.agent import AgentSettings
    library = AgentSettings()
    ours = load_spec(GIVEN_BLOCK).agent_settings()
    assert ours.max_attempts == library.max_attempts
    assert ours.ledger_timeout_s == library.ledger_timeout_s


def test_check_positions_on_map():
    from mapl_robotics.geometry.maps import load_map
    spec = load_spec(full_document())
    world = load_map(spec.map.path)
    spec.check_positions(world)
    document = full_document()
    document['robots'][0]['goal'] = [100.0, 0.0]
    # The shelf block between x = -10 and 7.5 m covers y = 18 m.
    document['robots'][1]['start'] = [0.0, 18.0]
    with pytest.raises(SpecError) as caught:
        load_spec(document).check_positions(world)
    problems = dict(caught.value.problems)
    assert set(problems) == {'robots[0].goal', 'robots[1].start'}
    assert 'outside the map bounds' in problems['robots[0].goal']
    assert 'radius 0.3 m' in problems['robots[1].start']
