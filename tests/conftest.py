"""Shared pytest fixtures."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MAPS_DIR = REPO_ROOT / 'maps'


@pytest.fixture
def maps_dir() -> Path:
    return MAPS_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return free_tcp_port()
