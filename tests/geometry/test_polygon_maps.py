"""Polygon maps in YAML and GeoJSON, and explicit repair of invalid polygons."""

from __future__ import annotations

import json
import math

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from mapl_robotics.errors import (InvalidCoordinateError, InvalidGeometryError,
                                  MapFileNotFoundError, MapFormatError)
from mapl_robotics.geometry.maps import (disc_polygon, load_geojson_map, load_map,
                                         load_polygon_map, polygon_world, repair_polygon)

BOWTIE = [(0, 0), (1, 1), (0, 1), (1, 0)]


def test_bowtie_repair_keeps_both_triangles():
    repaired = repair_polygon(Polygon(BOWTIE))
    assert repaired.is_valid
    assert repaired.area == pytest.approx(0.5)
    # One triangle lies below the crossing at (0.5, 0.5), the other above it.
    assert repaired.contains(Point(0.5, 0.2))
    assert repaired.contains(Point(0.5, 0.8))
    assert not repaired.contains(Point(0.2, 0.5))
    assert not repaired.contains(Point(0.8, 0.5))


def test_buffer_zero_would_lose_a_triangle():
    # The repair exists because the common shortcut silently halves this obstacle.
    assert Polygon(BOWTIE).buffer(0).area == pytest.approx(0.25)


def test_repair_keeps_valid_polygon_unchanged():
    square = Polygon([(0, 0), (2, 0), (2, 2), (0, 2)])
    assert repair_polygon(square) is square


def test_repair_keeps_doubly_wound_area():
    # The outline runs round the 2 x 2 square, then round its lower-left quarter again.
    wound = Polygon([(0, 0), (2, 0), (2, 2), (0, 2), (0, 0), (1, 0), (1, 1), (0, 1)])
    repaired = repair_polygon(wound)
    assert repaired.is_valid
    assert repaired.area == pytest.approx(4.0)


def test_repair_subtracts_holes():
    shell = [(0, 0), (4, 0), (4, 4), (0, 4)]
    hole = [(1, 1), (3, 1), (3, 3), (1, 3)]
    crossing_hole = [(3, 3), (5, 3), (5, 5), (3, 5)]
    repaired = repair_polygon(Polygon(shell, [hole, crossing_hole]))
    assert repaired.is_valid
    assert repaired.area == pytest.approx(16 - 4 - 1)
    assert not repaired.contains(Point(2, 2))


def test_repair_multipolygon_parts():
    parts = MultiPolygon([Polygon(BOWTIE), Polygon([(5, 5), (6, 5), (6, 6)])])
    repaired = repair_polygon(parts)
    assert repaired.area == pytest.approx(1.0)


@pytest.mark.filterwarnings('ignore:invalid value encountered:RuntimeWarning')
def test_repair_rejects_degenerate_and_non_polygon():
    with pytest.raises(InvalidGeometryError, match='encloses no area'):
        repair_polygon(Polygon([(0, 0), (1, 1), (2, 2)]))
    with pytest.raises(InvalidGeometryError, match='Polygon or MultiPolygon'):
        repair_polygon(Point(0, 0))
    with pytest.raises(InvalidCoordinateError, match='NaN'):
        repair_polygon(Polygon([(0, 0), (1, math.nan), (1, 1)]))


def test_world_without_repair_rejects_bowtie():
    with pytest.raises(InvalidGeometryError, match=r'obstacle 1 .*Self-intersection.*repair'):
        polygon_world(bounds_m=(-1, -1, 3, 3),
                      obstacles=[Polygon([(2, 2), (2.5, 2), (2.5, 2.5)]), Polygon(BOWTIE)])


def test_world_with_repair_blocks_both_triangles():
    world = polygon_world(bounds_m=(-1, -1, 3, 3), obstacles=[Polygon(BOWTIE)],
                          repair_invalid=True)
    checker = world.checker(0.0)
    assert not checker.point_free((0.5, 0.2))
    assert not checker.point_free((0.5, 0.8))
    assert checker.point_free((0.2, 0.5))
    assert sum(obstacle.area for obstacle in world.obstacles) == pytest.approx(0.5)


def test_disc_polygon_contains_disc():
    polygon = disc_polygon((1.5, 0.0), radius_m=0.2)
    # The outline is tangent to the disc: its nearest point is exactly the radius away.
    assert polygon.contains(Point(1.5, 0.0))
    assert shapely.distance(Point(1.5, 0.0), polygon.exterior) >= 0.2 - 1e-12
    assert shapely.distance(Point(1.5, 0.0), polygon.exterior) == pytest.approx(0.2, abs=1e-9)
    assert polygon.area == pytest.approx(math.pi * 0.04, rel=0.01)
    with pytest.raises(InvalidCoordinateError, match='radius_m'):
        disc_polygon((0, 0), radius_m=-1.0)


YAML_MAP = """
name: small_office
bounds_m: [0, 0, 20, 10]
obstacles:
  - [[2, 2], [4, 2], [4, 5]]
  - polygon: [[6, 1], [9, 1], [9, 4], [6, 4]]
    holes: [[[7, 2], [8, 2], [8, 3], [7, 3]]]
  - circle: {center_m: [15, 5], radius_m: 0.5}
"""


def test_yaml_polygon_map(tmp_path):
    path = tmp_path / 'office.yaml'
    path.write_text(YAML_MAP)
    world = load_map(path)
    assert world.name == 'small_office'
    assert world.bounds_m == (0.0, 0.0, 20.0, 10.0)
    assert len(world.obstacles) == 3
    checker = world.checker(0.0)
    assert not checker.point_free((3.5, 2.5))
    assert not checker.point_free((6.5, 1.5))
    assert checker.point_free((7.5, 2.5))          # inside the hole
    assert not checker.point_free((15.0, 5.49))
    assert checker.point_free((15.0, 5.52))
    assert world.metadata['format'] == 'polygon_yaml'


def test_yaml_polygon_map_exponent_notation(tmp_path):
    path = tmp_path / 'site.yaml'
    path.write_text('bounds_m: [0, 0, 1e3, 5e2]\nobstacles:\n'
                    '  - circle: {center_m: [1e1, 2e1], radius_m: 5e-1}\n')
    world = load_map(path)
    assert world.bounds_m == (0.0, 0.0, 1000.0, 500.0)
    checker = world.checker(0.0)
    assert not checker.point_free((10.0, 20.49))
    assert checker.point_free((10.0, 20.52))


def test_yaml_bowtie_needs_repair_flag(tmp_path):
    path = tmp_path / 'bowtie.yaml'
    path.write_text('bounds_m: [-1, -1, 2, 2]\nobstacles:\n  - [[0, 0], [1, 1], [0, 1], [1, 0]]\n')
    with pytest.raises(InvalidGeometryError, match='repair_invalid: true'):
        load_map(path)
    repaired = load_polygon_map(path, repair_invalid=True)
    assert repaired.obstacles[0].area == pytest.approx(0.5)
    path.write_text('bounds_m: [-1, -1, 2, 2]\nrepair_invalid: true\nobstacles:\n'
                    '  - [[0, 0], [1, 1], [0, 1], [1, 0]]\n')
    assert load_map(path).obstacles[0].area == pytest.approx(0.5)


@pytest.mark.parametrize('text, error, message', [
    ('bounds_m: [0, 0, 1]\n', MapFormatError, r'\[x_min, y_min, x_max, y_max\]'),
    ('bounds_m: [0, 0, .nan, 1]\n', InvalidCoordinateError, 'finite'),
    ('bounds_m: [0, 0, 1, 1]\ncolour: red\n', MapFormatError, 'unknown key'),
    ('bounds_m: [0, 0, 1, 1]\nobstacles: {a: 1}\n', MapFormatError, 'must be a list'),
    ('bounds_m: [0, 0, 5, 5]\nobstacles:\n  - [[0, 0], [1, .nan], [1, 1]]\n',
     InvalidCoordinateError, 'finite'),
    ('bounds_m: [0, 0, 5, 5]\nobstacles:\n  - [[0, 0], [1, 1]]\n', MapFormatError,
     'at least three'),
    ('bounds_m: [0, 0, 5, 5]\nobstacles:\n  - {square: 1}\n', MapFormatError, 'vertex list'),
    ('bounds_m: [0, 0, 5, 5]\nobstacles:\n  - circle: {center_m: [1, 1]}\n', MapFormatError,
     'center_m and radius_m'),
    ('bounds_m: [0, 0, 5, 5]\nrepair_invalid: yes please\n', MapFormatError,
     'true or false'),
    ('bounds_m: [0, 0, 1, 1]\nobstacles:\n  - [[-1, -1], [2, -1], [2, 2], [-1, 2]]\n',
     Exception, 'no free area'),
])
def test_bad_yaml_polygon_maps(tmp_path, text, error, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(error, match=message):
        load_map(path)


def geojson_document(**extra) -> dict:
    document = {
        'type': 'FeatureCollection',
        'bbox': [0, 0, 10, 6],
        'features': [
            {'type': 'Feature', 'properties': {'name': 'shelf'},
             'geometry': {'type': 'Polygon',
                          'coordinates': [[[1, 1], [3, 1], [3, 2], [1, 2], [1, 1]]]}},
            {'type': 'Feature', 'properties': {'radius_m': 0.4},
             'geometry': {'type': 'Point', 'coordinates': [6, 3]}},
            {'type': 'Feature', 'properties': {},
             'geometry': {'type': 'MultiPolygon',
                          'coordinates': [[[[8, 4], [9, 4], [9, 5], [8, 4]]],
                                          [[[8, 0.5], [9, 0.5], [9, 1], [8, 0.5]]]]}},
        ],
    }
    document.update(extra)
    return document


def test_geojson_map(tmp_path):
    path = tmp_path / 'warehouse.geojson'
    path.write_text(json.dumps(geojson_document()))
    world = load_map(path)
    assert world.bounds_m == (0.0, 0.0, 10.0, 6.0)
    assert len(world.obstacles) == 4
    checker = world.checker(0.0)
    assert not checker.point_free((2.0, 1.5))
    assert not checker.point_free((6.0, 3.39))
    assert not checker.point_free((8.9, 4.5))
    assert checker.point_free((5.0, 5.0))


def test_geojson_bowtie(tmp_path):
    bowtie = {'type': 'Feature', 'properties': {},
              'geometry': {'type': 'Polygon', 'coordinates': [[[0, 0], [1, 1], [0, 1], [1, 0],
                                                               [0, 0]]]}}
    document = {'type': 'FeatureCollection', 'bbox': [-1, -1, 2, 2], 'features': [bowtie]}
    path = tmp_path / 'bowtie.geojson'
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidGeometryError, match='feature 0'):
        load_geojson_map(path)
    world = load_geojson_map(path, repair_invalid=True)
    assert world.obstacles[0].area == pytest.approx(0.5)
    document['repair_invalid'] = True
    path.write_text(json.dumps(document))
    assert load_map(path).obstacles[0].area == pytest.approx(0.5)


def test_geojson_with_byte_order_mark(tmp_path):
    path = tmp_path / 'bom.geojson'
    path.write_bytes(b'\xef\xbb\xbf' + json.dumps(geojson_document()).encode())
    world = load_map(path)
    assert world.bounds_m == (0.0, 0.0, 10.0, 6.0)
    assert len(world.obstacles) == 4


def test_geojson_altitude_dropped(tmp_path, caplog):
    document = geojson_document(bbox=[0, 0, -5, 10, 6, 5])
    shelf = document['features'][0]['geometry']
    shelf['coordinates'] = [[[x, y, 2.5] for x, y in shelf['coordinates'][0]]]
    document['features'][1]['geometry']['coordinates'] = [6, 3, 0]
    flat = load_map(_write_json(tmp_path / 'flat.geojson', geojson_document()))
    with caplog.at_level('INFO', logger='mapl_robotics.geometry.maps.polygon'):
        world = load_map(_write_json(tmp_path / 'altitude.geojson', document))
    assert world.bounds_m == flat.bounds_m
    assert [o.equals(f) for o, f in zip(world.obstacles, flat.obstacles)] == [True] * 4
    assert 'dropped the altitude of 6 positions' in caplog.text


def test_geojson_unlocated_feature_skipped(tmp_path):
    document = geojson_document()
    document['features'].append({'type': 'Feature', 'properties': {'name': 'note'},
                                 'geometry': None})
    world = load_map(_write_json(tmp_path / 'unlocated.geojson', document))
    assert len(world.obstacles) == 4
    document['features'][-1] = {'type': 'Feature', 'properties': {}}
    with pytest.raises(MapFormatError, match='feature 3 has no geometry object'):
        load_map(_write_json(tmp_path / 'missing.geojson', document))


@pytest.mark.parametrize('position, message', [
    ([1, 1, 0, 7], r'\[x, y\] or \[x, y, z\]'),
    ([1, 1, 'high'], 'non-numeric altitude'),
    ([1], r'\[x, y\] or \[x, y, z\]'),
])
def test_geojson_bad_position_rejected(tmp_path, position, message):
    document = geojson_document()
    document['features'][1]['geometry']['coordinates'] = position
    with pytest.raises(MapFormatError, match=message):
        load_map(_write_json(tmp_path / 'bad.geojson', document))


def _write_json(path, document):
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize('change, message', [
    ({'bbox': None}, 'bbox'),
    ({'features': {}}, '"features" must be a list'),
    ({'features': [{'type': 'Feature', 'properties': {},
                    'geometry': {'type': 'Point', 'coordinates': [1, 1]}}]}, 'radius_m'),
    ({'features': [{'type': 'Feature', 'properties': {},
                    'geometry': {'type': 'LineString', 'coordinates': [[1, 1], [2, 2]]}}]},
     "'LineString'"),
    ({'features': [{'type': 'Thing'}]}, '"type": "Feature"'),
])
def test_bad_geojson(tmp_path, change, message):
    document = geojson_document(**change)
    if document['bbox'] is None:
        del document['bbox']
    path = tmp_path / 'bad.geojson'
    path.write_text(json.dumps(document))
    with pytest.raises(MapFormatError, match=message):
        load_map(path)


def test_geojson_syntax_error_and_missing_file(tmp_path):
    path = tmp_path / 'broken.geojson'
    path.write_text('{"type": ')
    with pytest.raises(MapFormatError, match='not valid JSON'):
        load_map(path)
    with pytest.raises(MapFileNotFoundError, match='absent.geojson'):
        load_geojson_map(tmp_path / 'absent.geojson')


def test_unsupported_extension(tmp_path):
    path = tmp_path / 'map.txt'
    path.write_text('hello')
    with pytest.raises(MapFormatError, match="extension '.txt'"):
        load_map(path)
    scen = tmp_path / 'tasks.scen'
    scen.write_text('version 1\n')
    with pytest.raises(MapFormatError, match='load_scenario'):
        load_map(scen)
