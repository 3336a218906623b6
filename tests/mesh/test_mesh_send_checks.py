"""Messages that every receiver would reject are rejected at send(), before they block a lane."""

from __future__ import annotations

import math

import pytest
import zmq

from mapl_robotics.errors import MeshError, MessageFormatError, PeerUnknownError
from mapl_robotics.mesh import Priority


@pytest.mark.parametrize('deadline_s', [math.inf, -math.inf, math.nan, 0.0, -1.0, True, '1'])
def test_send_rejects_deadline(mesh_nodes, deadline_s):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    with pytest.raises(MeshError, match='deadline_s must be a finite number'):
        nodes['a'].send('b', 'stop', {}, priority=Priority.EMERGENCY, deadline_s=deadline_s)
    with pytest.raises(MeshError, match='deadline_s must be a finite number'):
        nodes['a'].broadcast('stop', {}, deadline_s=deadline_s)


def test_lane_flows_after_rejected_deadline(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    with pytest.raises(MeshError):
        nodes['a'].send('b', 'stop', 1, priority=Priority.EMERGENCY, deadline_s=math.inf)
    futures = [nodes['a'].send('b', 'stop', n, priority=Priority.EMERGENCY, deadline_s=5.0)
               for n in range(10)]
    reports = [future.result(timeout=10) for future in futures]
    assert all(report.delivered for report in reports)
    assert [report.seq for report in reports] == list(range(1, 11))


@pytest.mark.parametrize('payload', [{(1, 2): 'x'}, {'a': {(1,): 2}}, [{(0, 0): 1}]])
def test_send_rejects_undecodable_payload(mesh_nodes, payload):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    with pytest.raises(MessageFormatError, match='receivers cannot decode'):
        nodes['a'].send('b', 'plan', payload)
    report = nodes['a'].send('b', 'plan', {'3,4': 'cell'}, deadline_s=5.0).result(timeout=10)
    assert report.seq == 1
    assert nodes['b'].receive(timeout_s=5.0).payload == {'3,4': 'cell'}


def test_send_rejects_unknown_priority(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    with pytest.raises(MeshError, match='priority must be one of'):
        nodes['a'].send('b', 'plan', {}, priority=7)


def test_send_rejects_nan_fleet_clock(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False, clock=lambda: math.nan)
    with pytest.raises(MeshError, match='fleet clock'):
        nodes['a'].send('b', 'plan', {})


def test_unknown_peer_text_has_no_quotes(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    with pytest.raises(PeerUnknownError) as caught:
        nodes['a'].send('zz', 'plan', {})
    assert str(caught.value).startswith("peer 'zz' is not configured")


def test_outbound_socket_caps_unread_input(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    outbound = nodes['a']._engine.transport.outbound
    assert outbound.getsockopt(zmq.RCVHWM) == 4
    assert 0 < outbound.getsockopt(zmq.MAXMSGSIZE) <= 4 * nodes['a'].config.max_packet_bytes


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_io_error_recorded(mesh_nodes, poll):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    node = nodes['a']
    assert node.running
    assert node.io_error is None

    def fail(**_):
        raise RuntimeError('injected loop failure')

    node._engine._iterate = fail
    node._engine.wake()
    assert poll(lambda: not node.running, timeout_s=5.0)
    assert isinstance(node.io_error, RuntimeError)
