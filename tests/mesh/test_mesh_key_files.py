"""Unreadable key files: the error names the file and the commands that replace it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.security import FleetKeyring, load_keypair, write_keypair


@pytest.fixture
def broken_dir(tmp_path):
    write_keypair(tmp_path, 'a')
    (tmp_path / 'b.key').write_text('not a certificate\n', encoding='utf-8')
    (tmp_path / 'b.key_secret').write_text('not a certificate\n', encoding='utf-8')
    return tmp_path


def test_broken_public_key_hint(broken_dir):
    with pytest.raises(MeshConfigError) as caught:
        FleetKeyring.from_directory(broken_dir)
    message = str(caught.value)
    assert str(broken_dir / 'b.key') in message
    assert f'mapl keys generate --out {broken_dir} --nodes b --force' in message
    assert 'copy the new b.key to every node' in message


def test_broken_secret_key_hint(broken_dir):
    with pytest.raises(MeshConfigError) as caught:
        load_keypair(broken_dir / 'b.key_secret')
    message = str(caught.value)
    assert str(broken_dir / 'b.key_secret') in message
    assert f'mapl keys generate --out {broken_dir} --nodes b --force' in message


def test_keys_list_broken_file(broken_dir):
    result = CliRunner().invoke(main, ['keys', 'list', str(broken_dir)])
    assert result.exit_code == 1
    assert 'b.key' in result.output
    assert '--nodes b --force' in result.output


def test_regenerated_pair_loads(broken_dir):
    result = CliRunner().invoke(main, ['keys', 'generate', '--out', str(broken_dir),
                                       '--nodes', 'b', '--force'])
    assert result.exit_code == 0, result.output
    keyring = FleetKeyring.from_directory(broken_dir)
    pair = load_keypair(broken_dir / 'b.key_secret')
    assert keyring.node_for_key(pair.public_key) == 'b'


def test_own_public_key_missing(tmp_path):
    from mapl_robotics.mesh import MeshConfig

    write_keypair(tmp_path, 'r0')
    (tmp_path / 'r0.key').unlink()
    write_keypair(tmp_path, 'r1')
    with pytest.raises(MeshConfigError, match=r"put r0\.key, written by `mapl keys generate`"):
        MeshConfig(node_id='r0', keypair=load_keypair(tmp_path / 'r0.key_secret'),
                   keyring=FleetKeyring.from_directory(tmp_path))


def test_own_public_key_under_other_id(tmp_path):
    from mapl_robotics.mesh import MeshConfig

    write_keypair(tmp_path, 'r0')
    pair = load_keypair(tmp_path / 'r0.key_secret')
    with pytest.raises(MeshConfigError, match="listed in the keyring as 'r1'"):
        MeshConfig(node_id='r0', keypair=pair, keyring=FleetKeyring({'r1': pair.public_key}))


def test_bad_z85_key_names_characters():
    with pytest.raises(MeshConfigError, match=r"characters \['\\\\', '~'\] are not in the Z85"):
        FleetKeyring({'r0': b'\\' * 20 + b'~' * 20})
