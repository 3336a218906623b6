"""Wire codec: round trips, and every kind of malformed input rejected with a reason."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapl_robotics.errors import MessageFormatError
from mapl_robotics.mesh.schema import (MAGIC, SCHEMA_VERSION, AckPacket, DataPacket,
                                       HeartbeatPacket, PacketType, Priority, WireMessage,
                                       decode_packet, decode_payload, encode_packet,
                                       encode_payload)

LIMIT = 4096


def data_packet(**overrides) -> DataPacket:
    fields = dict(sender='r1', session=7, floors=((1, 3),),
                  messages=(WireMessage(priority=Priority.PLAN, seq=3, kind='plan',
                                        deadline_fleet_s=12.5, payload_bytes=b'\x91\x01'),))
    fields.update(overrides)
    return DataPacket(**fields)


def test_data_packet_round_trip():
    packet = data_packet()
    frames = encode_packet(packet)
    assert len(frames) == 2
    assert frames[0] == MAGIC + bytes((SCHEMA_VERSION, PacketType.DATA))
    assert decode_packet(frames, max_packet_bytes=LIMIT) == packet


def test_ack_and_heartbeat_round_trip():
    ack = AckPacket(sender='r2', session=9, seqs=((0, 1), (2, 5)), through=((1, 4),))
    beat = HeartbeatPacket(sender='r2', session=9, sent_s=100.25, echo=(99.0, 99.5),
                           floors=((0, 1),))
    assert decode_packet(encode_packet(ack), max_packet_bytes=LIMIT) == ack
    assert decode_packet(encode_packet(beat), max_packet_bytes=LIMIT) == beat


@settings(max_examples=60, deadline=None)
@given(seqs=st.lists(st.integers(min_value=1, max_value=2**40), min_size=0, max_size=20),
       payload=st.binary(max_size=64), deadline=st.floats(allow_nan=False,
                                                          allow_infinity=False))
def test_data_packet_round_trip_property(seqs, payload, deadline):
    messages = tuple(WireMessage(priority=Priority.STATE, seq=seq, kind='state',
                                 deadline_fleet_s=deadline, payload_bytes=payload)
                     for seq in seqs)
    packet = data_packet(messages=messages)
    assert decode_packet(encode_packet(packet), max_packet_bytes=1 << 20) == packet


def test_payload_encode_rejects_unserializable():
    with pytest.raises(MessageFormatError, match='cannot be encoded'):
        encode_payload(object(), max_payload_bytes=LIMIT)


def test_payload_encode_rejects_oversized():
    with pytest.raises(MessageFormatError, match='over the limit'):
        encode_payload(b'x' * 100, max_payload_bytes=50)


def test_payload_decode_rejects_garbage():
    with pytest.raises(MessageFormatError) as caught:
        decode_payload(b'\xc1')
    assert caught.value.reason == 'bad_payload'


@pytest.mark.parametrize('frames, reason', [
    ([b'garbage'], 'frame_count'),
    ([b'a', b'b', b'c'], 'frame_count'),
    ([b'NOPE\x01\x01', b'\x90'], 'bad_preamble'),
    ([MAGIC + bytes((99, 1)), b'\x90'], 'unknown_version'),
    ([MAGIC + bytes((SCHEMA_VERSION, 42)), msgpack.packb(['r1', 1, [], []])], 'unknown_type'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), b'\x00' * (LIMIT + 1)], 'oversized'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), b'\xc1\xc1'], 'bad_body'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), msgpack.packb(['r1', 1, [[1, 0, 'k', 1.0, b'']],
                                                        []])], 'bad_body'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), msgpack.packb(['r1', 1, [[9, 1, 'k', 1.0, b'']],
                                                        []])], 'bad_body'),
    ([MAGIC + bytes((SCHEMA_VERSION, 1)), msgpack.packb(['', 1, [], []])], 'bad_body'),
    ([MAGIC + bytes((SCHEMA_VERSION, 2)), msgpack.packb({'sender': 'r1'})], 'bad_body'),
    ([MAGIC + bytes((SCHEMA_VERSION, 3)), msgpack.packb(['r1', 1, float('nan'), None, []])],
     'bad_body'),
])
def test_decode_rejects_malformed(frames, reason):
    with pytest.raises(MessageFormatError) as caught:
        decode_packet(frames, max_packet_bytes=LIMIT)
    assert caught.value.reason == reason


def test_encode_failure_leaves_no_frames():
    """A packet whose payload field cannot be encoded fails before any frame exists."""
    bad = data_packet(messages=(WireMessage(priority=Priority.PLAN, seq=1, kind='plan',
                                            deadline_fleet_s=1.0, payload_bytes=object()),))
    with pytest.raises(MessageFormatError):
        encode_packet(bad)


def test_kind_limit_counts_utf8_bytes():
    """A kind of 64 characters but 128 UTF-8 bytes is over the 64-byte limit."""
    wide = data_packet(messages=(WireMessage(priority=Priority.PLAN, seq=1, kind='\u00e9' * 64,
                                             deadline_fleet_s=1.0, payload_bytes=b'\x01'),))
    with pytest.raises(MessageFormatError) as caught:
        decode_packet(encode_packet(wide), max_packet_bytes=LIMIT)
    assert caught.value.reason == 'bad_body'
    assert 'UTF-8 bytes' in str(caught.value)
    narrow = data_packet(messages=(WireMessage(priority=Priority.PLAN, seq=1, kind='\u00e9' * 32,
                                               deadline_fleet_s=1.0, payload_bytes=b'\x01'),))
    assert decode_packet(encode_packet(narrow), max_packet_bytes=LIMIT) == narrow


def test_empty_msgpack_error_named():
    """msgpack's FormatError has no message; the log line names the error class instead."""
    frames = [MAGIC + bytes((SCHEMA_VERSION, PacketType.DATA)), b'\xc1']
    with pytest.raises(MessageFormatError) as caught:
        decode_packet(frames, max_packet_bytes=LIMIT)
    assert str(caught.value) == 'packet body is not valid msgpack: FormatError'
