"""Fixtures for ROS 2 tests: a private DDS domain per test, node processes, and a probe node.

Every test gets its own ``ROS_DOMAIN_ID`` and keeps discovery on this host
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``), so tests never see each other's traffic and
nothing leaves loopback. Processes started through :func:`spawn` are stopped with SIGINT, then
SIGKILL, at the end of the test, and their output is kept for assertions.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip('rclpy', reason='the ROS 2 wheels (ros-rclpy) are not installed')

from ros_test_support import NodeProcess, Probe  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]

# Domain ids 1..100 are valid everywhere (0..101 map to unprivileged UDP ports on Linux).
_DOMAIN_COUNTER = itertools.count()


def _next_domain_id() -> int:
    return 1 + (os.getpid() * 7 + next(_DOMAIN_COUNTER)) % 100


@pytest.fixture
def ros_domain(monkeypatch) -> int:
    """A DDS domain of this test alone, set in this process's environment too."""
    domain_id = _next_domain_id()
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain_id))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    monkeypatch.delenv('ROS_LOCALHOST_ONLY', raising=False)
    monkeypatch.delenv('ROS_STATIC_PEERS', raising=False)
    return domain_id


@pytest.fixture
def spawn(ros_domain, tmp_path) -> Callable[..., NodeProcess]:
    """Start node processes in the test's domain; all are stopped when the test ends."""
    started: list[NodeProcess] = []
    environment = dict(os.environ, PYTHONUNBUFFERED='1', RCUTILS_LOGGING_BUFFERED_STREAM='0')

    def start(command: list[str], *, name: str) -> NodeProcess:
        node_process = NodeProcess(command, env=environment,
                                   log_path=tmp_path / f'{name}-{len(started)}.log')
        started.append(node_process)
        return node_process

    yield start
    for node_process in started:
        node_process.stop()


@pytest.fixture
def probe(ros_domain):
    """A probe node in the test's domain."""
    node = Probe(ros_domain)
    yield node
    node.close()
