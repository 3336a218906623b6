"""Geometry: maps, the static world, moving obstacles, trajectories and conflict checks."""

from mapl_robotics.geometry.conflicts import (ClosestApproach, Conflict, closest_approach,
                                              conflicting_ids, find_conflict)
from mapl_robotics.geometry.obstacles import (ConstantVelocity, MovingObstacle,
                                              TimedWaypoints)
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.geometry.world import CollisionChecker, World

__all__ = [
    'ClosestApproach',
    'CollisionChecker',
    'Conflict',
    'ConstantVelocity',
    'MovingObstacle',
    'TimedWaypoints',
    'Trajectory',
    'World',
    'closest_approach',
    'conflicting_ids',
    'find_conflict',
]
