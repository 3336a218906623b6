"""The `mapl keys` and `mapl mesh node` commands."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.mesh import FleetKeyring, load_keypair


def test_keys_generate_writes_pairs(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ['keys', 'generate', '--out', str(tmp_path),
                                  '--robots', 'r0,r1', '--robots', 'ledger_0'])
    assert result.exit_code == 0, result.output
    keyring = FleetKeyring.from_directory(tmp_path)
    assert keyring.node_ids() == ['ledger_0', 'r0', 'r1']
    pair = load_keypair(tmp_path / 'r0.key_secret')
    assert keyring.node_for_key(pair.public_key) == 'r0'
    assert (tmp_path / 'r0.key_secret').stat().st_mode & 0o077 == 0
    listed = runner.invoke(main, ['keys', 'list', str(tmp_path)])
    assert listed.exit_code == 0
    assert listed.output.splitlines()[1].startswith('r0 ')


def test_keys_generate_keeps_existing(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ['keys', 'generate', '--out', str(tmp_path),
                                '--robots', 'r0']).exit_code == 0
    before = (tmp_path / 'r0.key').read_text()
    again = runner.invoke(main, ['keys', 'generate', '--out', str(tmp_path), '--robots', 'r0'])
    assert again.exit_code != 0
    assert '--force' in again.output
    assert (tmp_path / 'r0.key').read_text() == before
    forced = runner.invoke(main, ['keys', 'generate', '--out', str(tmp_path), '--robots', 'r0',
                                  '--force'])
    assert forced.exit_code == 0
    assert (tmp_path / 'r0.key').read_text() != before


def test_keys_generate_rejects_bad_ids(tmp_path):
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(tmp_path),
                                       '--robots', 'r0,r0'])
    assert result.exit_code != 0
    assert 'unique' in result.output


def test_keys_generate_unwritable_folder(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(blocker / 'keys'),
                                       '--robots', 'r0'])
    assert result.exit_code == 1
    assert f'cannot write key files to {blocker / "keys"}' in result.output
    assert 'Traceback' not in result.output


def test_mesh_node_requires_keys_or_insecure(tmp_path):
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'r0'])
    assert result.exit_code != 0
    assert '--keys-dir' in result.output


def test_mesh_node_runs_and_reports(tmp_path):
    metrics_path = tmp_path / 'metrics.json'
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'r0', '--insecure',
                                       '--run-s', '0.2', '--metrics-json', str(metrics_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(metrics_path.read_text())
    assert summary['node'] == 'r0'
    assert summary['delivered'] == 0


def test_mesh_node_from_spec(tmp_path, port):
    import yaml

    from mapl_robotics.mesh import write_keypair
    from mapl_robotics.spec import load_spec

    example = Path(__file__).resolve().parents[2] / 'docs/examples/warehouse_fleet.yaml'
    document = yaml.safe_load(example.read_text())
    # A free port instead of the example's fixed one, so parallel runs do not collide.
    document.setdefault('mesh', {})['base_port'] = port()
    spec_path = tmp_path / 'fleet.yaml'
    spec_path.write_text(yaml.safe_dump(document))
    spec = load_spec(spec_path)
    for node_id in spec.mesh_node_ids:
        write_keypair(tmp_path / 'keys', node_id)
    metrics_path = tmp_path / 'metrics.json'
    node_id = spec.mesh_node_ids[0]
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', node_id, '--spec',
                                       str(spec_path), '--keys-dir', str(tmp_path / 'keys'),
                                       '--run-s', '0.2', '--metrics-json', str(metrics_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(metrics_path.read_text())
    assert summary['node'] == node_id
    assert set(summary['metrics']['breakers']) == set(spec.mesh_node_ids) - {node_id}


def test_mesh_node_spec_rejects_ignored_options(tmp_path):
    example = Path(__file__).resolve().parents[2] / 'docs/examples/warehouse_fleet.yaml'
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'r0', '--spec', str(example),
                                       '--insecure', '--drop-p', '0.1', '--run-s', '0.1'])
    assert result.exit_code == 2
    assert '--insecure, --drop-p cannot be combined with --spec' in result.output
    assert 'Drop them, or drop --spec' in result.output


@pytest.mark.parametrize('options, expected', [
    (['--peer', 'b=tcp://127.0.0.1:1', '--target', 'zz', '--send-s', '1'],
     "--target zz: not a configured peer; peers are ['b']"),
    (['--peer', 'b=tcp://127.0.0.1:1', '--reference', 'zz', '--run-s', '1'],
     '--reference zz: neither this node nor a peer'),
    (['--clock-skew-s', 'nan'], "'--clock-skew-s': nan is not a finite number"),
    (['--heartbeat-ms', '1e308'], "'--heartbeat-ms'"),
    (['--run-s', 'nan'], "'--run-s': nan is not a finite number"),
    (['--send-s', 'inf'], "'--send-s': inf is not a finite number"),
    (['--keys-dir', '.'], '--keys-dir would be ignored'),
])
def test_mesh_node_rejects_option(options, expected):
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'a', '--insecure', *options])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_mesh_node_log_folder_missing(tmp_path):
    missing = tmp_path / 'missing' / 'delivered.txt'
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'a', '--insecure', '--run-s',
                                       '0.1', '--delivered-log', str(missing)])
    assert result.exit_code == 1
    assert f'cannot write {missing}' in result.output
    assert 'Traceback' not in result.output


def test_mesh_node_writes_audit_log(tmp_path):
    audit_path = tmp_path / 'audit.jsonl'
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'a', '--insecure', '--run-s',
                                       '0.2', '--audit-log', str(audit_path)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line)['event'] for line in audit_path.read_text().splitlines()]
    assert events[0] == 'node_started'
    assert events[-1] == 'node_stopped'


def test_mesh_node_stops_load_on_sigterm(tmp_path, mapl, processes, poll, port):
    metrics_path = tmp_path / 'metrics.json'
    stderr_path = tmp_path / 'node.err'
    # The peer never starts, so the node waits for it (30 s) before its 30 s of load.
    node = processes(mapl('mesh', 'node', '--id', 'a', '--insecure', '--peer',
                          f'b=tcp://127.0.0.1:{port()}', '--send-s', '30', '--state-hz', '20',
                          '--metrics-json', str(metrics_path)), stderr_path=stderr_path)
    assert poll(lambda: 'listening' in stderr_path.read_text(), timeout_s=60)
    # The SIGTERM handler is installed right after that line.
    time.sleep(0.5)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=10) == 0
    summary = json.loads(metrics_path.read_text())
    assert summary['node'] == 'a'
    assert summary['sent'] == 0
