"""Heartbeats get an acknowledgement only when their floors release messages."""

from __future__ import annotations

import time

import msgpack
import zmq

from mapl_robotics.mesh import MeshConfig, MeshNode, PeerConfig
from mapl_robotics.mesh.schema import (AckPacket, DataPacket, HeartbeatPacket, Priority,
                                       WireMessage, decode_packet, encode_packet)

PLAN = int(Priority.PLAN)


def _drain(sock: zmq.Socket, duration_s: float) -> list:
    """Return the packets that arrive at the raw peer socket within ``duration_s``."""
    packets = []
    limit_s = time.monotonic() + duration_s
    while (left_s := limit_s - time.monotonic()) > 0:
        if sock.poll(max(1, int(left_s * 1e3))):
            frames = sock.recv_multipart()
            packets.append(decode_packet(frames[1:], max_packet_bytes=1 << 20))
    return packets


def test_heartbeat_ack_only_on_release(zmq_context, port):
    node_port, peer_port = port(), port()
    node = MeshNode(MeshConfig(
        node_id='a', bind_endpoint=f'tcp://127.0.0.1:{node_port}', security='none',
        peers=(PeerConfig('b', f'tcp://127.0.0.1:{peer_port}'),))).start()
    received = []
    node.subscribe(received.append)
    try:
        peer_inbound = zmq_context.socket(zmq.ROUTER)
        peer_inbound.bind(f'tcp://127.0.0.1:{peer_port}')
        peer_outbound = zmq_context.socket(zmq.DEALER)
        peer_outbound.connect(node.endpoint)
        session = time.time_ns()

        def heartbeat(floor: int) -> list[bytes]:
            return encode_packet(HeartbeatPacket(sender='b', session=session,
                                                 sent_s=time.time(), echo=None,
                                                 floors=((PLAN, floor),)))

        # Sequence 2 arrives before 1, so it waits in the receive buffer.
        peer_outbound.send_multipart(encode_packet(DataPacket(
            sender='b', session=session, floors=((PLAN, 1),),
            messages=(WireMessage(priority=Priority.PLAN, seq=2, kind='plan',
                                  deadline_fleet_s=time.time() + 10,
                                  payload_bytes=msgpack.packb({'n': 2})),))))
        _drain(peer_inbound, 0.3)

        for _ in range(5):
            peer_outbound.send_multipart(heartbeat(1))
            time.sleep(0.02)
        after_plain_heartbeats = _drain(peer_inbound, 0.3)
        assert after_plain_heartbeats, 'the node sent nothing to its peer'
        assert not [p for p in after_plain_heartbeats if isinstance(p, AckPacket)]
        assert received == []

        # Floor 2: the sender gave up on 1, so 2 goes to the application and is acknowledged.
        peer_outbound.send_multipart(heartbeat(2))
        packets = _drain(peer_inbound, 0.3)
        acked = {pair for p in packets if isinstance(p, AckPacket) for pair in p.seqs}
        assert (PLAN, 2) in acked
        assert [message.payload for message in received] == [{'n': 2}]
        assert any(isinstance(p, HeartbeatPacket) for p in after_plain_heartbeats)
    finally:
        node.close()
