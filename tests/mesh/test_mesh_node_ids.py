"""Node ids: one allowed form wherever an id enters (key files, mesh config, the CLI)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.errors import MeshConfigError, MessageFormatError
from mapl_robotics.mesh import FleetKeyring
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.schema import validate_node_id
from mapl_robotics.mesh.security import write_keypair
from mapl_robotics.resources import share_dir
from mapl_robotics.spec import load_spec

BAD_IDS = ['../escaped', 'a b', 'a/b', 'a\\b', '.hidden', '', 'r0\n', 'x' * 65, 'robot\u00e9']
GOOD_IDS = ['r0', 'ledger_1', 'sim', 'a.b-c_d', 'R-2', 'x' * 64]


@pytest.mark.parametrize('node_id', BAD_IDS)
def test_validate_node_id_rejects(node_id):
    with pytest.raises(MessageFormatError) as caught:
        validate_node_id(node_id)
    assert repr(node_id) in str(caught.value)
    assert 'not starting with "."' in str(caught.value)


@pytest.mark.parametrize('node_id', GOOD_IDS)
def test_validate_node_id_accepts(node_id):
    assert validate_node_id(node_id) == node_id


def test_bundled_scenario_ids_are_valid():
    paths = sorted((share_dir() / 'sim' / 'scenarios').glob('*.yaml'))
    assert paths
    for path in paths:
        spec = load_spec(path)
        for node_id in spec.mesh_node_ids:
            assert validate_node_id(node_id) == node_id, path


def test_keys_generate_rejects_path_id(tmp_path):
    out_dir = tmp_path / 'keys'
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(out_dir),
                                       '--robots', '../escaped'])
    assert result.exit_code != 0
    assert "'../escaped'" in result.output
    assert not (tmp_path / 'escaped.key').exists()
    assert not (tmp_path / 'escaped.key_secret').exists()


def test_keys_generate_rejects_space_id(tmp_path):
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(tmp_path),
                                       '--robots', 'a b'])
    assert result.exit_code != 0
    assert "'a b'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_keys_generate_nodes_alias(tmp_path):
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(tmp_path),
                                       '--nodes', 'r0,ledger_0'])
    assert result.exit_code == 0, result.output
    assert FleetKeyring.from_directory(tmp_path).node_ids() == ['ledger_0', 'r0']


def test_write_keypair_rejects_path_id(tmp_path):
    with pytest.raises(MessageFormatError):
        write_keypair(tmp_path / 'keys', '../escaped')
    assert list(tmp_path.iterdir()) == []


def test_keyring_rejects_bad_key_file_name(tmp_path):
    public_path, _ = write_keypair(tmp_path, 'r0')
    (tmp_path / 'a b.key').write_bytes(public_path.read_bytes().replace(b'r0', b'x'))
    with pytest.raises(MeshConfigError) as caught:
        FleetKeyring.from_directory(tmp_path)
    assert 'a b.key' in str(caught.value)
    assert 'Rename the file' in str(caught.value)


@pytest.mark.parametrize('node_id', ['../escaped', 'a b'])
def test_mesh_node_rejects_bad_id(node_id):
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', node_id, '--insecure',
                                       '--run-s', '0'])
    assert result.exit_code != 0
    assert repr(node_id) in result.output
    assert 'letters, digits' in result.output


def test_mesh_node_rejects_bad_id_before_keys(tmp_path):
    write_keypair(tmp_path, 'escaped')
    keys_dir = tmp_path / 'keys'
    write_keypair(keys_dir, 'r0')
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', '../escaped', '--keys-dir',
                                       str(keys_dir), '--run-s', '0'])
    assert result.exit_code != 0
    assert "invalid node id '../escaped'" in result.output


def test_mesh_config_rejects_bad_peer_id():
    with pytest.raises(MessageFormatError):
        PeerConfig('a b', 'tcp://127.0.0.1:7001')
    with pytest.raises(MessageFormatError):
        MeshConfig(node_id='a', security='none', reference_id='../ref')
