"""``mapl sim`` in multi-process mode, run as a user runs it: log levels and leftover files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
import zmq

from mapl_robotics.errors import SimulationError
from mapl_robotics.sim.multiprocess import MultiProcessFleet
from mapl_robotics.sim.scenario import load_scenario_file

MAPL = Path(sys.executable).with_name('mapl')

# A CurveZMQ key in Z85 text is 40 characters of this alphabet.
_Z85_RUN = re.compile(rb'[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40,}')


def _short_scenario(folder: Path) -> Path:
    """Write corridor_swap with a 2 s time limit, so the run ends soon after start-up."""
    scenario = load_scenario_file('corridor_swap')
    document = yaml.safe_load(scenario.source.read_text())
    document['map']['path'] = str(scenario.spec.map.path)
    document['scenario']['time_limit_s'] = 2.0
    path = folder / 'short.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


def _run_short(folder: Path, *options: str):
    """Run the short scenario at --log-level info with ``folder/tmp`` as TMPDIR."""
    temp_dir = folder / 'tmp'
    temp_dir.mkdir()
    out_dir = folder / 'out'
    result = subprocess.run(
        [str(MAPL), '--log-level', 'info', 'sim', '--scenario', str(_short_scenario(folder)),
         '--no-progress', '--out', str(out_dir), *options],
        cwd=folder, capture_output=True, text=True, timeout=300.0, check=False,
        env={**os.environ, 'TMPDIR': str(temp_dir)})
    return result, out_dir, temp_dir


@pytest.fixture(scope='module')
def info_run(tmp_path_factory):
    """One short multi-process run with the default options."""
    return _run_short(tmp_path_factory.mktemp('multiprocess'))


@pytest.mark.timeout(300)
def test_agents_log_at_cli_level(info_run):
    result, out_dir, _ = info_run
    assert 'Traceback' not in result.stderr
    agent_log = (out_dir / 'logs' / 'west.log').read_text()
    # The agent logs this line at INFO once its planner is ready.
    assert 'INFO' in agent_log
    assert 'planner prepared' in agent_log


@pytest.mark.timeout(300)
def test_kernels_compiled_before_agents_start(info_run):
    # The simulator compiles the planner once, so the agents load it from numba's cache.
    result, _, _ = info_run
    compiled = result.stderr.find('planner kernels ready')
    registered = result.stderr.find('agents registered')
    assert compiled != -1
    assert registered != -1
    assert compiled < registered


@pytest.mark.timeout(300)
def test_ledger_nodes_log_at_cli_level(info_run):
    _, out_dir, _ = info_run
    node_log = (out_dir / 'logs' / 'ledger_0.log').read_text()
    # Each ledger node logs its addresses at INFO when it starts.
    assert 'INFO' in node_log
    assert 'ledger node node0 started' in node_log


@pytest.mark.timeout(300)
def test_run_removes_ledger_journals(info_run):
    result, out_dir, temp_dir = info_run
    assert 'Traceback' not in result.stderr
    node_log = (out_dir / 'logs' / 'ledger_0.log').read_text()
    # The node logs its journal folder at start, so this shows the run used TMPDIR.
    assert f'journal {temp_dir}{os.sep}mapl-ledger-' in node_log
    assert list(temp_dir.glob('mapl-ledger-*')) == []
    assert list(out_dir.parent.rglob('raft.journal')) == []
    assert not (out_dir / 'ledger').exists()


@pytest.mark.timeout(300)
def test_keep_ledger_keeps_journals(tmp_path):
    result, out_dir, temp_dir = _run_short(tmp_path, '--keep-ledger')
    assert 'Traceback' not in result.stderr
    for index in range(3):
        assert (out_dir / 'ledger' / f'node{index}' / 'raft.journal').is_file()
    assert list(temp_dir.glob('mapl-ledger-*')) == []


@pytest.mark.timeout(300)
def test_failed_start_removes_journals(tmp_path, monkeypatch):
    temp_dir = tmp_path / 'tmp'
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(temp_dir))
    out_dir = tmp_path / 'out'
    # Without the scenario.json that run_scenario writes, every agent process exits at start.
    fleet = MultiProcessFleet(load_scenario_file('corridor_swap'), out_dir=out_dir)
    try:
        with pytest.raises(SimulationError, match='during start-up'):
            fleet.start()
        assert len(list(temp_dir.glob('mapl-ledger-*'))) == 1
    finally:
        fleet.close()
    assert list(temp_dir.glob('mapl-ledger-*')) == []
    assert (out_dir / 'logs' / 'ledger_0.log').is_file()


@pytest.mark.timeout(300)
def test_shutdown_logs_no_peer_warnings(info_run):
    result, _, _ = info_run
    assert 'Traceback' not in result.stderr
    # The agents stop on purpose at the end of the run and start after the simulator's mesh
    # node, so their silence is logged at DEBUG, which --log-level info hides.
    assert 'dead (missed heartbeats)' not in result.stderr
    assert 'WARNING mapl_robotics.mesh' not in result.stderr
    assert 'pybullet build time' not in result.stderr
    assert 'pybullet build time' not in result.stdout
    assert 'result ' in result.stdout


@pytest.mark.timeout(300)
def test_run_leaves_only_results(info_run):
    result, out_dir, temp_dir = info_run
    assert 'Traceback' not in result.stderr
    assert sorted(path.name for path in out_dir.iterdir()) == [
        'logs', 'metrics.json', 'scenario.json', 'trajectories.png']
    assert list(temp_dir.glob('mapl-clock-*')) == []


def _curve_keys_in(path: Path, keyring) -> list[str]:
    """Return the node ids whose CurveZMQ secret key appears anywhere in ``path``."""
    found = []
    for run in _Z85_RUN.finditer(path.read_bytes()):
        text = run.group()
        for start in range(len(text) - 39):
            node_id = keyring.node_for_key(zmq.curve_public(text[start:start + 40]))
            if node_id is not None:
                found.append(node_id)
    return found


@pytest.mark.timeout(300)
def test_run_leaves_no_secret_keys(tmp_path, monkeypatch):
    temp_dir = tmp_path / 'tmp'
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(temp_dir))
    out_dir = tmp_path / 'out'
    out_dir.mkdir()

    scenario = load_scenario_file('corridor_swap')
    # The agent processes load the spec that run_scenario writes here.
    (out_dir / 'scenario.json').write_text(
        json.dumps(scenario.spec.model_dump(mode='json', by_alias=True)), encoding='utf-8')
    fleet = MultiProcessFleet(scenario, out_dir=out_dir)
    try:
        fleet.start()
        keyring = fleet.node.config.keyring
        for step in range(1, 21):
            fleet.advance(step * 0.05)
            fleet.step(step * 0.05)
        assert fleet.crashed == {}
        fleet.stop_agents()
    finally:
        fleet.close()

    files = [path for path in out_dir.rglob('*') if path.is_file()]
    assert (out_dir / 'logs' / 'west.log') in files
    for path in files:
        assert _curve_keys_in(path, keyring) == [], path
        text = path.read_text(errors='replace')
        assert 'secret_key' not in text, path
        assert 'private_key' not in text, path

    assert not (out_dir / 'agents').exists()
    assert not (out_dir / 'clock.bin').exists()
    assert list(temp_dir.iterdir()) == []


def _ledger_node_pids(session_id: int) -> list[int]:
    """Return the pids of ledger node processes in the session ``session_id``."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError:
            continue
        # Fields after the command name: state, ppid, pgrp, session.
        fields = stat[stat.rindex(')') + 2:].split()
        if int(fields[3]) == session_id and ' ledger node ' in command:
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(300)
def test_lost_ledger_still_reports_run(tmp_path):
    """Every ledger node dies mid-run: metrics and summary are written, and the run fails."""
    temp_dir = tmp_path / 'tmp'
    temp_dir.mkdir()
    out_dir = tmp_path / 'out'
    log_path = tmp_path / 'mapl.log'
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            [str(MAPL), '--log-level', 'info', 'sim', '--scenario',
             str(_short_scenario(tmp_path)), '--no-progress', '--out', str(out_dir)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, 'TMPDIR': str(temp_dir)})

    try:
        deadline_s = time.monotonic() + 240.0
        while 'agents registered' not in log_path.read_text(errors='replace'):
            assert process.poll() is None, log_path.read_text(errors='replace')
            assert time.monotonic() < deadline_s, 'agents did not register within 240 s'
            time.sleep(0.1)
        ledger_pids = _ledger_node_pids(process.pid)
        assert len(ledger_pids) == 3
        for pid in ledger_pids:
            os.kill(pid, signal.SIGKILL)
        status = process.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    output = log_path.read_text(errors='replace')
    assert status == 1, output
    assert 'Traceback' not in output
    assert 'ledger history     | UNAVAILABLE: no ledger leader' in output
    metrics = json.loads((out_dir / 'metrics.json').read_text())
    assert metrics['success'] is False
    assert metrics['ledger_history'] is None
    assert 'no ledger leader' in metrics['ledger_history_error']
    assert str(out_dir / 'logs') in metrics['ledger_history_error']


@pytest.mark.timeout(300)
def test_mesh_audit_logs_written(info_run):
    _, out_dir, _ = info_run
    robot_ids = [robot['id'] for robot in
                 json.loads((out_dir / 'scenario.json').read_text())['robots']]
    logs = {path.name: [json.loads(line) for line in path.read_text().splitlines()]
            for path in (out_dir / 'logs').glob('audit_*.jsonl')}
    assert set(logs) == {'audit_sim.jsonl'} | {f'audit_{robot}.jsonl' for robot in robot_ids}
    for entries in logs.values():
        assert entries[0]['event'] == 'node_started'
        assert entries[0]['secure'] is True
    for robot in robot_ids:
        commits = [entry for entry in logs[f'audit_{robot}.jsonl']
                   if entry['event'] == 'plan_committed']
        assert commits, f'no plan commit of {robot} in its audit log'
        assert all(entry['robot'] == robot for entry in commits)
        tokens = [tuple(entry['token']) for entry in commits]
        assert len(set(tokens)) == len(tokens)
