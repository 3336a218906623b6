"""MovingAI grid maps (``.map``) and scenario files (``.scen``).

Format (https://movingai.com/benchmarks/formats.html): a ``.map`` file starts with the header
lines ``type octile``, ``height H``, ``width W`` and ``map``, followed by H rows of W tiles.
Tiles ``.`` and ``G`` are passable terrain and ``S`` is swamp, also passable. ``@`` and ``O``
are out of bounds, ``T`` is trees and ``W`` is water: a ground robot can enter none of them. Tile
``(x, y)`` is column x and row y, both counted from 0 at the upper-left corner.

A ``.scen`` file starts with ``version 1`` (or ``version 1.0``) and has one task per line with
tab-separated columns: bucket, map file, map width, map height, start x, start y, goal x,
goal y, optimal length (8-connected moves, diagonals cost sqrt(2)).

The grid has no physical size, so loading needs ``cell_size_m``. The world frame puts the
lower-left corner of the map at (0, 0) with y pointing up, so the centre of tile ``(x, y)`` is
``((x + 0.5) * cell_size_m, (H - y - 0.5) * cell_size_m)``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from mapl_robotics.errors import (EmptyMapError, InvalidCoordinateError, MapFileNotFoundError,
                                  MapFormatError, OutOfBoundsError)
from mapl_robotics.geometry.occupancy import FREE, OCCUPIED, OccupancyGrid
from mapl_robotics.geometry.world import World

__all__ = ['PASSABLE_TILES', 'BLOCKED_TILES', 'MovingAIMap', 'ScenarioTask',
           'cell_centre_xy_m', 'load_movingai_map', 'load_scenario', 'read_movingai_map']

PASSABLE_TILES = frozenset('.GS')
BLOCKED_TILES = frozenset('@OTW')
SCENARIO_VERSIONS = ('1', '1.0')


@dataclasses.dataclass(frozen=True, eq=False)
class MovingAIMap:
    """The tiles of a ``.map`` file, row 0 at the top as in the file."""

    name: str
    tiles: np.ndarray  # (height, width) array of single-character strings

    @property
    def height(self) -> int:
        return int(self.tiles.shape[0])

    @property
    def width(self) -> int:
        return int(self.tiles.shape[1])

    @property
    def passable(self) -> np.ndarray:
        """Boolean ``(height, width)`` mask of passable tiles, row 0 at the top."""
        return np.isin(self.tiles, sorted(PASSABLE_TILES))

    def to_occupancy_grid(self, *, cell_size_m: float) -> OccupancyGrid:
        """Return the tiles as a grid in ROS order: row 0 is the bottom row of the file."""
        values = np.where(self.passable, FREE, OCCUPIED).astype(np.int8)
        return OccupancyGrid(data=np.flipud(values), resolution_m=cell_size_m)


@dataclasses.dataclass(frozen=True)
class ScenarioTask:
    """One start/goal pair of a ``.scen`` file, in tiles and in world metres."""

    bucket: int
    map_name: str
    start_cell: tuple[int, int]
    goal_cell: tuple[int, int]
    start_xy_m: tuple[float, float]
    goal_xy_m: tuple[float, float]
    optimal_length_m: float


def cell_centre_xy_m(cell_xy: tuple[int, int], *, height_cells: int,
                     cell_size_m: float) -> tuple[float, float]:
    """Return the world position of the centre of MovingAI tile ``(x, y)``."""
    x, y = cell_xy
    return ((x + 0.5) * cell_size_m, (height_cells - y - 0.5) * cell_size_m)


def _check_cell_size(cell_size_m, path: Path) -> float:
    if cell_size_m is None:
        raise MapFormatError(
            f'MovingAI file {str(path)!r} has no physical scale; pass cell_size_m (metres per '
            'tile, for example cell_size_m=1.0)')
    if isinstance(cell_size_m, bool) or not isinstance(cell_size_m, (int, float)):
        raise InvalidCoordinateError(
            f'cell_size_m={cell_size_m!r} must be a number of metres per tile')
    size = float(cell_size_m)
    if not (math.isfinite(size) and size > 0.0):
        raise InvalidCoordinateError(
            f'cell_size_m={cell_size_m!r} must be a positive finite number of metres per tile')
    return size


def read_movingai_map(path) -> MovingAIMap:
    """Parse a ``.map`` file, raising :class:`MapFormatError` on any deviation from the format."""
    path = Path(path)
    if not path.is_file():
        raise MapFileNotFoundError(f'MovingAI map {str(path)!r} does not exist; check the path')
    try:
        lines = path.read_text(encoding='ascii').splitlines()
    except UnicodeDecodeError as error:
        raise MapFormatError(
            f'MovingAI map {str(path)!r} is not an ASCII text file ({error})') from error

    header: dict[str, str] = {}
    line_number = 0
    for line_number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            continue
        if words == ['map']:
            break
        if len(words) != 2 or words[0] not in ('type', 'height', 'width') or words[0] in header:
            raise MapFormatError(
                f'MovingAI map {str(path)!r} line {line_number}: {line!r} is not a header line; '
                "expected 'type octile', 'height H', 'width W', then 'map'")
        header[words[0]] = words[1]
    else:
        raise MapFormatError(
            f"MovingAI map {str(path)!r} has no 'map' line; the header must end with 'map'")

    missing = [key for key in ('type', 'height', 'width') if key not in header]
    if missing:
        raise MapFormatError(
            f'MovingAI map {str(path)!r} header lacks {", ".join(missing)}; expected '
            "'type octile', 'height H', 'width W', 'map'")
    if header['type'] != 'octile':
        raise MapFormatError(
            f"MovingAI map {str(path)!r} has type {header['type']!r}; only 'octile' is defined")
    try:
        height, width = int(header['height']), int(header['width'])
    except ValueError as error:
        raise MapFormatError(
            f"MovingAI map {str(path)!r}: height={header['height']!r} and "
            f"width={header['width']!r} must be integers") from error
    if height <= 0 or width <= 0:
        raise MapFormatError(
            f'MovingAI map {str(path)!r}: height={height} and width={width} must be positive')

    rows = [line.rstrip('\r\n') for line in lines[line_number:]]
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != height:
        raise MapFormatError(
            f'MovingAI map {str(path)!r} contains {len(rows)} tile rows but its header '
            f'gives height {height}; fix the header or the rows')
    for index, row in enumerate(rows):
        if len(row) != width:
            raise MapFormatError(
                f'MovingAI map {str(path)!r} line {line_number + index + 1} has {len(row)} '
                f'tiles but the header gives width {width}')

    tiles = np.array([list(row) for row in rows], dtype='<U1')
    unknown = sorted(set(str(tile) for tile in np.unique(tiles)) - PASSABLE_TILES - BLOCKED_TILES)
    if unknown:
        row, col = np.argwhere(tiles == unknown[0])[0]
        raise MapFormatError(
            f'MovingAI map {str(path)!r} has the unknown tile {unknown[0]!r} at x={col}, y={row}; '
            "tiles are '.', 'G', 'S' (passable) and '@', 'O', 'T', 'W' (blocked)")
    return MovingAIMap(name=path.name, tiles=tiles)


def load_movingai_map(path, *, cell_size_m: float) -> World:
    """Load a ``.map`` file into a :class:`World` with square tiles of ``cell_size_m``.

    The world spans ``[0, W * cell_size_m] x [0, H * cell_size_m]``; the centre of tile
    ``(x, y)`` is at ``((x + 0.5) * cell_size_m, (H - y - 0.5) * cell_size_m)``.
    """
    path = Path(path)
    size = _check_cell_size(cell_size_m, path)
    grid_map = read_movingai_map(path)
    if not np.any(grid_map.passable):
        raise EmptyMapError(
            f'MovingAI map {str(path)!r} has no passable tile: all {grid_map.tiles.size} tiles '
            "are '@', 'O', 'T' or 'W'; a robot needs at least one '.', 'G' or 'S' tile")
    metadata = {'format': 'movingai', 'path': str(path), 'map_name': grid_map.name,
                'width_cells': grid_map.width, 'height_cells': grid_map.height,
                'cell_size_m': size}
    return World.from_occupancy_grid(grid_map.to_occupancy_grid(cell_size_m=size),
                                     name=path.stem, metadata=metadata)


def load_scenario(path, *, cell_size_m: float, map_path=None) -> list[ScenarioTask]:
    """Load a ``.scen`` file and check it against its map.

    The map is ``map_path`` when given, otherwise the file the scenario names, looked up next
    to the scenario. Raises :class:`MapFormatError` when the map name, width or height in a
    line disagree with the map or a start or goal is on a blocked tile, and
    :class:`OutOfBoundsError` when a start or goal lies outside the map.
    """
    path = Path(path)
    size = _check_cell_size(cell_size_m, path)
    if not path.is_file():
        raise MapFileNotFoundError(f'scenario file {str(path)!r} does not exist; check the path')
    lines = path.read_text(encoding='ascii', errors='replace').splitlines()
    if not lines or lines[0].split()[:1] != ['version'] or len(lines[0].split()) != 2:
        raise MapFormatError(
            f"scenario {str(path)!r} must start with 'version 1', got {lines[:1]!r}")
    version = lines[0].split()[1]
    if version not in SCENARIO_VERSIONS:
        raise MapFormatError(
            f'scenario {str(path)!r} has version {version!r}; only version 1 (or 1.0) is '
            'supported')
    rows = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    parsed = [_parse_scenario_line(path, number, line) for number, line in rows]
    grid_map = _scenario_map(path, parsed, map_path)
    passable = grid_map.passable
    tasks = []
    for number, (bucket, map_name, width, height, start, goal, optimal) in zip(
            (number for number, _ in rows), parsed):
        if Path(map_name).name != grid_map.name:
            raise MapFormatError(
                f'scenario {str(path)!r} line {number} names map {map_name!r} but the map is '
                f'{grid_map.name!r}; pass the matching map_path')
        if (width, height) != (grid_map.width, grid_map.height):
            raise MapFormatError(
                f'scenario {str(path)!r} line {number} gives map size {width} x {height} but '
                f'{grid_map.name!r} is {grid_map.width} x {grid_map.height}; the scenario '
                'belongs to another version of the map')
        for role, (x, y) in (('start', start), ('goal', goal)):
            if not (0 <= x < width and 0 <= y < height):
                raise OutOfBoundsError(
                    f'scenario {str(path)!r} line {number}: {role} tile ({x}, {y}) is outside '
                    f'the {width} x {height} map; x must be in [0, {width}) and y in '
                    f'[0, {height})')
            if not passable[y, x]:
                raise MapFormatError(
                    f'scenario {str(path)!r} line {number}: {role} tile ({x}, {y}) is '
                    f'{str(grid_map.tiles[y, x])!r}, which is blocked; the scenario does not match '
                    'the map')
        tasks.append(ScenarioTask(
            bucket=bucket, map_name=map_name, start_cell=start, goal_cell=goal,
            start_xy_m=cell_centre_xy_m(start, height_cells=height, cell_size_m=size),
            goal_xy_m=cell_centre_xy_m(goal, height_cells=height, cell_size_m=size),
            optimal_length_m=optimal * size))
    return tasks


def _parse_scenario_line(path: Path, number: int, line: str):
    fields = line.rstrip('\r\n').split('\t')
    if len(fields) != 9:
        fields = line.split()
    if len(fields) != 9:
        raise MapFormatError(
            f'scenario {str(path)!r} line {number} has {len(fields)} columns, expected 9: '
            'bucket, map, width, height, start x, start y, goal x, goal y, optimal length')
    try:
        bucket, width, height, start_x, start_y, goal_x, goal_y = (
            int(fields[index]) for index in (0, 2, 3, 4, 5, 6, 7))
        optimal = float(fields[8])
    except ValueError as error:
        raise MapFormatError(
            f'scenario {str(path)!r} line {number}: {line.strip()!r} has a non-numeric column '
            f'({error}); columns 1 and 3-8 are integers, column 9 a number') from error
    if not math.isfinite(optimal) or optimal < 0.0:
        raise InvalidCoordinateError(
            f'scenario {str(path)!r} line {number}: optimal length {fields[8]!r} must be a '
            'finite number >= 0')
    return bucket, fields[1].strip(), width, height, (start_x, start_y), (goal_x, goal_y), optimal


def _scenario_map(path: Path, parsed: list, map_path) -> MovingAIMap:
    if map_path is not None:
        return read_movingai_map(map_path)
    if not parsed:
        raise MapFormatError(f'scenario {str(path)!r} has no tasks after its version line')
    named = Path(parsed[0][1]).name
    candidate = path.parent / named
    if not candidate.is_file():
        raise MapFileNotFoundError(
            f'map {named!r} named by scenario {str(path)!r} is not next to it ({candidate}); '
            'pass map_path= with the map file')
    return read_movingai_map(candidate)
