"""A mesh node that cannot bind reports one clear error and releases what it opened."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh import FleetKeyring, load_keypair
from mapl_robotics.mesh.config import MeshConfig
from mapl_robotics.mesh.node import MeshNode


@pytest.fixture
def busy_port():
    """Return a loopback port that a listening TCP socket holds for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen()
        yield sock.getsockname()[1]


def _run_mesh_node(bind: str) -> subprocess.CompletedProcess:
    command = [sys.executable, '-m', 'mapl_robotics.cli', 'mesh', 'node', '--id', 'a',
               '--insecure', '--bind', bind, '--run-s', '0']
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_cli_invalid_bind_one_line():
    result = _run_mesh_node('nonsense')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Error: cannot bind mesh node 'a' to nonsense" in result.stderr
    assert 'tcp://HOST:PORT' in result.stderr


def test_cli_port_in_use_one_line(busy_port):
    bind = f'tcp://127.0.0.1:{busy_port}'
    result = _run_mesh_node(bind)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"cannot bind mesh node 'a' to {bind}" in result.stderr
    assert 'Address already in use' in result.stderr


def test_secure_bind_failure_cleans_up(busy_port, key_dir):
    folder = key_dir(['a', 'b'])
    config = MeshConfig(node_id='a', bind_endpoint=f'tcp://127.0.0.1:{busy_port}',
                        keypair=load_keypair(folder / 'a.key_secret'),
                        keyring=FleetKeyring.from_directory(folder))
    threads_before = set(threading.enumerate())
    node = MeshNode(config)
    with pytest.raises(MeshConfigError) as caught:
        node.start()
    assert str(busy_port) in str(caught.value)
    assert 'free port' in str(caught.value)
    assert set(threading.enumerate()) <= threads_before
    node.close()
    with pytest.raises(MeshConfigError):
        MeshNode(config).start()
