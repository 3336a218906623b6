"""The PyBullet world of a simulation, built from any :class:`~mapl_robotics.geometry.World`.

Every PyBullet call goes through the explicit client id of a ``DIRECT`` connection that this
module opens and closes, never through PyBullet's global default connection, so several
simulations can run in one process (tests do).

Static obstacles become vertical prisms: each obstacle polygon is split into triangles by a
constrained Delaunay triangulation (holes kept), and each triangle is extruded to a convex
collision mesh. The map bounds become four walls. Collision groups keep static obstacles and
moving obstacles from being checked against each other, because only contacts that involve a
robot matter.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from mapl_robotics.errors import SimulationError
from mapl_robotics.geometry.world import World
from mapl_robotics.sim.quiet_pybullet import pybullet

__all__ = ['SimWorld', 'BodyInfo', 'ROBOT_GROUP', 'STATIC_GROUP', 'MOVING_GROUP']

_LOG = logging.getLogger(__name__)

ROBOT_GROUP = 1
STATIC_GROUP = 2
MOVING_GROUP = 4

_OBSTACLE_HEIGHT_M = 1.0
_WALL_THICKNESS_M = 0.5


@dataclasses.dataclass(frozen=True)
class BodyInfo:
    """Role of a PyBullet body: ``kind`` is robot, static or moving, ``name`` its id."""

    kind: str
    name: str


def _triangles(geometry) -> list[np.ndarray]:
    """Return the triangles (3 x 2 arrays) that tile a polygonal geometry."""
    polygons = [geometry] if isinstance(geometry, Polygon) else [
        part for part in getattr(geometry, 'geoms', []) if isinstance(part, Polygon)]
    found = []
    for polygon in polygons:
        if polygon.is_empty or polygon.area <= 0.0:
            continue
        if len(polygon.interiors) == 0 and len(polygon.exterior.coords) == 5 \
                and math.isclose(polygon.area, polygon.minimum_rotated_rectangle.area,
                                 rel_tol=1e-9):
            # Rectangles are common in grid maps; two triangles each.
            corners = np.asarray(polygon.exterior.coords)[:4]
            found.append(corners[[0, 1, 2]])
            found.append(corners[[0, 2, 3]])
            continue
        for triangle in shapely.get_parts(shapely.constrained_delaunay_triangles(polygon)):
            found.append(np.asarray(triangle.exterior.coords)[:3])
    return found


class SimWorld:
    """A PyBullet ``DIRECT`` client holding the static map, robots and moving obstacles.

    Use it as a context manager, or call :meth:`close`, so the client is always disconnected.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.client_id = pybullet.connect(pybullet.DIRECT)
        if self.client_id < 0:
            raise SimulationError('PyBullet could not open a DIRECT client; check that the '
                                  'pybullet wheel matches this Python')
        self.bodies: dict[int, BodyInfo] = {}
        try:
            pybullet.setGravity(0.0, 0.0, 0.0, physicsClientId=self.client_id)
            self._add_static_obstacles()
            self._add_bounds_walls()
        except Exception:
            self.close()
            raise
        _LOG.info('PyBullet world %r: %d static bodies', world.name, len(self.bodies))

    # -- building -------------------------------------------------------------------------------

    def _add_prism(self, corners_xy: np.ndarray, name: str) -> int:
        bottom = np.column_stack([corners_xy, np.zeros(len(corners_xy))])
        top = np.column_stack([corners_xy, np.full(len(corners_xy), _OBSTACLE_HEIGHT_M)])
        vertices = np.vstack([bottom, top]).tolist()
        shape = pybullet.createCollisionShape(pybullet.GEOM_MESH, vertices=vertices,
                                              physicsClientId=self.client_id)
        body = pybullet.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=shape,
                                        physicsClientId=self.client_id)
        self.register(body, BodyInfo(kind='static', name=name), group=STATIC_GROUP,
                      mask=ROBOT_GROUP)
        return body

    def _add_static_obstacles(self) -> None:
        for index, obstacle in enumerate(self.world.obstacles):
            for triangle_index, triangle in enumerate(_triangles(obstacle)):
                self._add_prism(triangle, f'obstacle {index}.{triangle_index}')

    def _add_bounds_walls(self) -> None:
        x_min, y_min, x_max, y_max = self.world.bounds_m
        t = _WALL_THICKNESS_M
        walls = {
            'wall west': (x_min - t, y_min - t, x_min, y_max + t),
            'wall east': (x_max, y_min - t, x_max + t, y_max + t),
            'wall south': (x_min, y_min - t, x_max, y_min),
            'wall north': (x_min, y_max, x_max, y_max + t),
        }
        for name, (x0, y0, x1, y1) in walls.items():
            half = [(x1 - x0) / 2.0, (y1 - y0) / 2.0, _OBSTACLE_HEIGHT_M / 2.0]
            shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half,
                                                  physicsClientId=self.client_id)
            body = pybullet.createMultiBody(
                baseMass=0.0, baseCollisionShapeIndex=shape,
                basePosition=[(x0 + x1) / 2.0, (y0 + y1) / 2.0, _OBSTACLE_HEIGHT_M / 2.0],
                physicsClientId=self.client_id)
            self.register(body, BodyInfo(kind='static', name=name), group=STATIC_GROUP,
                          mask=ROBOT_GROUP)

    def register(self, body_id: int, info: BodyInfo, *, group: int, mask: int) -> None:
        """Record the role of ``body_id`` and set its collision group and mask."""
        self.bodies[body_id] = info
        links = range(-1, pybullet.getNumJoints(body_id, physicsClientId=self.client_id))
        for link in links:
            pybullet.setCollisionFilterGroupMask(body_id, link, group, mask,
                                                 physicsClientId=self.client_id)

    # -- queries --------------------------------------------------------------------------------

    def contacts(self) -> list[tuple[BodyInfo, BodyInfo, float]]:
        """Run collision detection and return ``(body_a, body_b, distance_m)`` per contact.

        A negative distance is a penetration. Bullet reports contacts up to its contact
        threshold (about 2 cm), so distances slightly above zero show up too.
        """
        pybullet.performCollisionDetection(physicsClientId=self.client_id)
        found = []
        for point in pybullet.getContactPoints(physicsClientId=self.client_id):
            info_a = self.bodies.get(point[1])
            info_b = self.bodies.get(point[2])
            if info_a is not None and info_b is not None:
                found.append((info_a, info_b, float(point[8])))
        return found

    def closest_distance_m(self, body_a: int, body_b: int, *, max_distance_m: float) -> float:
        """Return the surface distance between two bodies, or ``inf`` beyond the limit."""
        points = pybullet.getClosestPoints(body_a, body_b, max_distance_m,
                                           physicsClientId=self.client_id)
        if not points:
            return math.inf
        return min(float(point[8]) for point in points)

    def bodies_near(self, xy_m, *, radius_m: float) -> list[int]:
        """Return ids of the bodies whose bounding boxes reach within ``radius_m`` of a point."""
        lower = [xy_m[0] - radius_m, xy_m[1] - radius_m, -1.0]
        upper = [xy_m[0] + radius_m, xy_m[1] + radius_m, 2.0]
        overlapping = pybullet.getOverlappingObjects(lower, upper,
                                                     physicsClientId=self.client_id) or ()
        return sorted({body for body, _ in overlapping})

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Disconnect the PyBullet client; safe to call twice."""
        if self.client_id >= 0:
            try:
                pybullet.disconnect(physicsClientId=self.client_id)
            except pybullet.error:
                _LOG.debug('PyBullet client %d was already disconnected', self.client_id)
            self.client_id = -1

    def __enter__(self) -> 'SimWorld':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
