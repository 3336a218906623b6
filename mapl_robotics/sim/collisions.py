"""Collision detection for every simulation step, without tunnelling.

Two independent checks run each step:

1. PyBullet: collision detection on the bodies at their new poses, reporting every contact
   that involves a robot, plus closest points between robots that are near each other.
2. Swept checks over the motion between the previous and the new poses, exact for discs
   moving in straight lines: robot against the static map (a swept disc against the obstacle
   polygons, through the world's GEOS-based checker) and robot against robot or moving
   obstacle (the closest approach of two linear motions has a closed form). A fast robot that
   jumps across a thin wall in one step touches it at neither pose, so only the swept check
   sees that collision.

A swept check counts a collision when the footprints overlap by more than ``tolerance_m`` (1 mm
by default, for floating-point noise). A PyBullet contact counts when its distance is below
``-bullet_tolerance_m`` (3 mm by default), because Bullet's collision margins make it report
distances about 2 mm short for a robot cylinder against a convex obstacle mesh (measured with
the pybullet 3.2 wheel, tests/sim/test_collisions.py). A pair that stays in collision over
consecutive steps counts as one collision event.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Sequence

import numpy as np
import shapely

from mapl_robotics.geometry.world import World
from mapl_robotics.sim.world import SimWorld

__all__ = ['CollisionEvent', 'CollisionMonitor', 'SeparationRecord', 'KINDS',
           'segment_pair_min_distance']

_LOG = logging.getLogger(__name__)

KINDS = ('robot-robot', 'robot-static', 'robot-moving')

# Robots closer than this surface gap are also measured with PyBullet closest points.
_NEAR_GAP_M = 0.5


@dataclasses.dataclass(frozen=True)
class CollisionEvent:
    """The start of one collision between a robot and another body."""

    time_s: float
    kind: str
    robot_id: str
    other_id: str
    penetration_m: float
    detected_by: str  # 'contact' (PyBullet) or 'swept'


@dataclasses.dataclass
class SeparationRecord:
    """The smallest surface gap seen for one kind of pair, where and when."""

    gap_m: float = math.inf
    time_s: float = math.nan
    pair: tuple[str, str] = ('', '')
    xy_m: tuple[float, float] = (math.nan, math.nan)

    def update(self, gap_m: float, time_s: float, pair: tuple[str, str], xy_m) -> None:
        if gap_m < self.gap_m:
            self.gap_m = float(gap_m)
            self.time_s = float(time_s)
            self.pair = pair
            self.xy_m = (float(xy_m[0]), float(xy_m[1]))


def segment_pair_min_distance(start_a: np.ndarray, end_a: np.ndarray, start_b: np.ndarray,
                              end_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the minimum centre distance of point pairs moving linearly over one step.

    Inputs are ``(..., 2)`` arrays of positions at the start and end of the step. Returns the
    distances and the step fractions in ``[0, 1]`` where they happen.
    """
    d0 = start_a - start_b
    d1 = end_a - end_b
    dv = d1 - d0
    dv_sq = np.einsum('...i,...i->...', dv, dv)
    with np.errstate(invalid='ignore', divide='ignore'):
        u = np.where(dv_sq > 0.0, -np.einsum('...i,...i->...', d0, dv) / dv_sq, 0.0)
    u = np.clip(u, 0.0, 1.0)
    closest = d0 + u[..., None] * dv
    return np.linalg.norm(closest, axis=-1), u


class CollisionMonitor:
    """Detects collisions and tracks minimum separations over a whole run.

    :param robot_ids: robot ids in the order of the position arrays passed to :meth:`check`.
    :param robot_body_ids: the PyBullet body of each robot, same order.
    :param robot_radii_m: footprint radius of each robot, same order.
    """

    def __init__(self, sim_world: SimWorld, world: World, *, robot_ids: Sequence[str],
                 robot_body_ids: Sequence[int], robot_radii_m: Sequence[float],
                 obstacle_ids: Sequence[str] = (), obstacle_radii_m: Sequence[float] = (),
                 tolerance_m: float = 1e-3, bullet_tolerance_m: float = 3e-3) -> None:
        self.sim_world = sim_world
        self.robot_ids = list(robot_ids)
        self.robot_body_ids = list(robot_body_ids)
        self.radii_m = np.asarray(robot_radii_m, dtype=float)
        self.obstacle_ids = list(obstacle_ids)
        self.obstacle_radii_m = np.asarray(obstacle_radii_m, dtype=float)
        self.tolerance_m = float(tolerance_m)
        self.bullet_tolerance_m = float(bullet_tolerance_m)
        # Checkers for a radius reduced by the tolerance: touching within it is not a hit.
        self._checkers = {float(radius): world.checker(max(radius - self.tolerance_m, 0.0))
                          for radius in set(self.radii_m.tolist())}
        self._body_index = {body: index for index, body in enumerate(self.robot_body_ids)}
        self.events: list[CollisionEvent] = []
        self._active: set[tuple[str, str, str]] = set()
        self.robot_robot = SeparationRecord()
        self.robot_moving = SeparationRecord()
        self.bullet_robot_robot_gap_m = math.inf
        self.steps_checked = 0
        self._obstacle_union = None

    @property
    def counts(self) -> dict[str, int]:
        """Number of collision events per kind."""
        counts = {kind: 0 for kind in KINDS}
        for event in self.events:
            counts[event.kind] += 1
        return counts

    def check(self, t_s: float, previous_xy_m: np.ndarray, current_xy_m: np.ndarray,
              obstacle_previous_xy_m: np.ndarray | None = None,
              obstacle_current_xy_m: np.ndarray | None = None) -> list[CollisionEvent]:
        """Check the step that ended at ``t_s``; bodies must already be at their new poses.

        Returns the collision events that started in this step.
        """
        hits: dict[tuple[str, str, str], tuple[float, str]] = {}

        def record(kind: str, robot_id: str, other_id: str, penetration_m: float,
                   detected_by: str) -> None:
            key = (kind, robot_id, other_id)
            if key not in hits or penetration_m > hits[key][0]:
                hits[key] = (penetration_m, detected_by)

        self._check_bullet(record)
        self._check_swept_static(previous_xy_m, current_xy_m, record)
        self._check_swept_robots(t_s, previous_xy_m, current_xy_m, record)
        if obstacle_current_xy_m is not None and len(self.obstacle_ids):
            self._check_swept_moving(t_s, previous_xy_m, current_xy_m, obstacle_previous_xy_m,
                                     obstacle_current_xy_m, record)
        started = []
        for key, (penetration_m, detected_by) in sorted(hits.items()):
            if key not in self._active:
                event = CollisionEvent(time_s=t_s, kind=key[0], robot_id=key[1],
                                       other_id=key[2], penetration_m=penetration_m,
                                       detected_by=detected_by)
                started.append(event)
                _LOG.warning('collision %s at t=%.3f s: %s and %s overlap by %.4f m (%s)',
                             event.kind, t_s, event.robot_id, event.other_id,
                             penetration_m, detected_by)
        self._active = set(hits)
        self.events.extend(started)
        self.steps_checked += 1
        return started

    def _check_bullet(self, record) -> None:
        for info_a, info_b, distance_m in self.sim_world.contacts():
            if distance_m >= -self.bullet_tolerance_m:
                continue
            if info_a.kind != 'robot':
                info_a, info_b = info_b, info_a
            if info_a.kind != 'robot':
                continue
            if info_b.kind == 'robot':
                pair = sorted((info_a.name, info_b.name))
                record('robot-robot', pair[0], pair[1], -distance_m, 'contact')
            else:
                other = 'map' if info_b.kind == 'static' else info_b.name
                record(f'robot-{info_b.kind}', info_a.name, other, -distance_m, 'contact')

    def _check_swept_static(self, previous_xy_m, current_xy_m, record) -> None:
        # A robot that did not move was checked at this pose in an earlier step (and PyBullet
        # contacts cover it every step), so only moving robots need the swept query.
        moved = np.any(previous_xy_m != current_xy_m, axis=1) | (self.steps_checked == 0)
        for radius_m, checker in self._checkers.items():
            index = np.flatnonzero((self.radii_m == radius_m) & moved)
            if index.size == 0:
                continue
            free = checker.segments_free(previous_xy_m[index], current_xy_m[index])
            for robot_index in index[~free]:
                record('robot-static', self.robot_ids[robot_index], 'map',
                       self._static_penetration_m(robot_index, current_xy_m), 'swept')

    def _static_penetration_m(self, robot_index: int, current_xy_m) -> float:
        """Depth of the robot into the map at its new pose (0 when only the sweep hit)."""
        checker = self._checkers[float(self.radii_m[robot_index])]
        if checker.point_free(current_xy_m[robot_index]):
            return 0.0
        point = shapely.points(current_xy_m[robot_index])
        if self._obstacle_union is None:
            self._obstacle_union = self.sim_world.world.obstacle_union
        union = self._obstacle_union
        distance = float(shapely.distance(point, union)) if not union.is_empty else math.inf
        return max(float(self.radii_m[robot_index]) - distance, 0.0)

    def _check_swept_robots(self, t_s, previous_xy_m, current_xy_m, record) -> None:
        count = len(self.robot_ids)
        if count < 2:
            return
        upper_i, upper_j = np.triu_indices(count, k=1)
        distances, fractions = segment_pair_min_distance(
            previous_xy_m[upper_i], current_xy_m[upper_i], previous_xy_m[upper_j],
            current_xy_m[upper_j])
        gaps = distances - self.radii_m[upper_i] - self.radii_m[upper_j]
        worst = int(np.argmin(gaps))
        i, j = int(upper_i[worst]), int(upper_j[worst])
        where = previous_xy_m[i] + fractions[worst] * (current_xy_m[i] - previous_xy_m[i])
        self.robot_robot.update(gaps[worst], t_s, (self.robot_ids[i], self.robot_ids[j]), where)
        for pair_index in np.flatnonzero(gaps < -self.tolerance_m):
            i, j = int(upper_i[pair_index]), int(upper_j[pair_index])
            pair = sorted((self.robot_ids[i], self.robot_ids[j]))
            record('robot-robot', pair[0], pair[1], float(-gaps[pair_index]), 'swept')
        for pair_index in np.flatnonzero(gaps < _NEAR_GAP_M):
            i, j = int(upper_i[pair_index]), int(upper_j[pair_index])
            bullet_gap_m = self.sim_world.closest_distance_m(
                self.robot_body_ids[i], self.robot_body_ids[j], max_distance_m=_NEAR_GAP_M)
            self.bullet_robot_robot_gap_m = min(self.bullet_robot_robot_gap_m, bullet_gap_m)

    def _check_swept_moving(self, t_s, previous_xy_m, current_xy_m, obstacle_previous_xy_m,
                            obstacle_current_xy_m, record) -> None:
        distances, fractions = segment_pair_min_distance(
            previous_xy_m[:, None, :], current_xy_m[:, None, :],
            obstacle_previous_xy_m[None, :, :], obstacle_current_xy_m[None, :, :])
        gaps = distances - self.radii_m[:, None] - self.obstacle_radii_m[None, :]
        i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        where = previous_xy_m[i] + fractions[i, j] * (current_xy_m[i] - previous_xy_m[i])
        self.robot_moving.update(gaps[i, j], t_s, (self.robot_ids[i], self.obstacle_ids[j]),
                                 where)
        for i, j in zip(*np.nonzero(gaps < -self.tolerance_m)):
            record('robot-moving', self.robot_ids[i], self.obstacle_ids[j],
                   float(-gaps[i, j]), 'swept')
