"""Fixtures for ledger tests: real node processes on loopback, cleaned up after each test."""

from __future__ import annotations

import time

import pytest

from mapl_robotics.coordination import LedgerClient, LocalCluster, generate_key_pair


@pytest.fixture
def make_cluster(tmp_path):
    """Return a factory of started ledger clusters; every node is stopped at teardown."""
    clusters: list[LocalCluster] = []

    def factory(size: int = 3, **kwargs) -> LocalCluster:
        cluster = LocalCluster(size, tmp_path / f'cluster{len(clusters)}', **kwargs)
        clusters.append(cluster)
        cluster.start_all()
        return cluster

    yield factory
    for cluster in clusters:
        cluster.close()
    for cluster in clusters:
        assert not cluster.pids(), f'ledger nodes still running: {cluster.pids()}'


@pytest.fixture
def make_robot_client():
    """Return a factory of robot clients with fresh keys; all are closed at teardown."""
    clients: list[LedgerClient] = []

    def factory(addresses, robot_id: str, **kwargs) -> LedgerClient:
        private_key, _ = generate_key_pair()
        client = LedgerClient(list(addresses), robot_id=robot_id, private_key=private_key,
                              **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def fleet_clock():
    """Return a fleet clock in seconds that starts at 1.0 for this test."""
    origin = time.monotonic() - 1.0
    return lambda: time.monotonic() - origin
