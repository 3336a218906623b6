"""map_server YAML + image maps: the real nav2 maps and every documented semantic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mapl_robotics.errors import (EmptyMapError, InvalidCoordinateError, MapFileNotFoundError,
                                  MapFormatError)
from mapl_robotics.geometry.maps import (load_map, load_map_server_grid, load_map_server_map,
                                         read_pgm)

MAPS_DIR = Path(__file__).resolve().parents[2] / 'maps'


def write_pgm(path: Path, pixels, *, max_value: int = 255, plain: bool = False) -> None:
    pixels = np.asarray(pixels)
    rows, cols = pixels.shape
    if plain:
        body = '\n'.join(' '.join(str(int(v)) for v in row) for row in pixels)
        path.write_text(f'P2\n# test map\n{cols} {rows}\n{max_value}\n{body}\n')
        return
    dtype = np.uint8 if max_value < 256 else np.dtype('>u2')
    header = f'P5\n# test map\n{cols} {rows}\n{max_value}\n'.encode()
    path.write_bytes(header + pixels.astype(dtype).tobytes())


def write_yaml(path: Path, *, image: str = 'map.pgm', resolution: float = 0.5,
               origin=(0.0, 0.0, 0.0), negate=0, occupied: float = 0.65,
               free: float = 0.25, mode: str | None = None, extra: str = '') -> Path:
    lines = [f'image: {image}', f'resolution: {resolution}',
             f'origin: [{origin[0]}, {origin[1]}, {origin[2]}]', f'negate: {negate}',
             f'occupied_thresh: {occupied}', f'free_thresh: {free}']
    if mode is not None:
        lines.append(f'mode: {mode}')
    path.write_text('\n'.join(lines) + '\n' + extra)
    return path


@pytest.fixture(scope='module')
def warehouse():
    return load_map(MAPS_DIR / 'ros' / 'warehouse.yaml')


def image_cell_centre(row: int, col: int, *, rows: int, origin, resolution: float):
    """World centre of image pixel (row, col) for an unrotated map: row 0 is the top."""
    return (origin[0] + (col + 0.5) * resolution, origin[1] + (rows - row - 0.5) * resolution)


def test_warehouse_extents(warehouse):
    assert warehouse.name == 'warehouse'
    assert warehouse.bounds_m == pytest.approx((-15.1, -25.0, -15.1 + 1006 * 0.03,
                                                -25.0 + 1674 * 0.03))
    grid = warehouse.source_grid
    assert (grid.rows, grid.cols) == (1674, 1006)
    assert grid.resolution_m == 0.03
    assert warehouse.metadata['mode'] == 'trinary'


@pytest.mark.parametrize('row, col, value, expected', [
    (0, 9, 0, 100),        # black: occupied
    (697, 941, 0, 100),
    (0, 0, 205, -1),       # map_saver grey: unknown
    (1020, 214, 205, -1),
    (819, 368, 254, 0),    # white: free
    (1392, 142, 255, 0),
])
def test_warehouse_known_pixels(warehouse, row, col, value, expected):
    pixels, _ = read_pgm(MAPS_DIR / 'ros' / 'warehouse.pgm')
    assert pixels[row, col] == value
    grid = warehouse.source_grid
    assert grid.data[1673 - row, col] == expected
    centre = image_cell_centre(row, col, rows=1674, origin=(-15.1, -25.0), resolution=0.03)
    assert np.allclose(grid.cell_centres_xy_m([1673 - row], [col])[0], centre)
    assert warehouse.checker(0.0).point_free(centre) == (expected == 0)


def test_warehouse_pixel_world_position(warehouse):
    # Pixel (819, 368) from the top-left is at x = -15.1 + 368.5 * 0.03,
    # y = -25 + (1674 - 819 - 0.5) * 0.03.
    centre = image_cell_centre(819, 368, rows=1674, origin=(-15.1, -25.0), resolution=0.03)
    assert centre == pytest.approx((-4.045, 0.635))
    row, col = warehouse.source_grid.world_to_cell(np.array(centre))
    assert (row, col) == (1674 - 1 - 819, 368)


def test_turtlebot3_world_extents_and_pixels():
    world = load_map(MAPS_DIR / 'ros' / 'turtlebot3_world.yaml')
    assert world.bounds_m == pytest.approx((-10.0, -10.0, 9.2, 9.2))
    grid = world.source_grid
    # free_thresh 0.196 is just below (255 - 205) / 255 = 0.19608, so grey stays unknown.
    assert grid.data[383 - 195, 4] == -1
    assert grid.data[383 - 132, 178] == 100
    assert grid.data[383 - 183, 242] == 0
    checker = world.checker(0.0)
    assert checker.point_free(image_cell_centre(183, 242, rows=384, origin=(-10, -10),
                                                resolution=0.05))
    assert not checker.point_free(image_cell_centre(132, 178, rows=384, origin=(-10, -10),
                                                    resolution=0.05))


def test_trinary_pgm_free_unknown_occupied(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[254, 205, 0]])
    path = write_yaml(tmp_path / 'map.yaml', mode='trinary', occupied=0.65, free=0.25)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[0, -1, 100]]
    world = load_map(path)
    checker = world.checker(0.0)
    assert checker.point_free((0.25, 0.25))
    assert not checker.point_free((0.75, 0.25))
    assert not checker.point_free((1.25, 0.25))


def test_exponent_notation_numbers_load(tmp_path):
    # yaml-cpp, which ROS uses, reads 5e-2 as a number; PyYAML's YAML 1.1 rules would not.
    write_pgm(tmp_path / 'map.pgm', [[254, 205, 0]])
    path = tmp_path / 'map.yaml'
    path.write_text('image: map.pgm\nresolution: 5e-1\norigin: [-1e1, 2e0, 0e0]\nnegate: 0\n'
                    'occupied_thresh: 6.5e-1\nfree_thresh: 2.5e-1\n')
    grid, description = load_map_server_grid(path)
    assert description['resolution'] == 0.5
    assert description['origin'] == [-10.0, 2.0, 0.0]
    assert description['occupied_thresh'] == 0.65
    assert grid.data.tolist() == [[0, -1, 100]]
    assert load_map(path).bounds_m == pytest.approx((-10.0, 2.0, -8.5, 2.5))


def test_unknown_free_only_on_request(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[254, 205, 0]])
    path = write_yaml(tmp_path / 'map.yaml', free=0.25)
    world = load_map(path, unknown_is_obstacle=False)
    assert world.source_grid.data.tolist() == [[0, -1, 100]]
    assert world.checker(0.0).point_free((0.75, 0.25))
    assert not world.checker(0.0).point_free((1.25, 0.25))


def test_trinary_thresholds_are_strict(tmp_path):
    # p = (255 - x) / 255; x = 89 gives p = 0.65 exactly (not > 0.65): unknown.
    write_pgm(tmp_path / 'map.pgm', [[0, 88, 89, 90, 191, 192, 255]])
    path = write_yaml(tmp_path / 'map.yaml', occupied=166 / 255, free=64 / 255)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[100, 100, -1, -1, -1, 0, 0]]


def test_image_row_zero_is_top(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[0, 254], [254, 254], [254, 254]])
    path = write_yaml(tmp_path / 'map.yaml', resolution=1.0, origin=(2.0, 3.0, 0.0))
    world = load_map(path)
    assert world.source_grid.data[2, 0] == 100
    assert world.bounds_m == (2.0, 3.0, 4.0, 6.0)
    checker = world.checker(0.0)
    assert not checker.point_free((2.5, 5.5))
    assert checker.point_free((2.5, 3.5))


def test_negate_swaps_black_and_white(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[0, 254, 128]])
    path = write_yaml(tmp_path / 'map.yaml', negate=1, occupied=0.65, free=0.196)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[0, 100, -1]]


def test_scale_mode_grades_between_thresholds(tmp_path):
    pixels = [[255, 0, 128, 191, 64]]
    write_pgm(tmp_path / 'map.pgm', pixels)
    path = write_yaml(tmp_path / 'map.yaml', mode='scale', occupied=0.65, free=0.196)
    grid, _ = load_map_server_grid(path)
    p = 1.0 - np.array(pixels[0]) / 255.0
    middle = [int(np.rint((v - 0.196) / (0.65 - 0.196) * 100.0)) for v in p[2:4]]
    assert grid.data.tolist() == [[0, 100, *middle, 100]]
    assert middle == [67, 12]


def test_scale_mode_transparent_pixel_unknown(tmp_path):
    pil_image = pytest.importorskip('PIL.Image')
    rgba = np.array([[[255, 255, 255, 255], [255, 255, 255, 100], [0, 0, 0, 255]]],
                    dtype=np.uint8)
    pil_image.fromarray(rgba, mode='RGBA').save(tmp_path / 'map.png')
    path = write_yaml(tmp_path / 'map.yaml', image='map.png', mode='scale')
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[0, -1, 100]]


def test_trinary_png_with_colour(tmp_path):
    pil_image = pytest.importorskip('PIL.Image')
    rgb = np.array([[[250, 255, 254], [10, 0, 5], [200, 205, 210]]], dtype=np.uint8)
    pil_image.fromarray(rgb, mode='RGB').save(tmp_path / 'map.png')
    path = write_yaml(tmp_path / 'map.yaml', image='map.png', free=0.196)
    grid, _ = load_map_server_grid(path)
    # The mean of the channels decides: 253 free, 5 occupied, 205 unknown.
    assert grid.data.tolist() == [[0, 100, -1]]


def test_raw_mode_values(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[0, 37, 100, 101, 255]])
    path = write_yaml(tmp_path / 'map.yaml', mode='raw', negate=1)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[0, 37, 100, -1, -1]]
    world = load_map(path)
    checker = world.checker(0.0)
    assert checker.point_free((0.25, 0.25))
    assert not checker.point_free((0.75, 0.25))


def test_origin_yaw_rotates_map(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[254, 254, 254, 254], [0, 254, 254, 254]])
    path = write_yaml(tmp_path / 'map.yaml', resolution=1.0, origin=(1.0, 1.0, math.pi / 2))
    world = load_map(path)
    # Grid x runs along world +y and grid y along world -x.
    assert world.bounds_m == pytest.approx((-1.0, 1.0, 1.0, 5.0))
    occupied = world.source_grid.cell_centres_xy_m([0], [0])[0]
    assert occupied == pytest.approx((0.5, 1.5))
    checker = world.checker(0.0)
    assert not checker.point_free((0.5, 1.5))
    assert checker.point_free((0.5, 3.5))
    assert checker.point_free((-0.5, 1.5))


def test_origin_yaw_45_degrees(tmp_path):
    write_pgm(tmp_path / 'map.pgm', np.full((4, 4), 254))
    path = write_yaml(tmp_path / 'map.yaml', resolution=1.0, origin=(0.0, 0.0, math.pi / 4))
    world = load_map(path)
    half_diagonal = 4.0 / math.sqrt(2.0)
    assert world.bounds_m == pytest.approx((-half_diagonal, 0.0, half_diagonal,
                                            2 * half_diagonal))
    checker = world.checker(0.0)
    assert checker.point_free((0.0, half_diagonal))
    # Corner regions of the bounding box lie outside the map: obstacles.
    assert not checker.point_free((-half_diagonal + 0.1, 0.1))
    assert world.free_area_m2 == pytest.approx(16.0)


def test_plain_and_16_bit_pgm(tmp_path):
    write_pgm(tmp_path / 'plain.pgm', [[254, 205, 0]], plain=True)
    write_pgm(tmp_path / 'deep.pgm', [[65535, 205 * 257, 0]], max_value=65535)
    for image in ('plain.pgm', 'deep.pgm'):
        path = write_yaml(tmp_path / f'{image}.yaml', image=image, free=0.196)
        grid, _ = load_map_server_grid(path)
        assert grid.data.tolist() == [[0, -1, 100]], image
    pixels, max_value = read_pgm(tmp_path / 'deep.pgm')
    assert max_value == 65535
    assert pixels.dtype == np.uint16
    assert pixels.tolist() == [[65535, 52685, 0]]


def test_p5_with_crlf_header_not_shifted(tmp_path, caplog):
    (tmp_path / 'map.pgm').write_bytes(b'P5\r\n# saved on Windows\r\n3 1\r\n255\r\n'
                                       + bytes([254, 205, 0]))
    with caplog.at_level('WARNING', logger='mapl_robotics.geometry.maps.map_server'):
        pixels, _ = read_pgm(tmp_path / 'map.pgm')
    assert pixels.tolist() == [[254, 205, 0]]
    assert '\\r\\n' in caplog.text
    grid, _ = load_map_server_grid(write_yaml(tmp_path / 'map.yaml'))
    assert grid.data.tolist() == [[0, -1, 100]]


def test_p5_first_sample_may_be_newline_byte(tmp_path):
    # With exactly the declared raster after '\r', a first sample of 10 is data, not a line end.
    (tmp_path / 'map.pgm').write_bytes(b'P5\n3 1\n255\r' + bytes([10, 205, 0]))
    pixels, _ = read_pgm(tmp_path / 'map.pgm')
    assert pixels.tolist() == [[10, 205, 0]]


def test_p5_surplus_raster_bytes_logged(tmp_path, caplog):
    (tmp_path / 'map.pgm').write_bytes(b'P5\n3 1\n255\n' + bytes([254, 205, 0, 0, 0]))
    with caplog.at_level('WARNING', logger='mapl_robotics.geometry.maps.map_server'):
        pixels, _ = read_pgm(tmp_path / 'map.pgm')
    assert pixels.tolist() == [[254, 205, 0]]
    assert '2 bytes after the 3 raster bytes' in caplog.text


def test_missing_image(tmp_path):
    path = write_yaml(tmp_path / 'map.yaml', image='absent.pgm')
    with pytest.raises(MapFileNotFoundError, match='absent.pgm'):
        load_map(path)


def test_missing_yaml(tmp_path):
    with pytest.raises(MapFileNotFoundError, match='nowhere.yaml'):
        load_map(tmp_path / 'nowhere.yaml')
    with pytest.raises(FileNotFoundError):
        load_map_server_map(tmp_path / 'nowhere.yaml')


@pytest.mark.parametrize('text, message', [
    ('', 'is empty'),
    ('# only a comment\n', 'is empty'),
    ('- 1\n- 2\n', 'contains a list, not a mapping'),
])
def test_empty_or_list_yaml_named(tmp_path, text, message):
    path = tmp_path / 'map.yaml'
    path.write_text(text)
    with pytest.raises(MapFormatError, match=message):
        load_map(path)


def test_folder_given_as_map_or_image(tmp_path):
    with pytest.raises(MapFileNotFoundError, match='is a folder'):
        load_map(tmp_path)
    path = write_yaml(tmp_path / 'map.yaml', image='.')
    with pytest.raises(MapFileNotFoundError, match='is a folder'):
        load_map(path)


@pytest.mark.parametrize('content, message', [
    (b'P6\n3 1\n255\n\x00\x00\x00', 'P6'),
    (b'P5\n3\n', 'truncated header'),
    (b'P5\nthree 1\n255\n\x00\x00\x00', 'malformed header'),
    (b'P5\n3 1\n255\n\x00\x00', 'truncated'),
    (b'P5\n3 1\n0\n\x00\x00\x00', 'maxval'),
    (b'P2\n3 1\n255\n0 1\n', 'truncated'),
    (b'P2\n3 1\n100\n0 1 200\n', 'above its maxval'),
])
def test_malformed_pgm(tmp_path, content, message):
    (tmp_path / 'map.pgm').write_bytes(content)
    path = write_yaml(tmp_path / 'map.yaml')
    with pytest.raises(MapFormatError, match=message):
        load_map(path)


@pytest.mark.parametrize('kwargs, extra, error, message', [
    ({'mode': 'fancy'}, '', MapFormatError, "mode'='fancy'"),
    ({'occupied': 0.2, 'free': 0.3}, '', MapFormatError, 'free_thresh < occupied_thresh'),
    ({'negate': 2}, '', MapFormatError, 'negate'),
    ({'resolution': 0.0}, '', InvalidCoordinateError, 'resolution'),
    ({'origin': ('.nan', 0.0, 0.0)}, '', InvalidCoordinateError, r'origin\[0\]'),
])
def test_malformed_yaml_values(tmp_path, kwargs, extra, error, message):
    write_pgm(tmp_path / 'map.pgm', [[254, 0]])
    path = write_yaml(tmp_path / 'map.yaml', extra=extra, **kwargs)
    with pytest.raises(error, match=message):
        load_map(path)


def test_yaml_missing_keys_and_bad_origin(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[254, 0]])
    (tmp_path / 'a.yaml').write_text('image: map.pgm\nresolution: 0.1\norigin: [0, 0, 0]\n')
    with pytest.raises(MapFormatError, match='negate, occupied_thresh, free_thresh'):
        load_map_server_map(tmp_path / 'a.yaml')
    (tmp_path / 'b.yaml').write_text(
        'image: map.pgm\nresolution: 0.1\norigin: [0, 0]\nnegate: 0\noccupied_thresh: 0.65\n'
        'free_thresh: 0.2\n')
    with pytest.raises(MapFormatError, match=r'\[x, y, yaw\]'):
        load_map(tmp_path / 'b.yaml')
    (tmp_path / 'c.yaml').write_text('image: [unclosed\n')
    with pytest.raises(MapFormatError, match='not valid YAML'):
        load_map(tmp_path / 'c.yaml')


def test_map_with_no_free_cell(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[0, 205], [205, 0]])
    path = write_yaml(tmp_path / 'map.yaml')
    with pytest.raises(EmptyMapError, match='no free cell'):
        load_map(path)


def test_cell_size_rejected_for_map_server(tmp_path):
    write_pgm(tmp_path / 'map.pgm', [[254, 0]])
    path = write_yaml(tmp_path / 'map.yaml')
    with pytest.raises(MapFormatError, match='cell_size_m'):
        load_map(path, cell_size_m=1.0)


def test_trinary_alpha_joins_the_mean(tmp_path):
    pil_image = pytest.importorskip('PIL.Image')
    # Grey 254 at alpha 0 has shade (3 * 254 + 0) / (4 * 255) = 0.747, so p = 0.253: unknown
    # with free_thresh 0.196; opaque, it is free.
    grey_alpha = np.array([[[254, 0], [254, 255], [0, 255]]], dtype=np.uint8)
    pil_image.fromarray(grey_alpha, mode='LA').save(tmp_path / 'map.png')
    path = write_yaml(tmp_path / 'map.yaml', image='map.png', free=0.196)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[-1, 0, 100]]


def test_palette_png_without_transparency(tmp_path):
    pil_image = pytest.importorskip('PIL.Image')
    # Grey 200 has p = 55 / 255 = 0.216: unknown. An invented opaque alpha channel would
    # average in 255 and make it free.
    grey = np.array([[254, 200, 0]], dtype=np.uint8)
    pil_image.fromarray(grey, mode='L').convert('P').save(tmp_path / 'map.png')
    path = write_yaml(tmp_path / 'map.yaml', image='map.png', free=0.196)
    grid, _ = load_map_server_grid(path)
    assert grid.data.tolist() == [[0, -1, 100]]


def test_unreadable_image(tmp_path):
    (tmp_path / 'map.png').write_bytes(b'not an image at all')
    path = write_yaml(tmp_path / 'map.yaml', image='map.png')
    with pytest.raises(MapFormatError, match='could not be read'):
        load_map(path)
