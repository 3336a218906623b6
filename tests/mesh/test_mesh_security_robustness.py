"""Hostile input from raw ZeroMQ sockets: unknown keys, forged sender ids, malformed and
replayed packets. Each is dropped and counted, and the node keeps serving."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from mapl_robotics.mesh import generate_keypair
from mapl_robotics.mesh.audit import AuditLog
from mapl_robotics.mesh.schema import (MAGIC, SCHEMA_VERSION, DataPacket, Priority, WireMessage,
                                       encode_packet)


def counter(node, name):
    return node.metrics()['counters'].get(name, 0)


def forged_packet(sender: str, *, seq: int = 1, session: int | None = None) -> list[bytes]:
    session = session if session is not None else time.time_ns() + 10**12
    return encode_packet(DataPacket(
        sender=sender, session=session, floors=((int(Priority.PLAN), 1),),
        messages=(WireMessage(priority=Priority.PLAN, seq=seq, kind='plan',
                              deadline_fleet_s=time.time() + 10,
                              payload_bytes=msgpack.packb({'forged': True})),)))


def curve_client(context, server_node, keypair):
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_publickey = keypair.public_key
    sock.curve_secretkey = keypair.secret_key
    sock.curve_serverkey = server_node.config.keypair.public_key
    sock.connect(server_node.endpoint)
    return sock


def assert_still_serving(nodes):
    report = nodes['a'].send('b', 'plan', {'after': True}, deadline_s=5.0).result(timeout=10)
    assert report.delivered


def test_unknown_key_gets_no_delivery(mesh_nodes, zmq_context, tmp_path, poll):
    audit_path = tmp_path / 'b_audit.jsonl'
    nodes = mesh_nodes(['a', 'b'], per_node={'b': {'audit_path': str(audit_path)}})
    received = []
    nodes['b'].subscribe(received.append)
    intruder = curve_client(zmq_context, nodes['b'], generate_keypair())
    intruder.send_multipart(forged_packet('a'))
    assert poll(lambda: any(entry['event'] == 'auth_rejected'
                            for entry in AuditLog.read(audit_path)), timeout_s=10)
    assert_still_serving(nodes)
    assert [message.payload for message in received] == [{'after': True}]


def test_plaintext_client_rejected_by_curve_node(mesh_nodes, zmq_context):
    nodes = mesh_nodes(['a', 'b'])
    received = []
    nodes['b'].subscribe(received.append)
    plain = zmq_context.socket(zmq.DEALER)
    plain.linger = 0
    plain.connect(nodes['b'].endpoint)
    plain.send_multipart(forged_packet('a'))
    assert_still_serving(nodes)
    assert [message.payload for message in received] == [{'after': True}]


def test_sender_must_match_key(mesh_nodes, zmq_context, tmp_path, poll):
    audit_path = tmp_path / 'b_audit.jsonl'
    nodes = mesh_nodes(['a', 'b', 'c'], per_node={'b': {'audit_path': str(audit_path)}})
    received = []
    nodes['b'].subscribe(received.append)
    impostor = curve_client(zmq_context, nodes['b'], nodes['c'].config.keypair)
    impostor.send_multipart(forged_packet('a'))
    assert poll(lambda: counter(nodes['b'], 'sender_mismatch') == 1, timeout_s=10)
    entries = [e for e in AuditLog.read(audit_path) if e['event'] == 'sender_mismatch']
    assert entries[0]['claimed'] == 'a'
    assert entries[0]['authenticated'] == 'c'
    assert_still_serving(nodes)
    assert [message.payload for message in received] == [{'after': True}]


@pytest.mark.parametrize('frames, reason', [
    ([b'\xde\xad\xbe\xef garbage'], 'frame_count'),
    ([b'one', b'two', b'three'], 'frame_count'),
    ([b'XXXX\x01\x01', b'\x90'], 'bad_preamble'),
    ([MAGIC + bytes((SCHEMA_VERSION + 7, 1)), msgpack.packb(['a', 1, [], []])],
     'unknown_version'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), b'\x00' * (200 * 1024)], 'oversized'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), b'\xc1 not msgpack'], 'bad_body'),
])
def test_malformed_input_dropped_and_counted(mesh_nodes, zmq_context, poll, frames, reason):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    raw = zmq_context.socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(nodes['b'].endpoint)
    for _ in range(3):
        raw.send_multipart(frames)
    assert poll(lambda: counter(nodes['b'], 'malformed.' + reason) == 3, timeout_s=10)
    assert counter(nodes['b'], 'malformed_dropped') == 3
    assert_still_serving(nodes)


def test_replayed_sequence_number_not_redelivered(mesh_nodes, zmq_context, poll):
    """A copy of a delivered packet (same sender, session and seq) is dropped and re-acked."""
    nodes = mesh_nodes(['a', 'b'], secure=False)
    received = []
    nodes['b'].subscribe(received.append)
    assert nodes['a'].send('b', 'plan', {'n': 1}, deadline_s=5.0).result(timeout=10).delivered
    raw = zmq_context.socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(nodes['b'].endpoint)
    replay = forged_packet('a', seq=1, session=nodes['a'].session)
    for _ in range(5):
        raw.send_multipart(replay)
    # A retransmission by node a itself may add to the count, so the check is a minimum.
    assert poll(lambda: counter(nodes['b'], 'duplicates_dropped') >= 5, timeout_s=10)
    assert [message.payload for message in received] == [{'n': 1}]
    assert_still_serving(nodes)
    assert received[-1].payload == {'after': True}
    assert received[-1].seq == 2


def test_unknown_sender_dropped(mesh_nodes, zmq_context, poll):
    nodes = mesh_nodes(['a', 'b'], secure=False)
    raw = zmq_context.socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(nodes['b'].endpoint)
    raw.send_multipart(forged_packet('stranger'))
    assert poll(lambda: counter(nodes['b'], 'unknown_sender') == 1, timeout_s=10)
    assert_still_serving(nodes)


def test_restarted_sender_new_session(mesh_nodes, zmq_context, poll):
    """A restarted sender starts a new session; stragglers from the old one are dropped."""
    from mapl_robotics.mesh import MeshNode

    nodes = mesh_nodes(['a', 'b'], secure=False)
    received = []
    nodes['b'].subscribe(received.append)
    assert nodes['a'].send('b', 'plan', {'n': 1}, deadline_s=5.0).result(timeout=10).delivered
    old_session = nodes['a'].session
    nodes['a'].close()
    restarted = MeshNode(nodes['a'].config).start()
    try:
        assert restarted.session > old_session
        report = restarted.send('b', 'plan', {'n': 2}, deadline_s=5.0).result(timeout=10)
        assert report.seq == 1
        raw = zmq_context.socket(zmq.DEALER)
        raw.connect(nodes['b'].endpoint)
        raw.send_multipart(forged_packet('a', seq=2, session=old_session))
        assert poll(lambda: counter(nodes['b'], 'stale_session_dropped') >= 1, timeout_s=10)
        assert [message.payload for message in received] == [{'n': 1}, {'n': 2}]
        assert [message.session for message in received] == [old_session, restarted.session]
    finally:
        restarted.close()
