"""Spec sections for the fleet's world: the map, the robots and the moving obstacles."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mapl_robotics.spec.base import XY, Identifier, Pose, SpecModel
from mapl_robotics.spec.units import Duration

if TYPE_CHECKING:
    from mapl_robotics.geometry import MovingObstacle, World
    from mapl_robotics.planning import RobotModel

__all__ = ['MAP_FORMATS', 'MapSpec', 'RobotSpec', 'ConstantVelocitySpec', 'WaypointsSpec',
           'MovingObstacleSpec']

_LOG = logging.getLogger(__name__)

MAP_FORMATS = ('map_server', 'movingai', 'polygon', 'geojson')
_SUFFIX_FORMATS = {'.map': 'movingai', '.geojson': 'geojson', '.json': 'geojson'}


# Bundled folders that a relative path falls back to, in order. The bundled scenarios' folder
# comes first, so that a copy of a bundled scenario finds its map. The data root (maps/...)
# comes second.
_BUNDLED_FOLDERS = ('sim/scenarios', '')


def resolve_path(value: Path, info: ValidationInfo, *, what: str) -> Path:
    """Return ``value`` made absolute against the spec's folder or the bundled data folder.

    A relative path that does not exist in the spec's folder (the current folder for a spec
    given as a mapping) falls back to the bundled file of the same relative path, which is
    logged at INFO.
    """
    from mapl_robotics.errors import MapFileNotFoundError
    from mapl_robotics.resources import bundled_path, share_dir

    path = value.expanduser()
    if path.is_absolute():
        if path.exists():
            return path.resolve()
        raise PydanticCustomError('path_not_found', '{what} {path} does not exist; check the path',
                                  {'what': what, 'path': str(path)})
    base_dir = Path((info.context or {}).get('base_dir') or Path.cwd())
    local = base_dir / path
    if local.exists():
        return local.resolve()
    relatives = [f'{folder}/{path.as_posix()}' if folder else path.as_posix()
                 for folder in _BUNDLED_FOLDERS]
    for relative in relatives:
        try:
            bundled = bundled_path(relative)
        except MapFileNotFoundError:
            continue
        # A bundled spec naming bundled data by its path from the data root is the normal
        # case, so only a spec from elsewhere gets an INFO line.
        level = logging.DEBUG if base_dir.resolve().is_relative_to(
            share_dir().resolve()) else logging.INFO
        _LOG.log(level, '%s %s does not exist in the spec\'s folder %s; using the bundled %s',
                 what, path, base_dir, bundled)
        return bundled.resolve()
    try:
        tried = ', '.join(str(share_dir() / relative) for relative in relatives)
    except MapFileNotFoundError:
        tried = '(none: the mapl_robotics data folder was not found)'
    raise PydanticCustomError(
        'path_not_found', '{what} not found: tried {local} in the spec\'s folder, then the '
        'bundled {tried}. Pass an absolute path, or copy the file next to the spec file',
        {'what': what, 'local': str(local), 'tried': tried})


def _detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if suffix in ('.yaml', '.yml'):
        # A map_server YAML names its image; a polygon map has bounds and obstacles instead.
        import yaml

        from mapl_robotics.yamlio import load_yaml
        try:
            with open(path, encoding='utf-8') as stream:
                content = load_yaml(stream)
        except (OSError, yaml.YAMLError):
            return 'map_server'
        if isinstance(content, dict) and 'image' not in content:
            return 'polygon'
        return 'map_server'
    raise PydanticCustomError(
        'map_format', 'cannot tell the map format from the suffix {suffix!r}; set map.format to '
        'one of {formats}', {'suffix': suffix, 'formats': ', '.join(MAP_FORMATS)})


class MapSpec(SpecModel):
    """The static map the fleet shares."""

    path: Annotated[Path, Field(strict=False)]
    """Map file: map_server YAML (+ image), MovingAI .map, polygon YAML or GeoJSON. Relative
    paths are looked up next to the spec file, then in the bundled scenarios' folder
    (sim/scenarios/), then among the bundled data (maps/...)."""

    format: Literal['auto', 'map_server', 'movingai', 'polygon', 'geojson'] = 'auto'
    """Map format; auto picks it from the suffix (.map, .geojson) or the YAML's keys."""

    cell_size_m: Optional[float] = Field(default=None, gt=0.0)
    """Edge length of one MovingAI grid cell in metres; required for MovingAI maps."""

    unknown_is_obstacle: bool = True
    """Whether unknown cells of a map_server map are obstacles (true) or free space."""

    @field_validator('path', mode='after')
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info, what='map file')

    @model_validator(mode='after')
    def _check_format(self) -> 'MapSpec':
        detected = _detect_format(self.path)
        if self.format != 'auto' and self.format != detected:
            raise PydanticCustomError(
                'map_format', 'format is {given!r}, but {path} reads as a {detected} map; set '
                "format to {detected!r} or 'auto'",
                {'given': self.format, 'path': str(self.path), 'detected': detected})
        if detected == 'movingai' and self.cell_size_m is None:
            raise PydanticCustomError(
                'cell_size_required', 'the MovingAI map {path} needs map.cell_size_m, the edge '
                'length of one grid cell in metres (for example 1.0)', {'path': str(self.path)})
        if detected != 'movingai' and self.cell_size_m is not None:
            raise PydanticCustomError(
                'cell_size_unused', 'cell_size_m applies to MovingAI .map files only; the '
                '{detected} map {path} carries its own scale, so remove cell_size_m',
                {'detected': detected, 'path': str(self.path)})
        return self

    @property
    def resolved_format(self) -> str:
        """The map format, detected from the file's suffix and keys."""
        return _detect_format(self.path)

    def load(self) -> 'World':
        """Load the map into a :class:`~mapl_robotics.geometry.World`."""
        from mapl_robotics.geometry.maps import load_map
        return load_map(self.path, cell_size_m=self.cell_size_m,
                        unknown_is_obstacle=self.unknown_is_obstacle)


class RobotSpec(SpecModel):
    """One disc robot with its limits, start and goal."""

    id: Identifier
    """Unique robot id: letters, digits and underscores, starting with a letter (it becomes a
    ROS 2 namespace)."""

    radius_m: float = Field(gt=0.0, le=10.0)
    """Radius of the disc that contains the robot's footprint, in metres."""

    max_speed_mps: float = Field(gt=0.0, le=20.0)
    """Maximum linear speed in m/s."""

    max_accel_mps2: float = Field(gt=0.0, le=50.0)
    """Maximum linear acceleration (and deceleration) in m/s^2."""

    drive: Literal['holonomic', 'differential'] = 'holonomic'
    """holonomic: moves in any direction. differential: moves along its heading and turns
    with at most max_yaw_rate_radps."""

    max_yaw_rate_radps: float = Field(default=math.pi / 2.0, gt=0.0, le=50.0)
    """Maximum turn rate in rad/s; used by differential drive."""

    min_turn_radius_m: float = Field(default=0.0, ge=0.0, le=100.0)
    """Differential drive: corners are rounded with arcs of this radius where they fit;
    0 means turning in place."""

    start: Pose
    """Start pose [x_m, y_m] or [x_m, y_m, yaw_rad] in the map frame; yaw defaults to 0."""

    goal: XY
    """Goal position [x_m, y_m] in the map frame."""

    @field_validator('start', mode='after')
    @classmethod
    def _pad_yaw(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return value if len(value) == 3 else (value[0], value[1], 0.0)

    @property
    def start_xy_m(self) -> tuple[float, float]:
        return (self.start[0], self.start[1])

    @property
    def start_yaw_rad(self) -> float:
        return self.start[2]

    def to_model(self) -> 'RobotModel':
        """Return the planner's :class:`~mapl_robotics.planning.RobotModel` for this robot."""
        from mapl_robotics.planning import RobotModel
        return RobotModel(radius_m=self.radius_m, max_speed_mps=self.max_speed_mps,
                          max_accel_mps2=self.max_accel_mps2, drive=self.drive,
                          max_yaw_rate_radps=self.max_yaw_rate_radps,
                          min_turn_radius_m=self.min_turn_radius_m)


class ConstantVelocitySpec(SpecModel):
    """Straight-line motion at a constant velocity."""

    type: Literal['constant_velocity']
    start: XY
    """Position [x_m, y_m] at t0_s; the obstacle waits there before t0_s."""

    velocity_mps: XY
    """Velocity [vx, vy] in m/s."""

    t0_s: Duration = 0.0
    """Time at which the obstacle starts moving, in fleet seconds."""

    t_stop_s: Optional[Duration] = None
    """Time at which it stops for good; null: it never stops."""

    @model_validator(mode='after')
    def _check_times(self) -> 'ConstantVelocitySpec':
        if self.t_stop_s is not None and not self.t_stop_s > self.t0_s:
            raise PydanticCustomError('time_order', 't_stop_s={stop} must be later than '
                                      't0_s={start}', {'stop': self.t_stop_s,
                                                       'start': self.t0_s})
        return self


class WaypointsSpec(SpecModel):
    """Motion through timed waypoints, linear in between."""

    type: Literal['waypoints']
    waypoints: Annotated[tuple[Annotated[tuple[float, float, float], Field(strict=False)], ...],
                         Field(strict=False, min_length=1, max_length=10_000)]
    """Waypoints [[t_s, x_m, y_m], ...] with strictly increasing times."""

    loop: bool = False
    """Whether to repeat the waypoints forever (closing the loop at the average speed)."""

    @model_validator(mode='after')
    def _check_times(self) -> 'WaypointsSpec':
        times = [row[0] for row in self.waypoints]
        for index in range(1, len(times)):
            if not times[index] > times[index - 1]:
                raise PydanticCustomError(
                    'time_order', 'waypoint times must increase strictly, but waypoint '
                    '{index} has t_s={t} after t_s={previous}',
                    {'index': index, 't': times[index], 'previous': times[index - 1]})
        if self.loop and len(times) < 2:
            raise PydanticCustomError('loop_too_short', 'a looping motion needs at least two '
                                      'waypoints')
        return self


MotionSpec = Annotated[Union[ConstantVelocitySpec, WaypointsSpec], Field(discriminator='type')]


class MovingObstacleSpec(SpecModel):
    """A person or forklift: a disc that moves along a known motion model."""

    id: Identifier
    """Unique id, distinct from every robot id."""

    kind: Literal['person', 'forklift']
    """What it is; the simulator picks its body and the plots its colour from this."""

    radius_m: float = Field(gt=0.0, le=10.0)
    """Radius of the disc that contains its footprint, in metres."""

    motion: MotionSpec
    """constant_velocity or waypoints, selected by the key type."""

    def to_obstacle(self) -> 'MovingObstacle':
        """Return the geometry layer's :class:`~mapl_robotics.geometry.MovingObstacle`."""
        from mapl_robotics.geometry import ConstantVelocity, MovingObstacle, TimedWaypoints
        motion: Union[ConstantVelocity, TimedWaypoints]
        if isinstance(self.motion, ConstantVelocitySpec):
            motion = ConstantVelocity(start_xy_m=self.motion.start,
                                      velocity_mps=self.motion.velocity_mps,
                                      t0_s=self.motion.t0_s, t_stop_s=self.motion.t_stop_s)
        else:
            motion = TimedWaypoints(waypoints=self.motion.waypoints, loop=self.motion.loop)
        return MovingObstacle(obstacle_id=self.id, radius_m=self.radius_m, motion=motion,
                              kind=self.kind)


def distance_m(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])
