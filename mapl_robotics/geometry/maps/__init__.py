"""Map loaders: ROS map_server YAML + image, MovingAI ``.map``/``.scen``, polygon YAML/GeoJSON.

:func:`load_map` picks the loader from the file: ``.map`` is MovingAI, ``.geojson`` and
``.json`` are GeoJSON polygon maps, and a ``.yaml``/``.yml`` file is a map_server map when it
has an ``image`` key and a polygon map when it has ``bounds_m``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mapl_robotics.errors import MapFileNotFoundError, MapFormatError
from mapl_robotics.geometry.maps.map_server import (load_map_server_grid, load_map_server_map,
                                                    read_pgm)
from mapl_robotics.geometry.maps.movingai import (MovingAIMap, ScenarioTask, cell_centre_xy_m,
                                                  load_movingai_map, load_scenario,
                                                  read_movingai_map)
from mapl_robotics.geometry.maps.polygon import (disc_polygon, load_geojson_map,
                                                 load_polygon_map, polygon_world,
                                                 repair_polygon)
from mapl_robotics.geometry.world import World
from mapl_robotics.yamlio import load_yaml

__all__ = [
    'MovingAIMap',
    'ScenarioTask',
    'cell_centre_xy_m',
    'disc_polygon',
    'load_geojson_map',
    'load_map',
    'load_map_server_grid',
    'load_map_server_map',
    'load_movingai_map',
    'load_polygon_map',
    'load_scenario',
    'polygon_world',
    'read_movingai_map',
    'read_pgm',
    'repair_polygon',
]


def load_map(path, *, cell_size_m: float | None = None,
             unknown_is_obstacle: bool = True) -> World:
    """Load any supported map file into a :class:`World`.

    :param cell_size_m: metres per tile; required for MovingAI maps and rejected for formats
        that carry their own scale.
    :param unknown_is_obstacle: for map_server maps, whether unknown cells are obstacles.
    """
    path = Path(path)
    if path.is_dir():
        raise MapFileNotFoundError(
            f'map path {str(path)!r} is a folder, not a map file; give the path of the map '
            'file inside it')
    if not path.is_file():
        raise MapFileNotFoundError(f'map file {str(path)!r} does not exist; check the path')
    suffix = path.suffix.lower()
    if suffix == '.map':
        return load_movingai_map(path, cell_size_m=cell_size_m)
    if cell_size_m is not None:
        raise MapFormatError(
            f'cell_size_m={cell_size_m!r} applies to MovingAI .map files only; {str(path)!r} '
            'states its own scale, so leave cell_size_m unset')
    if suffix in ('.geojson', '.json'):
        return load_geojson_map(path)
    if suffix in ('.yaml', '.yml'):
        try:
            document = load_yaml(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise MapFormatError(
                f'map YAML {str(path)!r} is not valid YAML ({error}); fix the syntax') from error
        if isinstance(document, dict) and 'image' in document:
            return load_map_server_map(path, unknown_is_obstacle=unknown_is_obstacle)
        if isinstance(document, dict) and 'bounds_m' in document:
            return load_polygon_map(path)
        if document is None:
            raise MapFormatError(
                f'map YAML {str(path)!r} is empty; a map_server map needs an image key and a '
                'polygon map a bounds_m key')
        if not isinstance(document, dict):
            raise MapFormatError(
                f'map YAML {str(path)!r} contains a {type(document).__name__}, not a mapping; '
                'a map_server map needs an image key and a polygon map a bounds_m key')
        raise MapFormatError(
            f'map YAML {str(path)!r} is neither a map_server map (no image key) nor a polygon '
            'map (no bounds_m key)')
    if suffix == '.scen':
        raise MapFormatError(
            f'{str(path)!r} is a MovingAI scenario, not a map; load it with load_scenario')
    raise MapFormatError(
        f'map file {str(path)!r} has the unsupported extension {suffix!r}; use a map_server or '
        'polygon .yaml, a MovingAI .map, or a .geojson file')
