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


class _TrackedContext:
    """A ZeroMQ context that keeps every socket it made, so that none is garbage-collected
    unclosed during a test, and closes them all at teardown."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.sockets: list[zmq.Socket] = []

    def socket(self, socket_type: int) -> zmq.Socket:
        sock = self.context.socket(socket_type)
        sock.linger = 0
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.context.term()


@pytest.fixture
def zmq_context():
    """A context for raw test sockets; every socket is closed at teardown."""
    context = _TrackedContext()
    yield context
    context.close()


def mapl_command(*args: str) -> list[str]:
    return [sys.executable, '-c', 'from mapl_robotics.cli import main; main()', *args]


@pytest.fixture
def processes():
    """Start subprocesses that are killed (whole process group) at teardown."""
    started: list[subprocess.Popen] = []
    logs = []

    def spawn(args: list[str], *, stderr_path: Path | None = None) -> subprocess.Popen:
        stderr = subprocess.DEVNULL
        if stderr_path is not None:
            stderr = open(stderr_path, 'w', encoding='utf-8')
            logs.append(stderr)
        process = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    for log in logs:
        log.close()


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
