"""PyBullet, imported without the build-time banner it prints on import.

The PyBullet C extension writes ``pybullet build time: <date>`` to a standard stream when it
is first imported (pybullet 3.2.7 writes it to stderr), and that line clutters ``mapl sim``
output. This module imports PyBullet with file descriptors 1 and 2 pointed at temporary files,
because the stream may differ between builds. It then restores both descriptors and writes
back everything the import printed except the banner, so real import-time warnings and
errors stay visible. Simulator modules
import PyBullet from here::

    from mapl_robotics.sim.quiet_pybullet import pybullet
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
import tempfile
from types import ModuleType

__all__ = ['pybullet']

_BANNER_PREFIX = b'pybullet build time:'
_STREAMS = ((1, sys.stdout), (2, sys.stderr))


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers, so output buffered during the import is captured."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        # No C library handle on this platform; output that stays buffered prints later.
        pass


def _import_without_banner() -> ModuleType:
    if 'pybullet' in sys.modules:
        return sys.modules['pybullet']
    for _, stream in _STREAMS:
        if stream is not None:
            stream.flush()
    try:
        saved = {descriptor: os.dup(descriptor) for descriptor, _ in _STREAMS}
    except OSError:
        # A standard descriptor is closed, so there is nothing to keep clean.
        return importlib.import_module('pybullet')
    captures = {descriptor: tempfile.TemporaryFile() for descriptor in saved}
    # NOTE: output that another thread writes to fd 1 or 2 during the import is captured too,
    # and printed after it in one block.
    try:
        for descriptor, capture in captures.items():
            os.dup2(capture.fileno(), descriptor)
        try:
            return importlib.import_module('pybullet')
        finally:
            _flush_c_stdio()
    finally:
        for descriptor, capture in captures.items():
            os.dup2(saved[descriptor], descriptor)
            os.close(saved[descriptor])
            capture.seek(0)
            remaining_lines = [line for line in capture.read().splitlines(keepends=True)
                               if not line.startswith(_BANNER_PREFIX)]
            capture.close()
            if remaining_lines:
                os.write(descriptor, b''.join(remaining_lines))


pybullet = _import_without_banner()
