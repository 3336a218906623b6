"""The installed ``mapl`` console script, run as a user runs it (subprocess, real files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MAPL = Path(sys.executable).with_name('mapl')
EXAMPLE_SPEC = REPO_ROOT / 'docs' / 'examples' / 'warehouse_fleet.yaml'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def run_mapl(*args: str, cwd: Path, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(MAPL), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_console_script_installed():
    assert MAPL.is_file(), f'{MAPL} missing: install the package (pip install .)'


def test_help_lists_commands(tmp_path):
    result = run_mapl('--help', cwd=tmp_path)
    assert result.returncode == 0
    assert 'plan' in result.stdout
    assert 'spec' in result.stdout


def test_module_run_matches_console_script(tmp_path):
    module = subprocess.run([sys.executable, '-m', 'mapl_robotics.cli', '--help'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120.0, check=False)
    script = run_mapl('--help', cwd=tmp_path)
    assert module.returncode == 0, module.stderr
    assert module.stdout.startswith('Usage: mapl ')
    assert module.stdout == script.stdout


def test_plan_help_has_units(tmp_path):
    result = run_mapl('plan', '--help', cwd=tmp_path)
    assert result.returncode == 0
    for text in ('in metres', 'in m/s', 'm/s^2', 'in seconds', '--spec', 'warehouse'):
        assert text in result.stdout


def test_spec_help(tmp_path):
    result = run_mapl('spec', '--help', cwd=tmp_path)
    assert result.returncode == 0
    assert 'validate' in result.stdout
    assert 'schema' in result.stdout


def test_plan_single_robot_writes_png(tmp_path):
    output = tmp_path / 'plan-out'
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'room_32', '--start', '1.5',
                      '1.5', '--goal', '30.5', '30.5', '--seed', '1', '--step-size', '1',
                      '--time-budget', '20', '--output', str(output), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    png = output / 'plan.png'
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000
    trajectories = json.loads((output / 'trajectories.json').read_text())
    samples = trajectories['robot']['samples_t_x_y_yaw']
    assert samples[0][1:3] == pytest.approx([1.5, 1.5])
    assert samples[-1][1:3] == pytest.approx([30.5, 30.5])
    summary = json.loads((output / 'summary.json').read_text())
    # The straight line is 41.0 m long; walls in the room map force a detour.
    assert summary['robots']['robot']['length_m'] >= 41.0
    assert str(png) in result.stdout
    assert str(output / 'summary.json') in result.stdout


def test_plan_bundled_start_scales_with_cell_size(tmp_path):
    # room_32's bundled start and goal are the centres of tiles (1, 1) and (30, 30).
    output = tmp_path / 'half-metre'
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'room_32', '--cell-size',
                      '0.5', '--radius', '0.2', '--seed', '1', '--time-budget', '20',
                      '--output', str(output), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    samples = json.loads((output / 'trajectories.json').read_text())['robot'][
        'samples_t_x_y_yaw']
    assert samples[0][1:3] == pytest.approx([0.75, 0.75])
    assert samples[-1][1:3] == pytest.approx([15.25, 15.25])


def test_plan_spec_fleet_without_conflicts(tmp_path):
    output = tmp_path / 'fleet-out'
    # A generous wall-clock budget keeps the result independent of machine load: the
    # iteration budget ends a search long before it.
    result = run_mapl('--log-level', 'warning', 'plan', '--spec', str(EXAMPLE_SPEC),
                      '--time-budget', '30', '--output', str(output), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((output / 'summary.json').read_text())
    assert sorted(summary['robots']) == ['r0', 'r1', 'r2', 'r3']
    assert summary['conflicts'] == []
    assert 'conflicts between plans: none' in result.stdout
    assert (output / 'plan.png').read_bytes()[:8] == PNG_SIGNATURE


def test_plan_default_output_folder(tmp_path):
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'turtlebot3_world',
                      '--time-budget', '30', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = list((tmp_path / 'out').glob('plan-*/plan.png'))
    assert len(written) == 1


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_plan_missing_map_file(tmp_path):
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'nowhere.yaml', '--start',
                      '0', '0', '--goal', '1', '1', cwd=tmp_path)
    assert result.returncode == 1
    line = assert_one_error_line(result, 'nowhere.yaml', 'does not exist')
    assert 'bundled map' in line
    assert 'room_32' in line


def test_plan_start_outside_map(tmp_path):
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'room_32', '--start', '-5',
                      '-5', cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result, '-5')


def test_plan_start_in_obstacle(tmp_path):
    # Tile (x=7, y=0) of random-32-32-10 is an obstacle ('@'). Row 0 is the top of the map,
    # so with 1 m cells its centre is at (7.5, 31.5) m.
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'random_32', '--start', '7.5',
                      '31.5', cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result, 'start')


def test_plan_output_not_writable(tmp_path):
    blocker = tmp_path / 'taken'
    blocker.write_text('a file where the output folder should go')
    result = run_mapl('--log-level', 'warning', 'plan', '--map', 'turtlebot3_world',
                      '--time-budget', '30', '--output', str(blocker / 'out'), cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result, 'cannot write the outputs', '--output')


def test_plan_spec_and_start_exclusive(tmp_path):
    result = run_mapl('plan', '--spec', str(EXAMPLE_SPEC), '--start', '0', '0', cwd=tmp_path)
    assert result.returncode == 2
    assert 'drop --start' in result.stderr
    assert 'Traceback' not in result.stderr


def test_plan_rejects_negative_radius(tmp_path):
    result = run_mapl('plan', '--radius', '-1', cwd=tmp_path)
    assert result.returncode == 2
    assert '--radius' in result.stderr


def test_plan_map_file_needs_start(tmp_path):
    (tmp_path / 'elsewhere.yaml').write_text('bounds_m: [0, 0, 10, 10]\nobstacles: []\n')
    result = run_mapl('plan', '--map', 'elsewhere.yaml', cwd=tmp_path)
    assert result.returncode == 2
    assert '--start' in result.stderr
    assert 'only bundled maps' in result.stderr
    assert 'Traceback' not in result.stderr


def test_plan_missing_map_without_start(tmp_path):
    result = run_mapl('plan', '--map', 'elsewhere.yaml', cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result, 'elsewhere.yaml', 'does not exist', 'warehouse')


def test_spec_validate_valid(tmp_path):
    result = run_mapl('spec', 'validate', str(EXAMPLE_SPEC), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'valid (4 robots, 2 moving obstacles' in result.stdout
    assert 'latency bound 100 ms' in result.stdout


def test_spec_validate_invalid(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(EXAMPLE_SPEC.read_text().replace('latency_bound: 100ms',
                                                    'latency_bound: 100 parsecs'))
    result = run_mapl('spec', 'validate', str(EXAMPLE_SPEC), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'roboticSystem.communication.latency_bound' in result.stderr
    assert "'100 parsecs'" in result.stderr
    assert result.stderr.count(str(bad)) == 1
    assert 'valid (4 robots' in result.stdout


def test_spec_validate_checks_positions(tmp_path):
    bad = tmp_path / 'bad.yaml'
    text = EXAMPLE_SPEC.read_text()
    bad.write_text(text.replace('goal: [12.0, 0.0]', 'goal: [120.0, 0.0]'))
    result = run_mapl('spec', 'validate', str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert 'robots[0].goal' in result.stderr
    assert 'outside the map bounds' in result.stderr
    # Position problems start like every other spec problem.
    assert f'invalid fleet spec {str(bad)!r}: the robots' in result.stderr
    skipped = run_mapl('spec', 'validate', '--no-map-check', str(bad), cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr


def test_plan_invalid_spec_reports_problems(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(EXAMPLE_SPEC.read_text().replace('radius_m: 0.35', 'radius_m: -0.35'))
    result = run_mapl('plan', '--spec', str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'robots[2].radius_m' in result.stderr


def test_spec_schema_output(tmp_path):
    target = tmp_path / 'schema.json'
    result = run_mapl('spec', 'schema', '--output', str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(target.read_text())
    assert schema['title'] == 'MAPL fleet spec'
    assert 'roboticSystem' in schema['properties']
    printed = run_mapl('spec', 'schema', cwd=tmp_path)
    assert json.loads(printed.stdout) == schema


def test_plan_spec_failure_names_robot(tmp_path):
    spec = tmp_path / 'tight.yaml'
    text = EXAMPLE_SPEC.read_text()
    spec.write_text(text.replace('planner:\n', 'planner:\n  max_iterations: 1\n'))
    result = run_mapl('--log-level', 'warning', 'plan', '--spec', str(spec), '--output',
                      str(tmp_path / 'out'), cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result, "planning robot 'r0' (robots[0])", 'iterations')
