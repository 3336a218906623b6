"""Locate installed package data: bundled maps, scenarios, robot models and launch files.

Data files install under ``<prefix>/share/mapl_robotics/`` (the ament layout, for pip and
colcon alike). In a source checkout they sit at the repository root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mapl_robotics.errors import MapFileNotFoundError

__all__ = ['share_dir', 'bundled_path']

_PACKAGE = 'mapl_robotics'


def _install_prefix() -> Path | None:
    """Return the prefix this module is installed under, such as ``~/.local`` for a ``--user``
    install, from ``<prefix>/lib/pythonX.Y/site-packages/mapl_robotics/``."""
    for parent in Path(__file__).resolve().parents:
        if parent.name in ('site-packages', 'dist-packages'):
            return parent.parent.parent.parent
    return None


def _candidates() -> list[Path]:
    found = [Path(__file__).resolve().parent.parent]
    prefix = _install_prefix()
    if prefix is not None:
        found.append(prefix / 'share' / _PACKAGE)
    prefixes = [sys.prefix, getattr(sys, 'base_prefix', sys.prefix)]
    prefixes += os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
    for prefix in prefixes:
        if prefix:
            found.append(Path(prefix) / 'share' / _PACKAGE)
    # An editable or --user install keeps data next to the interpreter's scheme.
    found.append(Path(sys.executable).resolve().parent.parent / 'share' / _PACKAGE)
    return found


def share_dir() -> Path:
    """Return the folder that contains ``maps/``, ``sim/`` and ``launch/``."""
    for candidate in _candidates():
        if (candidate / 'maps').is_dir() and (candidate / 'sim').is_dir():
            return candidate
    searched = ', '.join(str(c) for c in _candidates())
    raise MapFileNotFoundError(
        f'the mapl_robotics data folder (maps/, sim/) was not found; searched {searched}. '
        'Reinstall the package with pip or colcon so its data files are installed')


def bundled_path(relative: str) -> Path:
    """Return the path of a bundled file such as ``maps/ros/warehouse.yaml``."""
    path = share_dir() / relative
    if not path.exists():
        raise MapFileNotFoundError(
            f'bundled file {relative!r} does not exist under {share_dir()}; '
            'list the folder to see what is shipped')
    return path
