"""TCP endpoints of the mesh and ledger: ports outside 1-65535 are rejected, not wrapped."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.node import MeshNode


@pytest.mark.parametrize('endpoint', ['tcp://127.0.0.1:99999', 'tcp://127.0.0.1:-5',
                                      'tcp://127.0.0.1:65536', 'tcp://127.0.0.1:x',
                                      'tcp://127.0.0.1'])
def test_bind_port_out_of_range(endpoint):
    with pytest.raises(MeshConfigError) as caught:
        MeshConfig(node_id='a', bind_endpoint=endpoint, security='none')
    assert repr(endpoint) in str(caught.value)
    assert '0-65535' in str(caught.value)


@pytest.mark.parametrize('endpoint', ['tcp://127.0.0.1:99999', 'tcp://127.0.0.1:0',
                                      'tcp://127.0.0.1:*', 'tcp://127.0.0.1:-5'])
def test_peer_port_out_of_range(endpoint):
    with pytest.raises(MeshConfigError) as caught:
        PeerConfig('b', endpoint)
    assert repr(endpoint) in str(caught.value)
    assert '1-65535' in str(caught.value)


@pytest.mark.parametrize('endpoint', ['tcp://127.0.0.1:0', 'tcp://127.0.0.1:*'])
def test_ephemeral_bind_gets_real_port(endpoint):
    with MeshNode(MeshConfig(node_id='a', bind_endpoint=endpoint, security='none')) as node:
        port = int(node.endpoint.rpartition(':')[2])
        assert 1 <= port <= 65535


def test_valid_endpoints_accepted(port):
    config = MeshConfig(node_id='a', bind_endpoint=f'tcp://127.0.0.1:{port()}',
                        security='none',
                        peers=(PeerConfig('b', 'tcp://127.0.0.1:65535'),
                               PeerConfig('c', 'tcp://[::1]:1'),
                               PeerConfig('d', 'ipc:///tmp/mapl-mesh-d')))
    assert [peer.node_id for peer in config.peers] == ['b', 'c', 'd']


@pytest.mark.parametrize('bind', ['tcp://127.0.0.1:99999', 'tcp://127.0.0.1:-5'])
def test_mesh_cli_rejects_bind_port(bind):
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'a', '--insecure', '--bind',
                                       bind, '--run-s', '0'])
    assert result.exit_code == 1
    assert bind in result.output
    assert '0-65535' in result.output


def test_mesh_cli_rejects_peer_port():
    result = CliRunner().invoke(main, ['mesh', 'node', '--id', 'a', '--insecure', '--peer',
                                       'b=tcp://127.0.0.1:99999', '--run-s', '0'])
    assert result.exit_code == 1
    assert "'tcp://127.0.0.1:99999'" in result.output
    assert '1-65535' in result.output


@pytest.mark.parametrize('option', ['--self', '--peers', '--client'])
def test_ledger_cli_rejects_port(tmp_path, option):
    args = ['ledger', 'node', '--journal-dir', str(tmp_path / 'journal')]
    if option != '--self':
        args += ['--self', '127.0.0.1:47100']
    result = CliRunner().invoke(main, args + [option, '127.0.0.1:99999'])
    assert result.exit_code == 2
    assert "'127.0.0.1:99999'" in result.output
    assert '1..65535' in result.output
    assert not (tmp_path / 'journal').exists()
