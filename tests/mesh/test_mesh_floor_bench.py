"""The mesh benchmark's Python floor: real processes, every message acknowledged once."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))

from mesh_floor import PLAN_BURST_SIZE, python_floor  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_floor_acks_every_message():
    peers, state_hz, send_s = 3, 20.0, 1.0
    endpoints = [f'tcp://127.0.0.1:{_free_port()}' for _ in range(peers)]

    result = python_floor(endpoints, send_s=send_s, state_hz=state_hz, seed=5)

    # Each peer sends 20 state updates and one plan burst in its second, to each other peer.
    expected = peers * (peers - 1) * (round(state_hz * send_s) + PLAN_BURST_SIZE)
    assert result['samples'] == expected
    assert result['unacked'] == 0
    assert 0.0 < result['p50_ms'] <= result['p99_ms'] <= result['max_ms']
    assert result['cpu_us_per_message'] > 0.0
