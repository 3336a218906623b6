"""MovingAI .map and .scen files: the bundled benchmark maps and malformed input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mapl_robotics.errors import (EmptyMapError, InvalidCoordinateError, MapFileNotFoundError,
                                  MapFormatError, OutOfBoundsError)
from mapl_robotics.geometry.maps import (cell_centre_xy_m, load_map, load_movingai_map,
                                         load_scenario, read_movingai_map)

MOVINGAI_DIR = Path(__file__).resolve().parents[2] / 'maps' / 'movingai'
MAP_SIZES = {
    'warehouse-10-20-10-2-1': (161, 63),
    'random-32-32-10': (32, 32),
    'room-32-32-4': (32, 32),
}


def map_path(name: str) -> Path:
    return MOVINGAI_DIR / name / f'{name}.map'


@pytest.mark.parametrize('name', sorted(MAP_SIZES))
@pytest.mark.parametrize('cell_size_m', [1.0, 0.5])
def test_extents(name, cell_size_m):
    width, height = MAP_SIZES[name]
    world = load_map(map_path(name), cell_size_m=cell_size_m)
    assert world.bounds_m == pytest.approx((0.0, 0.0, width * cell_size_m,
                                            height * cell_size_m))
    assert world.metadata['width_cells'] == width
    assert world.metadata['height_cells'] == height
    passable = read_movingai_map(map_path(name)).passable
    assert world.free_area_m2 == pytest.approx(passable.sum() * cell_size_m ** 2)


@pytest.mark.parametrize('name, cell, tile', [
    ('warehouse-10-20-10-2-1', (0, 0), 'T'),
    ('warehouse-10-20-10-2-1', (1, 1), '.'),
    ('warehouse-10-20-10-2-1', (26, 2), 'T'),
    ('warehouse-10-20-10-2-1', (36, 2), '.'),
    ('room-32-32-4', (3, 0), '.'),
    ('room-32-32-4', (0, 0), '@'),
    ('room-32-32-4', (0, 3), '.'),
    ('random-32-32-10', (7, 0), '@'),
    ('random-32-32-10', (8, 0), '.'),
])
def test_known_tiles(name, cell, tile):
    x, y = cell
    grid_map = read_movingai_map(map_path(name))
    assert grid_map.tiles[y, x] == tile
    world = load_movingai_map(map_path(name), cell_size_m=1.0)
    height = MAP_SIZES[name][1]
    centre = cell_centre_xy_m(cell, height_cells=height, cell_size_m=1.0)
    assert centre == (x + 0.5, height - y - 0.5)
    assert world.checker(0.0).point_free(centre) == (tile == '.')
    # Grid row 0 (ROS order) is the last row of the file.
    assert world.source_grid.data[height - 1 - y, x] == (0 if tile == '.' else 100)


def test_warehouse_corner_positions():
    world = load_movingai_map(map_path('warehouse-10-20-10-2-1'), cell_size_m=2.0)
    # Tile (1, 1) is the first passable tile of the top-left corner: centre (3, 123) m.
    assert cell_centre_xy_m((1, 1), height_cells=63, cell_size_m=2.0) == (3.0, 123.0)
    checker = world.checker(0.9)
    assert checker.point_free((3.0, 123.0))
    assert not checker.point_free((1.0, 123.0))


@pytest.mark.parametrize('name', sorted(MAP_SIZES))
def test_scenario_starts_and_goals_free(name):
    width, height = MAP_SIZES[name]
    world = load_movingai_map(map_path(name), cell_size_m=1.0)
    checker = world.checker(0.45)
    files = sorted((MOVINGAI_DIR / name).glob('*.scen'))
    assert len(files) == 50
    for scen in files:
        tasks = load_scenario(scen, cell_size_m=1.0)
        assert tasks, scen.name
        starts = np.array([task.start_xy_m for task in tasks])
        goals = np.array([task.goal_xy_m for task in tasks])
        assert checker.points_free(starts).all(), scen.name
        assert checker.points_free(goals).all(), scen.name
        for task in tasks[:5]:
            x, y = task.start_cell
            assert task.start_xy_m == (x + 0.5, height - y - 0.5)
            assert 0 <= x < width
            assert 0 <= y < height


def test_scenario_first_line_values():
    scen = MOVINGAI_DIR / 'warehouse-10-20-10-2-1' / 'warehouse-10-20-10-2-1-even-1.scen'
    tasks = load_scenario(scen, cell_size_m=0.5)
    first = tasks[0]
    assert first.bucket == 23
    assert first.map_name == 'warehouse-10-20-10-2-1.map'
    assert first.start_cell == (69, 39)
    assert first.goal_cell == (139, 11)
    assert first.start_xy_m == (34.75, 11.75)
    assert first.goal_xy_m == (69.75, 25.75)
    assert first.optimal_length_m == pytest.approx(95.65685425 * 0.5)


def test_optimal_length_at_least_straight_line():
    scen = MOVINGAI_DIR / 'room-32-32-4' / 'room-32-32-4-random-1.scen'
    for task in load_scenario(scen, cell_size_m=1.0):
        straight = math.dist(task.start_xy_m, task.goal_xy_m)
        assert task.optimal_length_m >= straight - 1e-6


def scen_line(bucket=0, map_name='small.map', width=4, height=3, start=(0, 0), goal=(3, 2),
              optimal=4.0) -> str:
    return '\t'.join(str(v) for v in (bucket, map_name, width, height, *start, *goal, optimal))


@pytest.fixture
def small_map(tmp_path) -> Path:
    path = tmp_path / 'small.map'
    path.write_text('type octile\nheight 3\nwidth 4\nmap\n..T.\n.@W.\nGS..\n')
    return path


def test_small_map_tiles(small_map):
    world = load_map(small_map, cell_size_m=1.0)
    checker = world.checker(0.0)
    free = {(x, y): checker.point_free((x + 0.5, 3 - y - 0.5)) for x in range(4) for y in range(3)}
    assert free[(2, 0)] is False   # T
    assert free[(1, 1)] is False   # @
    assert free[(2, 1)] is False   # W
    assert free[(0, 2)] is True    # G
    assert free[(1, 2)] is True    # S
    assert free[(0, 0)] is True


def test_scenario_version_1_0(small_map, tmp_path):
    scen = tmp_path / 'small.scen'
    scen.write_text('version 1.0\n' + scen_line() + '\n')
    tasks = load_scenario(scen, cell_size_m=1.0)
    assert [task.goal_xy_m for task in tasks] == [(3.5, 0.5)]


@pytest.mark.parametrize('line, error, message', [
    (scen_line(map_name='other.map'), MapFormatError, "names map 'other.map'"),
    (scen_line(width=5), MapFormatError, 'map size 5 x 3'),
    (scen_line(start=(4, 0)), OutOfBoundsError, r'start tile \(4, 0\) is outside'),
    (scen_line(goal=(0, -1)), OutOfBoundsError, r'goal tile \(0, -1\) is outside'),
    (scen_line(start=(2, 0)), MapFormatError, "'T', which is blocked"),
    (scen_line(optimal='nan'), InvalidCoordinateError, 'optimal length'),
    ('0\tsmall.map\t4\t3\t0\t0\t3', MapFormatError, 'has 7 columns'),
    ('0\tsmall.map\t4\t3\tx\t0\t3\t2\t4.0', MapFormatError, 'non-numeric'),
])
def test_bad_scenario_lines(small_map, tmp_path, line, error, message):
    scen = tmp_path / 'small.scen'
    scen.write_text('version 1\n' + line + '\n')
    with pytest.raises(error, match=message):
        load_scenario(scen, cell_size_m=1.0, map_path=small_map)


def test_scenario_map_name_checked_without_map_path(small_map, tmp_path):
    scen = tmp_path / 'small.scen'
    scen.write_text('version 1\n' + scen_line() + '\n' + scen_line(map_name='big.map') + '\n')
    with pytest.raises(MapFormatError, match="line 3 names map 'big.map'"):
        load_scenario(scen, cell_size_m=1.0)


def test_scenario_against_other_map():
    scen = MOVINGAI_DIR / 'room-32-32-4' / 'room-32-32-4-even-1.scen'
    with pytest.raises(MapFormatError, match="'warehouse-10-20-10-2-1.map'"):
        load_scenario(scen, cell_size_m=1.0, map_path=map_path('warehouse-10-20-10-2-1'))


@pytest.mark.parametrize('header, message', [
    ('version 2\n', "version '2'"),
    ('', "must start with 'version 1'"),
    ('bucket map\n', "must start with 'version 1'"),
])
def test_bad_scenario_version(small_map, tmp_path, header, message):
    scen = tmp_path / 'small.scen'
    scen.write_text(header + scen_line() + '\n')
    with pytest.raises(MapFormatError, match=message):
        load_scenario(scen, cell_size_m=1.0, map_path=small_map)


def test_scenario_missing_files(tmp_path):
    with pytest.raises(MapFileNotFoundError, match='absent.scen'):
        load_scenario(tmp_path / 'absent.scen', cell_size_m=1.0)
    scen = tmp_path / 'lonely.scen'
    scen.write_text('version 1\n' + scen_line(map_name='missing.map') + '\n')
    with pytest.raises(MapFileNotFoundError, match='map_path'):
        load_scenario(scen, cell_size_m=1.0)


@pytest.mark.parametrize('text, message', [
    ('type octile\nheight 2\nwidth 2\n..\n..\n', "line 4: '..' is not a header line"),
    ('type octile\nheight 2\nwidth 2\n', "no 'map' line"),
    ('type hex\nheight 2\nwidth 2\nmap\n..\n..\n', "type 'hex'"),
    ('type octile\nwidth 2\nmap\n..\n..\n', 'lacks height'),
    ('type octile\nheight two\nwidth 2\nmap\n..\n..\n', 'must be integers'),
    ('type octile\nheight 3\nwidth 2\nmap\n..\n..\n', 'contains 2 tile rows'),
    ('type octile\nheight 2\nwidth 2\nmap\n..\n...\n', 'has 3 tiles'),
    ('type octile\nheight 2\nwidth 2\nmap\n.X\n..\n', "unknown tile 'X' at x=1, y=0"),
    ('octile\nheight 2\nwidth 2\nmap\n..\n..\n', 'not a header line'),
])
def test_malformed_map(tmp_path, text, message):
    path = tmp_path / 'bad.map'
    path.write_text(text)
    with pytest.raises(MapFormatError, match=message):
        load_map(path, cell_size_m=1.0)


def test_map_tolerates_crlf_and_trailing_blank_lines(tmp_path):
    path = tmp_path / 'dos.map'
    path.write_bytes(b'type octile\r\nheight 2\r\nwidth 2\r\nmap\r\n.@\r\n..\r\n\r\n')
    world = load_map(path, cell_size_m=1.0)
    assert not world.checker(0.0).point_free((1.5, 1.5))


def test_map_with_no_passable_tile(tmp_path):
    path = tmp_path / 'solid.map'
    path.write_text('type octile\nheight 2\nwidth 2\nmap\n@T\nOW\n')
    with pytest.raises(EmptyMapError, match='no passable tile') as caught:
        load_map(path, cell_size_m=1.0)
    # MovingAI maps have neither thresholds nor unknown cells, so no advice about them.
    assert 'threshold' not in str(caught.value)
    assert 'unknown' not in str(caught.value)


@pytest.mark.parametrize('cell_size_m, error', [
    (None, MapFormatError), (0.0, InvalidCoordinateError), (math.nan, InvalidCoordinateError),
    (-1.0, InvalidCoordinateError),
])
def test_cell_size_required(cell_size_m, error):
    with pytest.raises(error, match='cell_size_m'):
        load_map(map_path('room-32-32-4'), cell_size_m=cell_size_m)


def test_missing_map_file(tmp_path):
    with pytest.raises(MapFileNotFoundError, match='nothing.map'):
        load_map(tmp_path / 'nothing.map', cell_size_m=1.0)
