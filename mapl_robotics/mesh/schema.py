"""Wire schema of the mesh: versioned packet types and their msgpack codec.

A packet on the wire is exactly two ZeroMQ frames after the routing id that the ROUTER socket
adds or strips:

1. the preamble: ``b'MAPL'``, one byte of schema version, one byte of packet type;
2. the body: a msgpack array whose layout the packet type fixes (see ``docs/protocol.md``).

:func:`encode_packet` builds and validates both frames before the caller sends anything, so a
packet that fails to encode never leaves a partial multipart message queued on a socket.
:func:`decode_packet` checks the frame count, the preamble, the size limit and every field's
type, and raises :class:`~mapl_robotics.errors.MessageFormatError` with a ``reason`` code
that the node counts per reason.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import threading
from typing import Any, Sequence

import msgpack

from mapl_robotics.errors import MessageFormatError

__all__ = [
    'SCHEMA_VERSION',
    'MAGIC',
    'MAX_NODE_ID_BYTES',
    'NODE_ID_FORM',
    'Priority',
    'PacketType',
    'Message',
    'DataPacket',
    'AckPacket',
    'HeartbeatPacket',
    'Packet',
    'encode_payload',
    'decode_payload',
    'encode_packet',
    'decode_packet',
    'validate_node_id',
]

SCHEMA_VERSION = 1
MAGIC = b'MAPL'
MAX_NODE_ID_BYTES = 64
# Node ids become file names (NAME.key), ZeroMQ routing ids and fields of space-separated log
# lines, so they exclude path separators, whitespace and a leading dot.
_NODE_ID_PATTERN = re.compile(r'[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}' % (MAX_NODE_ID_BYTES - 1))
NODE_ID_FORM = (f'1 to {MAX_NODE_ID_BYTES} ASCII letters, digits, "_", "-" or ".", not '
                'starting with "." (for example r0 or ledger_1)')
MAX_KIND_BYTES = 64
_PREAMBLE_BYTES = len(MAGIC) + 2
# Upper bounds on the msgpack framing around each message (kind up to 64 bytes plus numbers)
# and around a whole packet (sender id, session, lane floors). Packet size limits use them.
MESSAGE_OVERHEAD_BYTES = 128
PACKET_OVERHEAD_BYTES = 256


class Priority(enum.IntEnum):
    """Priority lane of a message; a lower value is sent first.

    Each lane has its own sequence numbers, so a lost plan never holds back an emergency stop
    that was sent after it.
    """

    EMERGENCY = 0
    PLAN = 1
    STATE = 2


class PacketType(enum.IntEnum):
    DATA = 1
    ACK = 2
    HEARTBEAT = 3


@dataclasses.dataclass(frozen=True)
class Message:
    """One application message as delivered to the receiving application.

    ``deadline_fleet_s`` is the absolute fleet time by which the sender wants an
    acknowledgement; ``payload`` is the decoded msgpack value.
    """

    sender: str
    session: int
    priority: Priority
    seq: int
    kind: str
    deadline_fleet_s: float
    payload: Any


@dataclasses.dataclass(frozen=True)
class WireMessage:
    """A message inside a data packet, with its payload still msgpack-encoded."""

    priority: Priority
    seq: int
    kind: str
    deadline_fleet_s: float
    payload_bytes: bytes


@dataclasses.dataclass(frozen=True)
class DataPacket:
    """A batch of messages from one sender session to one receiver.

    ``floors`` maps each priority lane to the sender's lowest unresolved sequence number:
    every lower number was acknowledged or abandoned at its deadline, so the receiver need
    not wait for it.
    """

    sender: str
    session: int
    messages: tuple[WireMessage, ...]
    floors: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class AckPacket:
    """Acknowledgements from ``sender`` for messages of the receiver's session ``session``.

    ``seqs`` lists ``(lane, seq)`` pairs delivered (or delivered before and seen again);
    ``through`` lists ``(lane, n)``: every sequence number up to ``n`` is resolved.
    """

    sender: str
    session: int
    seqs: tuple[tuple[int, int], ...]
    through: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class HeartbeatPacket:
    """Liveness beacon that also carries an NTP-style timestamp exchange.

    ``sent_s`` is the sender's wall clock at sending. ``echo`` is ``(peer_sent_s,
    received_s)`` for the last heartbeat received from the destination, or ``None``.
    """

    sender: str
    session: int
    sent_s: float
    echo: tuple[float, float] | None
    floors: tuple[tuple[int, int], ...]


Packet = DataPacket | AckPacket | HeartbeatPacket


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it matches :data:`NODE_ID_FORM`, else raise MessageFormatError."""
    if not isinstance(node_id, str) or _NODE_ID_PATTERN.fullmatch(node_id) is None:
        raise MessageFormatError(f'invalid node id {node_id!r}: use {NODE_ID_FORM}')
    return node_id


def encode_payload(payload: Any, *, max_payload_bytes: int) -> bytes:
    """Encode an application payload with msgpack and check its size.

    Raises MessageFormatError when the value is not msgpack-serializable (for example a
    numpy array: convert it with ``tolist()``) or when it exceeds ``max_payload_bytes``.
    """
    try:
        encoded = msgpack.packb(payload, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise MessageFormatError(
            f'payload of type {type(payload).__name__} cannot be encoded with msgpack '
            f'({error}); send dicts, lists, str, bytes, int, float, bool or None') from error
    if len(encoded) > max_payload_bytes:
        raise MessageFormatError(
            f'payload is {len(encoded)} bytes, over the limit of {max_payload_bytes} bytes; '
            'split it or raise max_payload_bytes in the mesh configuration')
    # msgpack encodes a tuple dict key as an array, which no receiver can decode into a dict
    # key. Such a message would be dropped by every receiver until its deadline, holding back
    # the rest of its lane, so it is rejected here.
    try:
        decode_payload(encoded)
    except MessageFormatError as error:
        raise MessageFormatError(
            f'payload of type {type(payload).__name__} encodes, but receivers cannot decode '
            f'it ({error}); use str or int dict keys, for example "3,4" instead of (3, 4)'
        ) from error
    return encoded


def _error_text(error: Exception) -> str:
    """Return an error's message, or its class name when the message is empty.

    msgpack raises ``OutOfData`` for truncated input without any message.
    """
    return str(error) or type(error).__name__


def decode_payload(payload_bytes: bytes) -> Any:
    """Decode a payload encoded by :func:`encode_payload`."""
    try:
        return msgpack.unpackb(payload_bytes, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as error:
        raise MessageFormatError(f'payload is not valid msgpack: {_error_text(error)}',
                                 reason='bad_payload') from error


def encode_packet(packet: Packet) -> list[bytes]:
    """Return the two frames of ``packet``; nothing is sent, so a failure leaves no trace."""
    if isinstance(packet, DataPacket):
        packet_type = PacketType.DATA
        body = [packet.sender, packet.session,
                [[int(m.priority), m.seq, m.kind, float(m.deadline_fleet_s), m.payload_bytes]
                 for m in packet.messages],
                [list(pair) for pair in packet.floors]]
    elif isinstance(packet, AckPacket):
        packet_type = PacketType.ACK
        body = [packet.sender, packet.session, [list(pair) for pair in packet.seqs],
                [list(pair) for pair in packet.through]]
    elif isinstance(packet, HeartbeatPacket):
        packet_type = PacketType.HEARTBEAT
        echo = None if packet.echo is None else [float(v) for v in packet.echo]
        body = [packet.sender, packet.session, float(packet.sent_s), echo,
                [list(pair) for pair in packet.floors]]
    else:
        raise MessageFormatError(f'cannot encode {type(packet).__name__}; expected a '
                                 'DataPacket, AckPacket or HeartbeatPacket')
    packer = _packer()
    try:
        body_bytes = packer.pack(body)
    except (TypeError, ValueError, OverflowError) as error:
        packer.reset()
        raise MessageFormatError(f'packet from {packet.sender!r} cannot be encoded: {error}',
                                 reason='encode') from error
    return [_PREAMBLES[packet_type], body_bytes]


_PREAMBLES = {packet_type: MAGIC + bytes((SCHEMA_VERSION, packet_type))
              for packet_type in PacketType}
_THREAD_STATE = threading.local()


def _packer() -> msgpack.Packer:
    """Return this thread's reusable packer (``packb`` builds a new one for every call)."""
    packer = getattr(_THREAD_STATE, 'packer', None)
    if packer is None:
        packer = _THREAD_STATE.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    return packer


def decode_packet(frames: Sequence[bytes], *, max_packet_bytes: int) -> Packet:
    """Parse the frames after the routing id into a packet, validating every field.

    Raises MessageFormatError whose ``reason`` is one of ``frame_count``, ``bad_preamble``,
    ``unknown_version``, ``unknown_type``, ``oversized``, ``bad_body``.
    """
    if len(frames) != 2:
        raise MessageFormatError(f'expected 2 frames after the routing id, got {len(frames)}',
                                 reason='frame_count')
    preamble, body = bytes(frames[0]), frames[1]
    if len(preamble) != _PREAMBLE_BYTES or not preamble.startswith(MAGIC):
        raise MessageFormatError(f'invalid preamble {preamble[:16]!r}', reason='bad_preamble')
    version, packet_type = preamble[4], preamble[5]
    if version != SCHEMA_VERSION:
        raise MessageFormatError(
            f'unknown schema version {version}; this node speaks version {SCHEMA_VERSION}',
            reason='unknown_version')
    if len(body) > max_packet_bytes:
        raise MessageFormatError(
            f'packet body of {len(body)} bytes exceeds the limit of {max_packet_bytes} bytes',
            reason='oversized')
    try:
        fields = msgpack.unpackb(bytes(body), raw=False, strict_map_key=True,
                                 max_bin_len=max_packet_bytes, max_str_len=max_packet_bytes,
                                 max_array_len=100_000, max_map_len=0)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as error:
        raise MessageFormatError(f'packet body is not valid msgpack: {_error_text(error)}',
                                 reason='bad_body') from error
    try:
        if packet_type == PacketType.DATA:
            return _decode_data(fields)
        if packet_type == PacketType.ACK:
            return _decode_ack(fields)
        if packet_type == PacketType.HEARTBEAT:
            return _decode_heartbeat(fields)
    except _FieldError as error:
        raise MessageFormatError(f'invalid {PacketType(packet_type).name} packet: {error}',
                                 reason='bad_body') from None
    raise MessageFormatError(f'unknown packet type {packet_type}', reason='unknown_type')


class _FieldError(Exception):
    pass


def _expect_list(value: Any, length: int | None, what: str) -> list:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        expected = 'an array' if length is None else f'an array of {length} items'
        raise _FieldError(f'{what} must be {expected}, got {type(value).__name__}')
    return value


def _expect_int(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _FieldError(f'{what} must be an integer >= {minimum}, got {value!r}')
    return value


def _expect_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise _FieldError(f'{what} must be a finite number, got {value!r}')
    return float(value)


def _expect_sender(value: Any) -> str:
    if not isinstance(value, str) or _NODE_ID_PATTERN.fullmatch(value) is None:
        raise _FieldError(f'sender must be a node id string, got {value!r}')
    return value


_PRIORITIES = tuple(sorted(Priority))


def _expect_lane(value: Any, what: str) -> int:
    lane = _expect_int(value, what)
    if lane not in Priority._value2member_map_:
        raise _FieldError(f'{what} {lane} is not a priority lane')
    return lane


def _expect_pairs(value: Any, what: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for item in _expect_list(value, None, what):
        lane, number = _expect_list(item, 2, f'{what} item')
        pairs.append((_expect_lane(lane, f'{what} lane'), _expect_int(number, f'{what} seq')))
    return tuple(pairs)


def _decode_data(fields: Any) -> DataPacket:
    sender, session, raw_messages, floors = _expect_list(fields, 4, 'data body')
    messages = []
    for raw in _expect_list(raw_messages, None, 'messages'):
        priority, seq, kind, deadline, payload = _expect_list(raw, 5, 'message')
        # Counted in UTF-8 bytes, as senders count it, so a kind of 64 non-ASCII characters
        # cannot make a message larger than MESSAGE_OVERHEAD_BYTES allows for.
        if not isinstance(kind, str) or not kind or len(kind.encode()) > MAX_KIND_BYTES:
            raise _FieldError(f'message kind must be a non-empty string of at most '
                              f'{MAX_KIND_BYTES} UTF-8 bytes, got {kind!r}')
        if not isinstance(payload, bytes):
            raise _FieldError(f'message payload must be bytes, got {type(payload).__name__}')
        messages.append(WireMessage(
            priority=_PRIORITIES[_expect_lane(priority, 'message priority')],
            seq=_expect_int(seq, 'message seq', minimum=1), kind=kind,
            deadline_fleet_s=_expect_float(deadline, 'message deadline'),
            payload_bytes=payload))
    return DataPacket(sender=_expect_sender(sender),
                      session=_expect_int(session, 'session', minimum=1),
                      messages=tuple(messages), floors=_expect_pairs(floors, 'floors'))


def _decode_ack(fields: Any) -> AckPacket:
    sender, session, seqs, through = _expect_list(fields, 4, 'ack body')
    return AckPacket(sender=_expect_sender(sender),
                     session=_expect_int(session, 'session', minimum=1),
                     seqs=_expect_pairs(seqs, 'acked seqs'),
                     through=_expect_pairs(through, 'acked through'))


def _decode_heartbeat(fields: Any) -> HeartbeatPacket:
    sender, session, sent_s, echo, floors = _expect_list(fields, 5, 'heartbeat body')
    if echo is not None:
        peer_sent, received = _expect_list(echo, 2, 'heartbeat echo')
        echo = (_expect_float(peer_sent, 'echo sent time'),
                _expect_float(received, 'echo receive time'))
    return HeartbeatPacket(sender=_expect_sender(sender),
                           session=_expect_int(session, 'session', minimum=1),
                           sent_s=_expect_float(sent_s, 'heartbeat time'), echo=echo,
                           floors=_expect_pairs(floors, 'floors'))
