"""ROS map_server maps: a YAML description plus an image (PGM, PNG, BMP).

The YAML keys and the pixel interpretation follow ROS map_server and nav2_map_server
(``nav2_map_server/src/map_io.cpp``, ``loadMapYaml`` and ``loadMapFromFile``):

- required keys: ``image`` (relative to the YAML file), ``resolution`` (m/pixel), ``origin``
  ``[x, y, yaw]``, ``occupied_thresh``, ``free_thresh`` and ``negate``. ``origin`` is the pose
  of the lower-left pixel's outer corner, with yaw counter-clockwise. The optional ``mode`` is
  ``trinary`` (the default), ``scale`` or ``raw``.
- ``shade`` is the pixel brightness in [0, 1]: the mean of the colour channels divided by the
  maximum value. In trinary mode an alpha channel joins the mean. The occupancy probability is
  ``p = 1 - shade``, or ``p = shade`` when ``negate`` is set; for 8-bit images without negate
  that is ``p = (255 - x) / 255``.
- trinary: ``p > occupied_thresh`` gives 100 (occupied), ``p < free_thresh`` gives 0 (free),
  anything else -1 (unknown).
- scale: a pixel that is not fully opaque is unknown; otherwise as trinary, except that values
  between the thresholds become ``rint(100 * (p - free_thresh) / (occupied_thresh -
  free_thresh))``.
- raw: the value is ``round(255 * shade)`` when that lies in [0, 100], else unknown. Raw mode
  ignores ``negate`` and the thresholds.
- image row 0 is the top of the map; grid row 0 (ROS order) is the bottom row of the image.

One deliberate difference from nav2: in trinary mode without ``negate``, an 8-bit pixel of
exactly 205 stays unknown even when ``free_thresh`` exceeds ``(255 - 205) / 255 = 0.196``.
map_saver writes unknown cells as 205. nav2's map_saver wrote ``free_thresh: 0.25`` next to
such images until it switched to fixed trinary thresholds (navigation2 pull request 5278, 2025).
The plain formula would turn every unknown cell of those maps into free space.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import yaml

from mapl_robotics.errors import (InvalidCoordinateError, MapFileNotFoundError,
                                  MapFormatError)
from mapl_robotics.geometry.occupancy import FREE, OCCUPIED, UNKNOWN, OccupancyGrid
from mapl_robotics.geometry.world import World
from mapl_robotics.yamlio import load_yaml

__all__ = ['MAP_MODES', 'load_map_server_grid', 'load_map_server_map', 'read_pgm']

_LOG = logging.getLogger(__name__)

MAP_MODES = ('trinary', 'scale', 'raw')
SAVER_UNKNOWN_PIXEL = 205
_WHITESPACE_BYTES = (b' ', b'\t', b'\n', b'\r', b'\x0b', b'\x0c')
_PGM_TOKEN = re.compile(rb'(#[^\n\r]*[\n\r]*)|(\s+)|([^\s#]+)')


def load_map_server_map(yaml_path, *, unknown_is_obstacle: bool = True) -> World:
    """Load a map_server YAML and its image into a :class:`World`.

    Unknown cells (and graded cells between the thresholds in scale or raw mode) are
    obstacles unless ``unknown_is_obstacle`` is false.
    """
    path = Path(yaml_path)
    grid, description = load_map_server_grid(path)
    metadata = {'format': 'map_server', 'path': str(path), **description}
    return World.from_occupancy_grid(grid, unknown_is_obstacle=unknown_is_obstacle,
                                     name=path.stem, metadata=metadata)


def load_map_server_grid(yaml_path) -> tuple[OccupancyGrid, dict]:
    """Return the occupancy grid of a map_server YAML and the parsed YAML fields."""
    path = Path(yaml_path)
    description = _read_description(path)
    image_path = Path(description['image'])
    if not image_path.is_absolute():
        image_path = path.parent / image_path
    if not image_path.is_file():
        problem = 'is a folder' if image_path.is_dir() else 'does not exist'
        raise MapFileNotFoundError(
            f'map image {str(image_path)!r} named by {str(path)!r} {problem}; fix the '
            "'image' key (relative paths start at the YAML file's folder) or add the image")
    description['image_path'] = str(image_path)
    values = _image_values(image_path, description)
    x, y, yaw = description['origin']
    grid = OccupancyGrid(data=np.flipud(values), resolution_m=description['resolution'],
                         origin_xy_m=(x, y), origin_yaw_rad=yaw)
    return grid, description


def _read_description(path: Path) -> dict:
    if not path.is_file():
        raise MapFileNotFoundError(
            f'map file {str(path)!r} does not exist; check the path')
    try:
        document = load_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise MapFormatError(
            f'map YAML {str(path)!r} is not valid YAML ({error}); fix the syntax') from error
    if not isinstance(document, dict):
        raise MapFormatError(
            f'map YAML {str(path)!r} must be a mapping with the keys image, resolution, origin, '
            f'negate, occupied_thresh and free_thresh, got {type(document).__name__}')
    missing = [key for key in ('image', 'resolution', 'origin', 'negate', 'occupied_thresh',
                               'free_thresh') if key not in document]
    if missing:
        raise MapFormatError(
            f'map YAML {str(path)!r} lacks the required key(s) {", ".join(missing)}; '
            'map_server needs image, resolution, origin, negate, occupied_thresh, free_thresh')

    image = document['image']
    if not isinstance(image, str) or not image.strip():
        raise MapFormatError(
            f"map YAML {str(path)!r}: 'image'={image!r} must be a non-empty file name")
    resolution = _number(path, 'resolution', document['resolution'])
    if not resolution > 0.0:
        raise InvalidCoordinateError(
            f"map YAML {str(path)!r}: 'resolution'={resolution!r} must be a positive number "
            'of metres per pixel')
    origin = document['origin']
    if not isinstance(origin, (list, tuple)) or len(origin) != 3:
        raise MapFormatError(
            f"map YAML {str(path)!r}: 'origin'={origin!r} must be a list [x, y, yaw] of three "
            'numbers (metres, metres, radians)')
    origin = [_number(path, f'origin[{i}]', value) for i, value in enumerate(origin)]

    negate = document['negate']
    if negate not in (0, 1) or isinstance(negate, float):
        raise MapFormatError(
            f"map YAML {str(path)!r}: 'negate'={negate!r} must be 0 or 1 (or false/true)")
    occupied = _number(path, 'occupied_thresh', document['occupied_thresh'])
    free = _number(path, 'free_thresh', document['free_thresh'])
    if not 0.0 <= free < occupied <= 1.0:
        raise MapFormatError(
            f"map YAML {str(path)!r}: free_thresh={free} and occupied_thresh={occupied} must "
            'satisfy 0 <= free_thresh < occupied_thresh <= 1')

    mode = document.get('mode', 'trinary')
    if mode not in MAP_MODES:
        raise MapFormatError(
            f"map YAML {str(path)!r}: 'mode'={mode!r} is not supported; use one of "
            f'{", ".join(MAP_MODES)}')
    return {'image': image, 'resolution': resolution, 'origin': origin, 'negate': bool(negate),
            'occupied_thresh': occupied, 'free_thresh': free, 'mode': mode}


def _number(path: Path, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MapFormatError(
            f'map YAML {str(path)!r}: {key}={value!r} must be a number')
    number = float(value)
    if not math.isfinite(number):
        raise InvalidCoordinateError(
            f'map YAML {str(path)!r}: {key}={value!r} must be a finite number')
    return number


def _image_values(image_path: Path, description: dict) -> np.ndarray:
    """Return int8 occupancy values in image row order (row 0 at the top)."""
    mode = description['mode']
    colour, alpha, max_value = _read_image(image_path)
    colour_mean = colour.astype(float).mean(axis=-1)
    if mode == 'trinary' and alpha is not None:
        # nav2 averages red, green, blue and alpha; a grey pixel counts as three equal colours.
        shade = (3.0 * colour_mean + alpha.astype(float)) / (4.0 * max_value)
    else:
        shade = colour_mean / max_value

    if mode == 'raw':
        raw = np.round(shade * 255.0)
        return np.where((raw >= FREE) & (raw <= OCCUPIED), raw, UNKNOWN).astype(np.int8)
    occupancy = shade if description['negate'] else 1.0 - shade
    occupied_thresh = description['occupied_thresh']
    free_thresh = description['free_thresh']

    if mode == 'trinary':
        values = np.full(shade.shape, UNKNOWN, dtype=np.int8)
    else:
        scaled = np.rint((occupancy - free_thresh) / (occupied_thresh - free_thresh) * 100.0)
        values = np.clip(scaled, FREE, OCCUPIED).astype(np.int8)
    values[occupancy < free_thresh] = FREE
    values[occupancy > occupied_thresh] = OCCUPIED
    if mode == 'scale' and alpha is not None:
        values[alpha < max_value] = UNKNOWN

    if mode == 'trinary' and not description['negate'] and max_value == 255:
        saver_unknown = np.all(colour == SAVER_UNKNOWN_PIXEL, axis=-1)
        if alpha is not None:
            saver_unknown &= alpha == max_value
        relabelled = saver_unknown & (values == FREE)
        if relabelled.any():
            _LOG.warning('map image %s: %d pixels of value %d would be free with free_thresh=%s; '
                         'they are map_saver unknown cells and stay unknown (use free_thresh '
                         '0.196 or lower to silence this)', image_path, int(relabelled.sum()),
                         SAVER_UNKNOWN_PIXEL, free_thresh)
            values[relabelled] = UNKNOWN
    return values


def _read_image(image_path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Return colour channels ``(rows, cols, C)``, the alpha channel or None, and max value."""
    with open(image_path, 'rb') as handle:
        magic = handle.read(2)
    if magic in (b'P5', b'P2'):
        pixels, max_value = read_pgm(image_path)
        return pixels[..., None], None, max_value
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as error:  # pragma: no cover - Pillow is a dependency
        raise MapFormatError(
            f'map image {str(image_path)!r} is not a PGM and Pillow is not installed to read '
            'it; install pillow or convert the image to PGM') from error
    try:
        with Image.open(image_path) as image:
            image.load()
            return _pillow_channels(image, image_path)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MapFormatError(
            f'map image {str(image_path)!r} could not be read ({error}); save it as PGM, PNG '
            'or BMP') from error


def _pillow_channels(image, image_path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    mode = image.mode
    if mode == '1':
        image = image.convert('L')
    elif mode in ('P', 'PA'):
        # A palette image has an alpha channel only when it declares transparency.
        has_alpha = mode == 'PA' or 'transparency' in image.info
        image = image.convert('RGBA' if has_alpha else 'RGB')
    elif mode in ('CMYK', 'YCbCr', 'LAB', 'HSV'):
        image = image.convert('RGB')
    mode = image.mode
    if mode in ('I;16', 'I;16B', 'I;16L'):
        return np.asarray(image, dtype=np.uint16)[..., None], None, 65535
    if mode == 'I':
        pixels = np.asarray(image)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise MapFormatError(
                f'map image {str(image_path)!r} has 32-bit pixels outside 0..65535; save it '
                'with 8 or 16 bits per channel')
        return pixels.astype(np.uint16)[..., None], None, 65535
    if mode in ('L', 'RGB'):
        pixels = np.asarray(image)
        return (pixels[..., None] if pixels.ndim == 2 else pixels), None, 255
    if mode in ('LA', 'RGBA'):
        pixels = np.asarray(image)
        return pixels[..., :-1], pixels[..., -1], 255
    raise MapFormatError(
        f'map image {str(image_path)!r} has the unsupported pixel mode {mode!r}; save it as '
        '8- or 16-bit grey or RGB')


def read_pgm(path) -> tuple[np.ndarray, int]:
    """Read a binary (P5) or plain (P2) PGM file with 8- or 16-bit samples.

    In P5, one whitespace byte ends the header. When it is ``\\r`` followed by ``\\n`` and the
    file contains exactly one byte more than the declared raster, the pair counts as the line end
    (with a warning). Other bytes beyond the raster are ignored with a warning.

    :returns: ``(pixels, max_value)``, pixels of shape ``(rows, cols)`` in file order (row 0 at
        the top), dtype uint8 or uint16.
    """
    path = Path(path)
    if not path.is_file():
        raise MapFileNotFoundError(f'PGM file {str(path)!r} does not exist; check the path')
    content = path.read_bytes()
    header: list[bytes] = []
    position = 0
    while len(header) < 4:
        match = _PGM_TOKEN.match(content, position)
        if match is None:
            raise MapFormatError(
                f'PGM file {str(path)!r} has a truncated header (found {header!r}); expected '
                "'P5' or 'P2', width, height and maximum value")
        position = match.end()
        if match.group(3) is not None:
            header.append(match.group(3))
    magic, width_text, height_text, max_text = header
    if magic not in (b'P5', b'P2'):
        raise MapFormatError(
            f'PGM file {str(path)!r} starts with {magic!r}; only P5 (binary) and P2 (plain) '
            'greyscale PGM are supported')
    try:
        width, height, max_value = int(width_text), int(height_text), int(max_text)
    except ValueError as error:
        raise MapFormatError(
            f'PGM file {str(path)!r} has a malformed header: width={width_text!r}, '
            f'height={height_text!r}, maxval={max_text!r} must be integers') from error
    if width <= 0 or height <= 0 or not 0 < max_value < 65536:
        raise MapFormatError(
            f'PGM file {str(path)!r} header gives width={width}, height={height}, '
            f'maxval={max_value}; width and height must be positive, 0 < maxval < 65536')
    dtype = np.uint8 if max_value < 256 else np.dtype('>u2')
    count = width * height
    if magic == b'P5':
        # Exactly one whitespace byte separates the maxval token from the raster.
        if content[position:position + 1] not in _WHITESPACE_BYTES:
            raise MapFormatError(
                f'PGM file {str(path)!r} has no whitespace byte after its maxval; the header is '
                'malformed')
        data = content[position + 1:]
        needed = count * np.dtype(dtype).itemsize
        if content[position:position + 2] == b'\r\n' and len(data) == needed + 1:
            # A header written with Windows line ends. The format makes '\r' the separator and
            # '\n' the first sample, which shifts every pixel by one, but the raster length
            # shows that the '\n' belongs to the line end.
            _LOG.warning('PGM file %s ends its header with \\r\\n, where the format allows '
                         'one whitespace byte; the raster is read after the \\n', path)
            data = data[1:]
        if len(data) < needed:
            raise MapFormatError(
                f'PGM file {str(path)!r} contains {len(data)} raster bytes but its header '
                f'({width} x {height}, maxval {max_value}) needs {needed}; the file is truncated')
        if len(data) > needed:
            _LOG.warning('PGM file %s has %d bytes after the %d raster bytes its header '
                         'declares; they are ignored', path, len(data) - needed, needed)
        pixels = np.frombuffer(data[:needed], dtype=dtype)
    else:
        tokens = content[position:].split()
        if len(tokens) < count:
            raise MapFormatError(
                f'PGM file {str(path)!r} contains {len(tokens)} samples but its header needs '
                f'{width} x {height} = {count}; the file is truncated')
        try:
            pixels = np.array([int(token) for token in tokens[:count]], dtype=np.int64)
        except ValueError as error:
            raise MapFormatError(
                f'PGM file {str(path)!r} has a non-integer sample ({error})') from error
    if pixels.max(initial=0) > max_value:
        raise MapFormatError(
            f'PGM file {str(path)!r} has a sample of {int(pixels.max())} above its maxval '
            f'{max_value}; fix the header')
    out_dtype = np.uint8 if max_value < 256 else np.uint16
    return pixels.astype(out_dtype).reshape(height, width), max_value
