"""``mapl sim`` in multi-process mode, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mapl_robotics.sim.scenario import load_scenario_file

MAPL = Path(sys.executable).with_name('mapl')


def _short_scenario(folder: Path) -> Path:
    """Write corridor_swap with a 2 s time limit, so the run ends soon after start-up."""
    scenario = load_scenario_file('corridor_swap')
    document = yaml.safe_load(scenario.source.read_text())
    document['map']['path'] = str(scenario.spec.map.path)
    document['scenario']['time_limit_s'] = 2.0
    path = folder / 'short.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope='module')
def info_run(tmp_path_factory):
    """One short multi-process run at --log-level info with its own TMPDIR."""
    folder = tmp_path_factory.mktemp('multiprocess')
    temp_dir = folder / 'tmp'
    temp_dir.mkdir()
    out_dir = folder / 'out'
    result = subprocess.run(
        [str(MAPL), '--log-level', 'info', 'sim', '--scenario', str(_short_scenario(folder)),
         '--no-progress', '--out', str(out_dir)],
        cwd=folder, capture_output=True, text=True, timeout=300.0, check=False,
        env={**os.environ, 'TMPDIR': str(temp_dir)})
    return result, out_dir, temp_dir


@pytest.mark.timeout(300)
def test_agents_log_at_cli_level(info_run):
    result, out_dir, _ = info_run
    assert 'Traceback' not in result.stderr
    agent_log = (out_dir / 'logs' / 'west.log').read_text()
    # The agent logs this line at INFO once its planner is ready.
    assert 'INFO' in agent_log
    assert 'planner prepared' in agent_log


@pytest.mark.timeout(300)
def test_ledger_nodes_log_at_cli_level(info_run):
    _, out_dir, _ = info_run
    node_log = (out_dir / 'ledger' / 'node0' / 'node.log').read_text()
    # Each ledger node logs its addresses at INFO when it starts.
    assert 'INFO' in node_log
    assert 'ledger node node0 started' in node_log
