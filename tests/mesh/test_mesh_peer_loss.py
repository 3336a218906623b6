"""MeshNode.expect_peer_loss: peers stopped on purpose log at DEBUG, for that node only."""

from __future__ import annotations

import logging
import time

import pytest

ENGINE_LOGGER = 'mapl_robotics.mesh.engine'


def _wait_for_dead_lines(caplog, thread_names, *, timeout_s: float) -> dict:
    """Poll the captured records until each thread logged 'peer c is dead'; return them."""
    deadline_s = time.monotonic() + timeout_s
    found = {}
    while time.monotonic() < deadline_s and len(found) < len(thread_names):
        for record in list(caplog.records):
            if (record.threadName in thread_names
                    and record.getMessage().startswith('peer c is dead')):
                found.setdefault(record.threadName, record)
        time.sleep(0.01)
    return found


@pytest.mark.timeout(30)
def test_expected_loss_logs_at_debug(mesh_nodes, caplog):
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    nodes = mesh_nodes(['a', 'b', 'c'], secure=False)
    assert nodes['a'].wait_for_peers(timeout_s=10)
    assert nodes['b'].wait_for_peers(timeout_s=10)

    nodes['a'].expect_peer_loss()
    nodes['c'].close()
    found = _wait_for_dead_lines(caplog, {'mesh-a', 'mesh-b'}, timeout_s=10.0)

    assert found['mesh-a'].levelno == logging.DEBUG
    # Node b did not call expect_peer_loss, so it still logs a WARNING for the same peer.
    assert found['mesh-b'].levelno == logging.WARNING
    assert nodes['a'].metrics()['counters']['peer_down'] >= 1


@pytest.mark.timeout(30)
def test_expected_loss_hidden_at_info(mesh_nodes, caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    nodes = mesh_nodes(['a', 'b', 'c'], secure=False)
    assert nodes['a'].wait_for_peers(timeout_s=10)
    assert nodes['b'].wait_for_peers(timeout_s=10)

    downs_before = nodes['a'].metrics()['counters'].get('peer_down', 0)
    nodes['a'].expect_peer_loss()
    nodes['c'].close()
    found = _wait_for_dead_lines(caplog, {'mesh-b'}, timeout_s=10.0)

    assert found['mesh-b'].levelno == logging.WARNING
    deadline_s = time.monotonic() + 10.0
    while (nodes['a'].metrics()['counters'].get('peer_down', 0) == downs_before
           and time.monotonic() < deadline_s):
        time.sleep(0.01)
    assert nodes['a'].metrics()['counters'].get('peer_down', 0) > downs_before
    assert not nodes['a'].is_alive('c')
    # Closing joins a's I/O thread, so every line it would log about c is in caplog now.
    nodes['a'].close()
    lines_from_a = [record.getMessage() for record in caplog.records
                    if record.threadName == 'mesh-a' and 'peer c is dead' in record.getMessage()]
    assert lines_from_a == []


@pytest.mark.timeout(30)
def test_expect_peer_loss_can_be_undone(mesh_nodes, caplog):
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    nodes = mesh_nodes(['a', 'b', 'c'], secure=False)
    assert nodes['a'].wait_for_peers(timeout_s=10)

    nodes['a'].expect_peer_loss()
    nodes['a'].expect_peer_loss(False)
    nodes['c'].close()
    found = _wait_for_dead_lines(caplog, {'mesh-a'}, timeout_s=10.0)

    assert found['mesh-a'].levelno == logging.WARNING
    assert logging.getLogger(ENGINE_LOGGER).filters == []
