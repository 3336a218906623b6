"""Fixtures for mesh tests: keys, in-process nodes and peer processes, all cleaned up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from mapl_robotics.mesh import (FleetKeyring, MeshConfig, MeshNode, PeerConfig, load_keypair,
                                write_keypair)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def key_dir(tmp_path: Path):
    """Return a factory that writes key pairs for the given ids into one folder."""
    folder = tmp_path / 'keys'

    def make(ids) -> Path:
        for node_id in ids:
            write_keypair(folder, node_id)
        return folder

    return make


@pytest.fixture
def mesh_nodes(tmp_path: Path):
    """Return a factory building a fully connected set of started in-process nodes.

    ``build(ids, secure=True, **overrides)`` returns ``{id: MeshNode}``; every node is closed
    at teardown.
    """
    started: list[MeshNode] = []

    def build(ids, *, secure: bool = True, per_node=None, **overrides) -> dict[str, MeshNode]:
        ports = {node_id: free_port() for node_id in ids}
        keyring = keypairs = None
        if secure:
            folder = tmp_path / f'keys_{len(started)}'
            for node_id in ids:
                write_keypair(folder, node_id)
            keyring = FleetKeyring.from_directory(folder)
            keypairs = {node_id: load_keypair(folder / f'{node_id}.key_secret')
                        for node_id in ids}
        nodes = {}
        for node_id in ids:
            options = dict(overrides)
            options.update((per_node or {}).get(node_id, {}))
            config = MeshConfig(
                node_id=node_id, bind_endpoint=f'tcp://127.0.0.1:{ports[node_id]}',
                peers=tuple(PeerConfig(other, f'tcp://127.0.0.1:{ports[other]}')
                            for other in ids if other != node_id),
                security='curve' if secure else 'none',
                keypair=keypairs[node_id] if secure else None, keyring=keyring, **options)
            node = MeshNode(config)
            started.append(node)
            nodes[node_id] = node.start()
        return nodes

    yield build
    for node in started:
        node.close()


@pytest.fixture
def zmq_context():
    """A ZeroMQ context for raw test sockets; every socket is closed at teardown."""
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def mapl_command(*args: str) -> list[str]:
    return [sys.executable, '-c', 'from mapl_robotics.cli import main; main()', *args]


@pytest.fixture
def processes():
    """Start subprocesses that are killed (whole process group) at teardown."""
    started: list[subprocess.Popen] = []

    def spawn(args: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=kwargs.pop('stderr', subprocess.DEVNULL), **kwargs)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(predicate, *, timeout_s: float, interval_s: float = 0.01) -> bool:
    """Poll ``predicate`` until it returns true or ``timeout_s`` passes."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


@pytest.fixture
def poll():
    """The :func:`wait_for` helper, as a fixture."""
    return wait_for


@pytest.fixture
def mapl():
    """Build a command line that runs ``mapl`` with this interpreter."""
    return mapl_command


@pytest.fixture
def port():
    """Return a factory of free loopback TCP ports."""
    return free_port
