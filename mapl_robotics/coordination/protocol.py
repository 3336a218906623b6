"""Wire format of ledger requests: msgpack encoding, validation limits and Ed25519 signatures.

A request is a flat mapping. Every request has an ``op``. Requests that change a robot's state
(``register``, ``propose``, ``park``, ``deregister``) also carry ``robot_id``, a per-robot
``request_id`` that grows with each new request, the sender's fleet time ``now_s`` and an
Ed25519 ``signature`` over the canonical encoding of every other field. The ledger verifies the
signature inside its replicated apply step against the public key registered for the robot, so
no node, not even the one that forwarded the request, can act for a robot without its key.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from mapl_robotics.errors import LedgerRequestError

__all__ = ['MAX_REQUEST_BYTES', 'MAX_REPLY_BYTES', 'MAX_TRAJECTORY_SAMPLES', 'ROBOT_OPS', 'READ_OPS',
           'encode', 'decode', 'canonical_bytes', 'generate_key_pair', 'public_key_of',
           'sign_request', 'verify_request', 'validate_request']

MAX_REQUEST_BYTES = 256 * 1024
"""Upper limit of one encoded request; larger requests are rejected before decoding."""

MAX_REPLY_BYTES = 512 * 1024 * 1024
"""Upper limit of one reply that a client decodes (a full history or a read of a large fleet)."""

MAX_TRAJECTORY_SAMPLES = 4096
"""Upper limit of samples in one proposed trajectory."""

MAX_ROBOT_RADIUS_M = 10.0
MAX_ROBOT_SPEED_MPS = 50.0
MAX_ABS_COORDINATE_M = 1.0e6
MAX_ABS_TIME_S = 1.0e9
MAX_POTENTIAL_IMPROVEMENT_S = 3600.0

ROBOT_OPS = frozenset({'register', 'propose', 'park', 'deregister'})
"""Operations that act for one robot and need its signature."""

READ_OPS = frozenset({'read'})
"""Operations that only read. They go through the Raft log, so the result is linearizable."""

_ROBOT_ID = re.compile(r'^[A-Za-z0-9_.:-]{1,64}$')
_FIELDS = {
    'register': {'op', 'robot_id', 'request_id', 'now_s', 'signature', 'radius_m',
                 'max_speed_mps', 'public_key', 'pose'},
    'propose': {'op', 'robot_id', 'request_id', 'now_s', 'signature', 'trajectory',
                'base_version', 'potential_improvement_s'},
    'park': {'op', 'robot_id', 'request_id', 'now_s', 'signature'},
    'deregister': {'op', 'robot_id', 'request_id', 'now_s', 'signature'},
    'read': {'op', 'since_version'},
}


def encode(message: Mapping[str, Any]) -> bytes:
    """Encode a request or reply with msgpack."""
    return msgpack.packb(message, use_bin_type=True)


def decode(payload: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> dict:
    """Decode a request (or, with a larger ``max_bytes``, a reply).

    Raises LedgerRequestError for a payload over ``max_bytes`` or one that is not a msgpack map.
    """
    if len(payload) > max_bytes:
        raise LedgerRequestError(
            f'request of {len(payload)} bytes exceeds the limit of {max_bytes} bytes; '
            f'send a trajectory with at most {MAX_TRAJECTORY_SAMPLES} samples')
    try:
        message = msgpack.unpackb(payload, raw=False, strict_map_key=True,
                                  max_bin_len=max_bytes, max_str_len=max_bytes,
                                  max_array_len=max_bytes, max_map_len=max_bytes)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise LedgerRequestError(f'request is not valid msgpack ({error}); encode requests '
                                 'with mapl_robotics.coordination.protocol.encode') from None
    if not isinstance(message, dict):
        raise LedgerRequestError(
            f'request must be a msgpack map, got {type(message).__name__}')
    return message


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return [[key, _sorted(value[key])] for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def canonical_bytes(request: Mapping[str, Any]) -> bytes:
    """Return the bytes a signature covers: every field but ``signature``, keys sorted."""
    fields = {key: value for key, value in request.items() if key != 'signature'}
    return msgpack.packb(_sorted(fields), use_bin_type=True)


def generate_key_pair() -> tuple[bytes, bytes]:
    """Return a new Ed25519 ``(private_key, public_key)`` pair as raw 32-byte strings."""
    private = Ed25519PrivateKey.generate()
    return (private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption()),
            public_key_of(private))


def public_key_of(private_key: bytes | Ed25519PrivateKey) -> bytes:
    """Return the raw 32-byte public key of an Ed25519 private key."""
    if not isinstance(private_key, Ed25519PrivateKey):
        private_key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def sign_request(request: Mapping[str, Any], private_key: bytes) -> dict:
    """Return a copy of ``request`` with an Ed25519 ``signature`` over its canonical bytes."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    signed = dict(request)
    signed['signature'] = key.sign(canonical_bytes(signed))
    return signed


def verify_request(request: Mapping[str, Any], public_key: bytes) -> bool:
    """Return whether ``request['signature']`` is a valid signature by ``public_key``."""
    signature = request.get('signature')
    if not isinstance(signature, bytes) or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature,
                                                              canonical_bytes(request))
    except (InvalidSignature, ValueError):
        return False
    return True


def _finite(request: Mapping, name: str, *, low: float, high: float) -> float:
    value = request.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LedgerRequestError(f'field {name!r} must be a number, got {value!r}')
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise LedgerRequestError(f'field {name!r}={value!r} must be finite and within '
                                 f'[{low}, {high}]')
    return value


def _integer(request: Mapping, name: str) -> int:
    value = request.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 63:
        raise LedgerRequestError(f'field {name!r} must be a non-negative integer, '
                                 f'got {value!r}')
    return value


def _samples(rows: Any, name: str, *, min_count: int, max_count: int) -> list[list[float]]:
    if not isinstance(rows, (list, tuple)) or not min_count <= len(rows) <= max_count:
        count = len(rows) if isinstance(rows, (list, tuple)) else type(rows).__name__
        raise LedgerRequestError(f'field {name!r} must be a list of {min_count} to {max_count} '
                                 f'rows, got {count}')
    result = []
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise LedgerRequestError(f'{name}[{index}] must be [t_s, x_m, y_m, yaw_rad], '
                                     f'got {row!r}')
        values = []
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LedgerRequestError(f'{name}[{index}] contains the non-number {value!r}')
            value = float(value)
            if not math.isfinite(value) or abs(value) > MAX_ABS_TIME_S:
                raise LedgerRequestError(f'{name}[{index}] contains the value {value!r}; every '
                                         'sample must be finite and of a plausible size')
            values.append(value)
        if max(abs(values[1]), abs(values[2])) > MAX_ABS_COORDINATE_M:
            raise LedgerRequestError(f'{name}[{index}] position {values[1:3]} is farther than '
                                     f'{MAX_ABS_COORDINATE_M} m from the origin')
        result.append(values)
    times = [row[0] for row in result]
    for index in range(1, len(times)):
        if not times[index] > times[index - 1]:
            raise LedgerRequestError(
                f'{name} times must strictly increase, but t_s={times[index]} at row {index} '
                f'follows t_s={times[index - 1]}')
    return result


def validate_request(request: Mapping[str, Any]) -> dict:
    """Check a decoded request's fields and return a normalized copy.

    Raises :class:`LedgerRequestError` naming the first invalid field. Signatures are not
    checked here, because that needs the ledger's registry.
    """
    if not isinstance(request, Mapping):
        raise LedgerRequestError(f'request must be a mapping, got {type(request).__name__}')
    op = request.get('op')
    if op not in _FIELDS:
        raise LedgerRequestError(f'unknown op {op!r}; expected one of {sorted(_FIELDS)}')
    unknown = set(request) - _FIELDS[op]
    if unknown:
        raise LedgerRequestError(f'{op} request has unknown fields {sorted(unknown)}; '
                                 f'allowed: {sorted(_FIELDS[op])}')
    clean: dict[str, Any] = {'op': op}
    if op == 'read':
        clean['since_version'] = _integer(request, 'since_version') \
            if 'since_version' in request else 0
        return clean
    robot_id = request.get('robot_id')
    if not isinstance(robot_id, str) or not _ROBOT_ID.match(robot_id):
        raise LedgerRequestError(f'robot_id {robot_id!r} must be 1 to 64 characters from '
                                 'letters, digits and _ . : -')
    clean['robot_id'] = robot_id
    clean['request_id'] = _integer(request, 'request_id')
    clean['now_s'] = _finite(request, 'now_s', low=0.0, high=MAX_ABS_TIME_S)
    signature = request.get('signature')
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise LedgerRequestError('field signature must be a 64-byte Ed25519 signature; sign '
                                 'requests with protocol.sign_request')
    clean['signature'] = signature
    if op == 'register':
        clean['radius_m'] = _finite(request, 'radius_m', low=1e-3, high=MAX_ROBOT_RADIUS_M)
        clean['max_speed_mps'] = _finite(request, 'max_speed_mps', low=1e-3,
                                         high=MAX_ROBOT_SPEED_MPS)
        public_key = request.get('public_key')
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise LedgerRequestError('field public_key must be a raw 32-byte Ed25519 public key')
        clean['public_key'] = public_key
        pose = request.get('pose')
        if not isinstance(pose, (list, tuple)) or len(pose) != 3:
            raise LedgerRequestError(f'field pose must be [x_m, y_m, yaw_rad], got {pose!r}')
        clean['pose'] = _samples([[0.0, *pose]], 'pose', min_count=1, max_count=1)[0][1:]
    elif op == 'propose':
        clean['trajectory'] = _samples(request.get('trajectory'), 'trajectory', min_count=1,
                                       max_count=MAX_TRAJECTORY_SAMPLES)
        clean['base_version'] = _integer(request, 'base_version')
        clean['potential_improvement_s'] = (
            _finite(request, 'potential_improvement_s', low=0.0,
                    high=MAX_POTENTIAL_IMPROVEMENT_S)
            if 'potential_improvement_s' in request else 0.0)
    return clean
