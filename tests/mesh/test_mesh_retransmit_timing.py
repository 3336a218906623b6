"""Mesh engine rules driven by chosen clock values: retransmission timing, sessions, logs.

The engine runs unstarted here, driven by direct calls with chosen clock values, so that the
order of sends, losses and acknowledgements is exact. Its sockets are real; the peer's
endpoint has no listener, so sends are counted as unreachable and nothing arrives.
"""

from __future__ import annotations

import gc
import logging
import socket
import time
from concurrent.futures import Future

import pytest

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh import MeshConfig, MeshNode, PeerConfig
from mapl_robotics.mesh.engine import SendCommand
from mapl_robotics.mesh.schema import AckPacket, DataPacket, Priority, WireMessage
from mapl_robotics.runtime import freeze_startup_heap

_STATE = int(Priority.STATE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def engine():
    config = MeshConfig(node_id='a', bind_endpoint=f'tcp://127.0.0.1:{free_port()}',
                        peers=(PeerConfig('b', f'tcp://127.0.0.1:{free_port()}'),),
                        security='none')
    node = MeshNode(config)
    engine = node._engine
    for peer in config.peers:
        engine._add_peer(peer)
    yield engine
    node.close()


def _send(engine, now_s: float) -> Future:
    future: Future = Future()
    engine._start_send(SendCommand(peer='b', priority=Priority.STATE, kind='state',
                                   payload_bytes=b'\x90', deadline_fleet_s=now_s + 1.0,
                                   deadline_s=now_s + 1.0, created_s=now_s, future=future),
                       now_s)
    return future


def _ack_through(engine, seq: int, now_s: float) -> None:
    engine._handle_ack(AckPacket(sender='b', session=engine.session, seqs=(),
                                 through=((_STATE, seq),)), now_s)


def test_round_trip_counts_when_nothing_was_retransmitted(engine):
    first = _send(engine, 0.0)
    engine._flush_data(0.0)
    _ack_through(engine, 1, 0.004)
    assert first.result(timeout=0).delivered
    assert engine.rtt['b'].srtt_s == pytest.approx(0.004)


def test_waiting_message_gives_no_round_trip(engine):
    # Seq 1 is lost and retransmitted; seq 2 arrives but waits at the receiver until seq 1
    # does, so both are acknowledged together, late. Neither round trip is a network sample.
    lost = _send(engine, 0.0)
    engine._flush_data(0.0)
    waiting = _send(engine, 0.001)
    engine._flush_data(0.001)
    retry_s = engine._outbound[('b', _STATE)].outstanding[1].next_retry_s
    engine._queue_retransmissions(retry_s)
    engine._flush_data(retry_s)
    assert engine._outbound[('b', _STATE)].outstanding[1].attempts == 2
    _ack_through(engine, 2, retry_s + 0.150)
    assert lost.result(timeout=0).attempts == 2
    assert waiting.result(timeout=0).attempts == 1
    assert engine.rtt['b'].srtt_s is None


def test_backoff_only_for_silent_peer(engine):
    silent = _send(engine, 0.0)
    engine._flush_data(0.0)
    retry_s = engine._outbound[('b', _STATE)].outstanding[1].next_retry_s
    engine._queue_retransmissions(retry_s)
    engine._flush_data(retry_s)
    assert engine.rtt['b'].backoff == 2, 'a silent peer must slow the retries down'
    _ack_through(engine, 1, retry_s + 0.001)
    assert silent.result(timeout=0).delivered
    assert engine.rtt['b'].backoff == 2, 'a retransmitted message gives no sample'

    # The peer now acknowledges: a later message sent before an acknowledgement of another one
    # times out, so it or its acknowledgement was lost, and the timeout stays as it is.
    lost = _send(engine, 1.0)
    engine._flush_data(1.0)
    answered = _send(engine, 1.001)
    engine._flush_data(1.001)
    engine._handle_ack(AckPacket(sender='b', session=engine.session, seqs=((_STATE, 3),),
                                 through=()), 1.003)
    assert answered.result(timeout=0).delivered
    assert engine.rtt['b'].backoff == 1, 'a fresh round trip resets the backoff'
    retry_s = engine._outbound[('b', _STATE)].outstanding[2].next_retry_s
    engine._queue_retransmissions(retry_s)
    assert engine._outbound[('b', _STATE)].outstanding[2] is not None
    assert not lost.done()
    assert engine.rtt['b'].backoff == 1


def test_freeze_startup_heap_counts_objects():
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count()
        assert frozen > 1000, 'a process with numpy and pyzmq loaded holds many objects'
    finally:
        gc.unfreeze()


def _data_packet(session: int, seq: int) -> DataPacket:
    message = WireMessage(priority=Priority.STATE, seq=seq, kind='state',
                          deadline_fleet_s=1e9, payload_bytes=b'\x90')
    return DataPacket(sender='b', session=session, messages=(message,),
                      floors=((_STATE, seq),))


def test_lower_session_accepted_after_quiet(engine, caplog):
    # A peer whose clock stepped back restarts with a lower session number. Its packets are
    # dropped as stragglers at first, then accepted once the old session has gone quiet.
    delivered = []
    engine._deliver = delivered.append
    with caplog.at_level(logging.WARNING, logger='mapl_robotics.mesh.engine'):
        engine._handle_data(_data_packet(2000, 1), 0.0)
        engine._handle_data(_data_packet(1000, 1), 0.1)
        dropped_lines = [record.getMessage() for record in caplog.records]
        engine._handle_data(_data_packet(1000, 1), 1.5)
    assert [(message.session, message.seq) for message in delivered] == [(2000, 1), (1000, 1)]
    assert engine.metrics.get('stale_session_dropped') == 1
    assert any('session 1000, older than its current session 2000' in line
               for line in dropped_lines)
    assert any('lower than its previous session 2000' in record.getMessage()
               for record in caplog.records)


def test_peer_state_line_catches_up(engine, caplog):
    # A peer that goes dead and comes back within a second is logged as alive in the end.
    with caplog.at_level(logging.INFO, logger='mapl_robotics.mesh.engine'):
        engine._peer_state_changed('b', alive=False)
        engine._peer_state_changed('b', alive=True)
        assert [record.getMessage() for record in caplog.records] == [
            'peer b is dead (missed heartbeats)']
        logged_s, alive = engine._peer_logged['b']
        engine._peer_logged['b'] = (logged_s - 2.0, alive)
        engine._flush_peer_lines()
    assert caplog.records[-1].getMessage() == 'peer b is alive'
    assert caplog.records[-1].levelno == logging.INFO


def test_absent_peer_logged_as_absent(caplog):
    # A configured peer that never runs: its queue fills with heartbeats, and the warning is
    # about the silent peer, not about a full queue.
    absent = f'tcp://127.0.0.1:{free_port()}'
    config = MeshConfig(node_id='a', bind_endpoint=f'tcp://127.0.0.1:{free_port()}',
                        peers=(PeerConfig('c', absent),), security='none', send_hwm=4)
    node = MeshNode(config)
    with caplog.at_level(logging.WARNING, logger='mapl_robotics.mesh.transport'):
        node.start()
        try:
            deadline_s = time.monotonic() + 5.0
            while node.metrics_registry.get('hwm_drops') == 0 and time.monotonic() < deadline_s:
                time.sleep(0.02)
        finally:
            node.close()
    assert node.metrics_registry.get('hwm_drops') > 0
    lines = [record.getMessage() for record in caplog.records]
    assert any(f'peer c at {absent} has sent nothing' in line for line in lines)
    assert not any('high-water mark' in line for line in lines)


def test_dead_peer_full_queue_not_warned(caplog):
    # A peer that stopped: heartbeats fill its queue for as long as it is away, which the
    # node reports once as a dead peer, not as a full queue every second.
    a_endpoint = f'tcp://127.0.0.1:{free_port()}'
    c_endpoint = f'tcp://127.0.0.1:{free_port()}'
    node_a = MeshNode(MeshConfig(node_id='a', bind_endpoint=a_endpoint,
                                 peers=(PeerConfig('c', c_endpoint),), security='none',
                                 send_hwm=4))
    node_c = MeshNode(MeshConfig(node_id='c', bind_endpoint=c_endpoint,
                                 peers=(PeerConfig('a', a_endpoint),), security='none'))
    with caplog.at_level(logging.DEBUG, logger='mapl_robotics.mesh'):
        node_a.start()
        try:
            node_c.start()
            try:
                assert node_a.wait_for_peers(timeout_s=10.0)
            finally:
                node_c.close()
            # Long enough for the rate-limited warning to have repeated twice.
            time.sleep(2.5)
        finally:
            node_a.close()
    assert node_a.metrics_registry.get('hwm_drops') >= 3
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert (logging.WARNING, 'peer c is dead (missed heartbeats)') in messages
    # The queue may fill in the 75 ms before the peer counts as dead, which warns once.
    assert sum('high-water mark' in text for _, text in messages) <= 1
    assert any(level == logging.DEBUG and 'dead peer c is full' in text
               for level, text in messages)


def test_unusable_peer_endpoint_fails_start():
    config = MeshConfig(node_id='a', bind_endpoint=f'tcp://127.0.0.1:{free_port()}',
                        peers=(PeerConfig('b', 'tcp://no such host:7001'),), security='none')
    node = MeshNode(config)
    with pytest.raises(MeshConfigError) as raised:
        node.start()
    message = str(raised.value)
    assert "cannot connect to peer 'b' at tcp://no such host:7001" in message
    assert 'ID=tcp://HOST:PORT' in message
