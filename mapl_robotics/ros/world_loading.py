"""Load the map and the optional fleet spec named by node parameters."""

from __future__ import annotations

import logging
from pathlib import Path

from mapl_robotics.geometry import World

__all__ = ['load_node_world', 'load_optional_spec']

_DEFAULT_MAP = 'maps/ros/turtlebot3_world.yaml'

_LOG = logging.getLogger(__name__)


def load_optional_spec(spec_file: str):
    """Return the :class:`~mapl_robotics.spec.FleetSpec` in ``spec_file``, or ``None`` for an
    empty string."""
    if not spec_file:
        return None
    from mapl_robotics.spec import load_spec
    return load_spec(Path(spec_file))


def load_node_world(map_yaml: str, *, cell_size_m: float, spec=None) -> World:
    """Load the map named by a node's ``map_yaml`` parameter.

    An empty name falls back to the spec's map, then to the bundled TurtleBot3 world. A
    relative name that does not exist is looked up among the bundled files.
    """
    from mapl_robotics.geometry.maps import load_map
    from mapl_robotics.resources import bundled_path
    if not map_yaml:
        if spec is not None and spec.map is not None:
            _LOG.info('loading map %s from the fleet spec', spec.map.path)
            return spec.load_world()
        map_yaml = _DEFAULT_MAP
    path = Path(map_yaml)
    if not path.is_absolute() and not path.exists():
        path = bundled_path(map_yaml)
    _LOG.info('loading map %s', path)
    if spec is not None and spec.map is not None and spec.map.cell_size_m is not None:
        cell_size_m = spec.map.cell_size_m
    if path.suffix == '.map':
        return load_map(path, cell_size_m=cell_size_m)
    return load_map(path)
