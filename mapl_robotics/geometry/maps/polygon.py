"""Native polygon maps in YAML or GeoJSON, and explicit repair of invalid polygons.

YAML layout (coordinates in metres in the map frame)::

    bounds_m: [0.0, 0.0, 20.0, 10.0]      # x_min, y_min, x_max, y_max
    name: small_office                    # optional
    repair_invalid: false                 # optional, see below
    obstacles:
      - [[2, 2], [4, 2], [4, 5]]          # a polygon's outline
      - polygon: [[6, 1], [9, 1], [9, 4], [6, 4]]
        holes: [[[7, 2], [8, 2], [8, 3], [7, 3]]]
      - circle: {center_m: [15, 5], radius_m: 0.5}

GeoJSON: a FeatureCollection (or a single Feature or geometry) whose ``bbox`` member gives the
bounds ``[x_min, y_min, x_max, y_max]``. Polygon and MultiPolygon geometries are obstacles; a
Point with a ``radius_m`` property is a disc. Coordinates are planar metres in the map frame,
not longitude and latitude, and an optional top-level ``repair_invalid`` works as in YAML.
Positions with an altitude ``[x, y, z]`` and a 3D ``bbox`` ``[x_min, y_min, z_min, x_max,
y_max, z_max]`` are accepted: the map is 2D, so z is dropped and an INFO log line counts the
positions that had one. A feature with ``"geometry": null`` (unlocated) is skipped with an
INFO log line. Rings need not repeat their first vertex at the end. A UTF-8 byte order
mark at the start of the file is ignored, in YAML and GeoJSON alike.

Discs become polygons with 64 vertices whose edges circumscribe the disc, so the obstacle is
never smaller than the disc.

An invalid polygon (self-intersecting, for example) is rejected with
:class:`~mapl_robotics.errors.InvalidGeometryError` unless repair is requested, in which case
:func:`repair_polygon` rebuilds it. Repair never makes an obstacle smaller than the region its
outline encloses: the bowtie ``(0,0), (1,1), (0,1), (1,0)`` becomes both triangles (area 0.5),
whereas ``buffer(0)`` would keep one (area 0.25).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from mapl_robotics.errors import (InvalidCoordinateError, InvalidGeometryError,
                                  MapFileNotFoundError, MapFormatError)
from mapl_robotics.geometry.world import World
from mapl_robotics.yamlio import load_yaml

__all__ = ['CIRCLE_QUAD_SEGMENTS', 'disc_polygon', 'load_geojson_map', 'load_polygon_map',
           'polygon_world', 'repair_polygon']

_LOG = logging.getLogger(__name__)

CIRCLE_QUAD_SEGMENTS = 16
_YAML_KEYS = {'bounds_m', 'obstacles', 'name', 'repair_invalid'}


def disc_polygon(center_xy_m, *, radius_m: float) -> Polygon:
    """Return a polygon that contains the disc, with edges tangent to it."""
    center = _finite_point(center_xy_m, 'disc center_m')
    if not (isinstance(radius_m, (int, float)) and not isinstance(radius_m, bool)
            and math.isfinite(radius_m) and radius_m > 0.0):
        raise InvalidCoordinateError(
            f'disc radius_m={radius_m!r} must be a positive finite number of metres')
    # Vertices on a circle of radius r / cos(pi / n) put the edge midpoints on the disc.
    outer_radius = radius_m / math.cos(math.pi / (4 * CIRCLE_QUAD_SEGMENTS))
    return Point(center).buffer(outer_radius, quad_segs=CIRCLE_QUAD_SEGMENTS)


def repair_polygon(geometry: BaseGeometry) -> BaseGeometry:
    """Return a valid polygon or multipolygon covering everything ``geometry`` encloses.

    Every region enclosed by the outline is kept, including the lobes of a self-intersecting
    outline; regions enclosed by holes are removed. A valid input comes back unchanged.

    >>> repair_polygon(Polygon([(0, 0), (1, 1), (0, 1), (1, 0)])).area
    0.5

    :raises InvalidGeometryError: when the input is not polygonal or encloses no area.
    :raises InvalidCoordinateError: when a coordinate is NaN or infinite.
    """
    if not isinstance(geometry, (Polygon, MultiPolygon)):
        raise InvalidGeometryError(
            f'repair_polygon needs a Polygon or MultiPolygon, got {geometry.geom_type}')
    if not np.all(np.isfinite(shapely.get_coordinates(geometry))):
        raise InvalidCoordinateError(
            f'polygon {geometry.wkt[:80]!r} has a NaN or infinite coordinate; fix the vertices')
    if geometry.is_valid and geometry.area > 0.0:
        return geometry
    parts = [_repair_part(part) for part in shapely.get_parts(geometry)]
    repaired = shapely.union_all(np.asarray(parts, dtype=object))
    if repaired.is_empty or repaired.area <= 0.0:
        raise InvalidGeometryError(
            f'polygon {geometry.wkt[:80]!r} encloses no area, so it cannot be an obstacle; '
            'give it at least three vertices that are not on one line')
    return repaired


def _repair_part(polygon: Polygon) -> BaseGeometry:
    filled = _enclosed_area(polygon.exterior)
    for hole in polygon.interiors:
        filled = filled.difference(_enclosed_area(hole))
    return filled


def _enclosed_area(ring) -> BaseGeometry:
    """Return the union of every face that the noded ring encloses."""
    noded = shapely.node(LineString(ring.coords))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if faces.size == 0:
        return Polygon()
    return shapely.union_all(faces)


def polygon_world(*, bounds_m, obstacles, name: str = 'polygons',
                  repair_invalid: bool = False, metadata: dict | None = None,
                  source: str = 'obstacle') -> World:
    """Build a :class:`World` from polygon obstacles, repairing invalid ones only on request."""
    checked = []
    for index, geometry in enumerate(obstacles):
        if not np.all(np.isfinite(shapely.get_coordinates(geometry))):
            raise InvalidCoordinateError(
                f'{source} {index} of map {name!r} has a NaN or infinite coordinate; fix its '
                'vertices')
        if geometry.is_valid and not (geometry.area <= 0.0 and geometry.geom_type in (
                'Polygon', 'MultiPolygon')):
            checked.append(geometry)
            continue
        reason = shapely.is_valid_reason(geometry) if not geometry.is_valid else 'zero area'
        if not repair_invalid:
            raise InvalidGeometryError(
                f'{source} {index} of map {name!r} is invalid ({reason}); fix its vertices, or '
                'request repair (repair_invalid: true in the map file, or '
                'repair_invalid=True) to keep every region its outline encloses')
        repaired = repair_polygon(geometry)
        _LOG.info('map %s: repaired %s %d (%s): area %.6g m^2 after repair',
                  name, source, index, reason, repaired.area)
        checked.append(repaired)
    return World(bounds_m=bounds_m, obstacles=checked, name=name, metadata=metadata)


def load_polygon_map(path, *, repair_invalid: bool | None = None) -> World:
    """Load a polygon map from YAML. ``repair_invalid`` overrides the file's own setting."""
    path = Path(path)
    document = _read_structured(path, loader=load_yaml, kind='YAML')
    if not isinstance(document, dict):
        raise MapFormatError(
            f'polygon map {str(path)!r} must be a mapping with bounds_m and obstacles, got '
            f'{type(document).__name__}')
    return _world_from_yaml_document(document, path, repair_invalid)


def _world_from_yaml_document(document: dict, path: Path, repair_invalid: bool | None) -> World:
    unknown = sorted(set(document) - _YAML_KEYS)
    if unknown:
        raise MapFormatError(
            f'polygon map {str(path)!r} has unknown key(s) {", ".join(map(str, unknown))}; '
            f'allowed keys are {", ".join(sorted(_YAML_KEYS))}')
    if 'bounds_m' not in document:
        raise MapFormatError(
            f'polygon map {str(path)!r} lacks bounds_m: [x_min, y_min, x_max, y_max]')
    bounds = _bounds(document['bounds_m'], path)
    items = document.get('obstacles') or []
    if not isinstance(items, list):
        raise MapFormatError(
            f'polygon map {str(path)!r}: obstacles must be a list, got {type(items).__name__}')
    obstacles = [_yaml_obstacle(item, index, path) for index, item in enumerate(items)]
    repair = _repair_flag(document.get('repair_invalid', False), path)
    if repair_invalid is not None:
        repair = repair_invalid
    name = str(document.get('name', path.stem))
    metadata = {'format': 'polygon_yaml', 'path': str(path)}
    return polygon_world(bounds_m=bounds, obstacles=obstacles, name=name,
                         repair_invalid=repair, metadata=metadata)


def load_geojson_map(path, *, repair_invalid: bool | None = None) -> World:
    """Load a polygon map from GeoJSON (planar metres, bounds in the ``bbox`` member)."""
    path = Path(path)
    document = _read_structured(path, loader=json.loads, kind='JSON')
    if not isinstance(document, dict) or 'type' not in document:
        raise MapFormatError(
            f'GeoJSON map {str(path)!r} must be a GeoJSON object with a "type" member')
    if 'bbox' not in document:
        raise MapFormatError(
            f'GeoJSON map {str(path)!r} lacks a top-level "bbox": [x_min, y_min, x_max, y_max] '
            'giving the map bounds in metres')
    bbox = document['bbox']
    if isinstance(bbox, list) and len(bbox) == 6:
        # A 3D bbox: [x_min, y_min, z_min, x_max, y_max, z_max].
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    bounds = _bounds(bbox, path)

    if document['type'] == 'FeatureCollection':
        features = document.get('features')
        if not isinstance(features, list):
            raise MapFormatError(
                f'GeoJSON map {str(path)!r}: "features" must be a list')
    elif document['type'] == 'Feature':
        features = [document]
    else:
        features = [{'type': 'Feature', 'geometry': document, 'properties': {}}]
    obstacles = []
    altitudes: list[float] = []
    for index, feature in enumerate(features):
        obstacles.extend(_geojson_obstacles(feature, index, path, altitudes))
    if altitudes:
        _LOG.info('GeoJSON map %s: dropped the altitude of %d positions, because the map is 2D',
                  path, len(altitudes))

    repair = _repair_flag(document.get('repair_invalid', False), path)
    if repair_invalid is not None:
        repair = repair_invalid
    name = str(document.get('name', path.stem))
    metadata = {'format': 'geojson', 'path': str(path)}
    return polygon_world(bounds_m=bounds, obstacles=obstacles, name=name,
                         repair_invalid=repair, metadata=metadata, source='feature')


def _read_structured(path: Path, *, loader, kind: str) -> Any:
    if not path.is_file():
        raise MapFileNotFoundError(f'map file {str(path)!r} does not exist; check the path')
    try:
        return loader(path.read_text(encoding='utf-8-sig'))
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MapFormatError(
            f'map file {str(path)!r} is not valid {kind} ({error}); fix the syntax') from error


def _repair_flag(value, path: Path) -> bool:
    if not isinstance(value, bool):
        raise MapFormatError(
            f'map file {str(path)!r}: repair_invalid={value!r} must be true or false')
    return value


def _bounds(value, path: Path) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise MapFormatError(
            f'map file {str(path)!r}: bounds {value!r} must be [x_min, y_min, x_max, y_max]')
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise MapFormatError(
                f'map file {str(path)!r}: bounds {value!r} must contain numbers only')
        if not math.isfinite(item):
            raise InvalidCoordinateError(
                f'map file {str(path)!r}: bounds {value!r} must be finite numbers')
        numbers.append(float(item))
    return tuple(numbers)  # type: ignore[return-value]


def _finite_point(value, label: str) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float, np.floating))
                   for v in value)):
        raise MapFormatError(f'{label} {value!r} must be a pair of numbers [x, y] in metres')
    if not all(math.isfinite(v) for v in value):
        raise InvalidCoordinateError(f'{label} {value!r} must be finite numbers')
    return float(value[0]), float(value[1])


def _geojson_point(value, label: str, altitudes: list[float]) -> tuple[float, float]:
    """Return x and y of a GeoJSON position ``[x, y]`` or ``[x, y, z]``, recording z."""
    if isinstance(value, list) and len(value) == 3:
        altitude = value[2]
        if isinstance(altitude, bool) or not isinstance(altitude, (int, float)):
            raise MapFormatError(f'{label} {value!r} has a non-numeric altitude')
        altitudes.append(float(altitude))
        value = value[:2]
    elif isinstance(value, list) and len(value) != 2:
        raise MapFormatError(f'{label} {value!r} must be a position [x, y] or [x, y, z] in '
                             'metres')
    return _finite_point(value, label)


def _ring(value, label: str, point=_finite_point) -> list[tuple[float, float]]:
    if not isinstance(value, list) or len(value) < 3:
        raise MapFormatError(
            f'{label} must be a list of at least three [x, y] vertices, got {value!r}')
    return [point(vertex, f'{label} vertex {index}') for index, vertex in enumerate(value)]


def _yaml_obstacle(item, index: int, path: Path) -> BaseGeometry:
    label = f'polygon map {str(path)!r} obstacle {index}'
    if isinstance(item, list):
        return Polygon(_ring(item, label))
    if isinstance(item, dict) and set(item) <= {'polygon', 'holes'} and 'polygon' in item:
        holes = item.get('holes') or []
        if not isinstance(holes, list):
            raise MapFormatError(f'{label}: holes must be a list of vertex lists')
        return Polygon(_ring(item['polygon'], label),
                       [_ring(hole, f'{label} hole {k}') for k, hole in enumerate(holes)])
    if isinstance(item, dict) and set(item) == {'circle'} and isinstance(item['circle'], dict):
        circle = item['circle']
        if set(circle) != {'center_m', 'radius_m'}:
            raise MapFormatError(f'{label}: circle needs exactly center_m and radius_m')
        return disc_polygon(_finite_point(circle['center_m'], f'{label} center_m'),
                            radius_m=circle['radius_m'])
    raise MapFormatError(
        f'{label} is {item!r}; use a vertex list, {{polygon: [...], holes: [...]}} or '
        '{circle: {center_m: [x, y], radius_m: r}}')


def _geojson_obstacles(feature, index: int, path: Path,
                       altitudes: list[float]) -> list[BaseGeometry]:
    label = f'GeoJSON map {str(path)!r} feature {index}'
    if not isinstance(feature, dict) or feature.get('type') != 'Feature':
        raise MapFormatError(f'{label} must be an object with "type": "Feature"')
    if 'geometry' in feature and feature['geometry'] is None:
        # GeoJSON allows "geometry": null for an unlocated feature, which blocks nothing.
        _LOG.info('%s has "geometry": null, so it is not an obstacle', label)
        return []
    geometry = feature.get('geometry')
    properties = feature.get('properties') or {}
    if not isinstance(geometry, dict):
        raise MapFormatError(f'{label} has no geometry object')
    kind = geometry.get('type')
    coordinates = geometry.get('coordinates')
    if kind == 'Point':
        if 'radius_m' not in properties:
            raise MapFormatError(
                f'{label} is a Point without a radius_m property; give the disc radius in metres')
        return [disc_polygon(_geojson_point(coordinates, f'{label} coordinates', altitudes),
                             radius_m=properties['radius_m'])]
    if kind == 'Polygon':
        return [_geojson_polygon(coordinates, label, altitudes)]
    if kind == 'MultiPolygon':
        if not isinstance(coordinates, list):
            raise MapFormatError(f'{label}: MultiPolygon coordinates must be a list')
        return [_geojson_polygon(part, f'{label} part {k}', altitudes)
                for k, part in enumerate(coordinates)]
    raise MapFormatError(
        f'{label} has geometry type {kind!r}; obstacles are Polygon, MultiPolygon or Point with '
        'radius_m')


def _geojson_polygon(coordinates, label: str, altitudes: list[float]) -> Polygon:
    if not isinstance(coordinates, list) or not coordinates:
        raise MapFormatError(f'{label}: Polygon coordinates must be a list of rings')

    def point(value, vertex_label: str) -> tuple[float, float]:
        return _geojson_point(value, vertex_label, altitudes)

    rings = [_ring(ring, f'{label} ring {k}', point) for k, ring in enumerate(coordinates)]
    return Polygon(rings[0], rings[1:])
