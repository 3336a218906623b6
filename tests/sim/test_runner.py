"""Runner: determinism of in-process runs, outputs, and the mapl sim command."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.errors import ScenarioError
from mapl_robotics.sim.runner import RunOptions, run_scenario
from mapl_robotics.sim.scenario import load_scenario_file

# Fields that measure the machine rather than the run.
_TIMING_KEYS = ('wall_time_s', 'real_time_factor', 'planning_ms', 'commit_ms', 'mesh_ms',
                'mesh_p99_ms')


def _run(tmp_path, name, seed):
    scenario = load_scenario_file('moving_crossing').with_seed(seed)
    return run_scenario(scenario, RunOptions(out_dir=tmp_path / name, mode='in-process',
                                             progress=False)).metrics


def _without_timing(metrics):
    return {key: value for key, value in metrics.items() if key not in _TIMING_KEYS}


def test_in_process_same_seed_same_metrics(tmp_path):
    first = _run(tmp_path, 'first', 7)
    second = _run(tmp_path, 'second', 7)
    assert _without_timing(first) == _without_timing(second)
    assert first['planning_ms']['count'] == second['planning_ms']['count']


def test_run_writes_metrics_and_picture(tmp_path):
    metrics = _run(tmp_path, 'out', 7)
    written = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert written['robots'] == metrics['robots']
    assert (tmp_path / 'out' / 'trajectories.png').stat().st_size > 10_000
    assert (tmp_path / 'out' / 'scenario.json').is_file()


def test_run_options_reject_unknown_log_level(tmp_path):
    with pytest.raises(ScenarioError, match="log_level='verbose'"):
        RunOptions(out_dir=tmp_path, log_level='verbose')


def test_cli_sim_in_process_passes(tmp_path):
    result = CliRunner().invoke(main, ['sim', '--scenario', 'four_way', '--in-process',
                                       '--no-progress', '--out', str(tmp_path / 'cli')])
    assert result.exit_code == 0, result.output
    assert 'result             | PASS' in result.output
    assert (tmp_path / 'cli' / 'metrics.json').is_file()


def test_cli_sim_exit_status_on_failure(tmp_path):
    # A time limit too short for anyone to arrive must fail the run.
    scenario = load_scenario_file('four_way')
    document = yaml.safe_load(scenario.source.read_text())
    document['map']['path'] = str(scenario.spec.map.path)
    document['scenario']['time_limit_s'] = 3.0
    path = tmp_path / 'short.yaml'
    path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(main, ['sim', '--scenario', str(path), '--in-process',
                                       '--no-progress', '--out', str(tmp_path / 'short')])
    assert result.exit_code == 1, result.output
    assert 'FAIL' in result.output
    metrics = json.loads((tmp_path / 'short' / 'metrics.json').read_text())
    assert sorted(metrics['failed_to_arrive']) == ['east', 'north', 'south', 'west']


def test_cli_sim_scen_needs_agents_and_cell_size(tmp_path):
    result = CliRunner().invoke(main, ['sim', '--scen', 'x.scen', '--out', str(tmp_path)])
    assert result.exit_code == 2
    assert '--agents' in result.output


def test_cli_sim_movingai_scen(tmp_path):
    scen = 'maps/movingai/random-32-32-10/random-32-32-10-even-1.scen'
    result = CliRunner().invoke(main, ['sim', '--scen', scen, '--agents', '3', '--cell-size',
                                       '1.0', '--in-process', '--no-progress', '--out',
                                       str(tmp_path / 'scen')])
    metrics = json.loads((tmp_path / 'scen' / 'metrics.json').read_text())
    assert metrics['scenario'] == 'random-32-32-10-even-1-3'
    assert metrics['robots'] == 3
    assert result.exit_code == 0, result.output
    assert metrics['success'] is True


def test_cli_sim_marks_skipped_faults(tmp_path):
    result = CliRunner().invoke(main, ['sim', '--scenario', 'fault_kill_leader', '--in-process',
                                       '--no-progress', '--out', str(tmp_path / 'fault')])
    assert result.exit_code == 0, result.output
    assert 'faults             | kill_leader (skipped in-process)' in result.output


def test_cli_sim_tiny_cell_size_named(tmp_path):
    scen = 'maps/movingai/random-32-32-10/random-32-32-10-even-1.scen'
    result = CliRunner().invoke(main, ['sim', '--scen', scen, '--agents', '2', '--cell-size',
                                       '0.01', '--in-process', '--out', str(tmp_path / 'tiny')])
    assert result.exit_code == 1
    assert '--cell-size 0.01 gives robots of radius 0.003 m' in result.output
    assert 'pass --cell-size 0.07 or more' in result.output
    assert 'footprint_margin_m' not in result.output


def test_cli_sim_unwritable_out_named(tmp_path):
    blocker = tmp_path / 'afile'
    blocker.write_text('')
    result = CliRunner().invoke(main, ['sim', '--scenario', 'four_way', '--in-process',
                                       '--no-progress', '--out', str(blocker / 'sub')])
    assert result.exit_code == 1
    assert f"cannot create the output folder '{blocker / 'sub'}'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
