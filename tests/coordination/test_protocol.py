"""Tests of request encoding, validation limits and signatures."""

from __future__ import annotations

import msgpack
import pytest

from mapl_robotics.coordination.protocol import (MAX_REQUEST_BYTES, decode, encode,
                                                 generate_key_pair, sign_request,
                                                 validate_request, verify_request)
from mapl_robotics.errors import LedgerRequestError


def test_signature_roundtrip_through_codec():
    private_key, public_key = generate_key_pair()
    request = sign_request({'op': 'park', 'robot_id': 'a', 'request_id': 3, 'now_s': 1.5},
                           private_key)
    assert verify_request(decode(encode(request)), public_key)


def test_signature_rejects_other_key():
    private_key, _ = generate_key_pair()
    _, other_public_key = generate_key_pair()
    request = sign_request({'op': 'park', 'robot_id': 'a', 'request_id': 3, 'now_s': 1.5},
                           private_key)
    assert not verify_request(request, other_public_key)


def test_decode_rejects_oversized_payload():
    with pytest.raises(LedgerRequestError, match='exceeds the limit'):
        decode(b'\x00' * (MAX_REQUEST_BYTES + 1))


@pytest.mark.parametrize('payload', [b'\xc1garbage', msgpack.packb([1, 2, 3]), b''])
def test_decode_rejects_garbage(payload):
    with pytest.raises(LedgerRequestError):
        decode(payload)


def test_validate_normalizes_numbers():
    clean = validate_request({'op': 'register', 'robot_id': 'r-1', 'request_id': 1,
                              'now_s': 2, 'signature': b's' * 64, 'radius_m': 1,
                              'max_speed_mps': 2, 'public_key': b'k' * 32, 'pose': [1, 2, 0]})
    assert clean['now_s'] == 2.0
    assert clean['pose'] == [1.0, 2.0, 0.0]


@pytest.mark.parametrize('field, value', [
    ('radius_m', 0.0), ('radius_m', float('inf')), ('max_speed_mps', True),
    ('public_key', b'short'), ('pose', [1.0, 2.0]), ('request_id', -1),
])
def test_validate_rejects_bad_register_field(field, value):
    request = {'op': 'register', 'robot_id': 'r', 'request_id': 1, 'now_s': 0.0,
               'signature': b's' * 64, 'radius_m': 0.3, 'max_speed_mps': 1.0,
               'public_key': b'k' * 32, 'pose': [0.0, 0.0, 0.0], field: value}
    with pytest.raises(LedgerRequestError, match=field):
        validate_request(request)
