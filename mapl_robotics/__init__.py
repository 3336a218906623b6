"""mapl_robotics: multi-robot coordination for fleets of mobile robots.

The planning library (maps, world, planners, trajectories, conflict checks) needs neither ROS
nor a network. The consensus ledger, mesh, simulator and ROS bridge live in subpackages and
are imported on demand.
"""

from mapl_robotics import errors
from mapl_robotics.geometry import (ConstantVelocity, MovingObstacle, TimedWaypoints,
                                    Trajectory, World, closest_approach, find_conflict)

__version__ = '0.1.0'

__all__ = [
    'ConstantVelocity',
    'MovingObstacle',
    'TimedWaypoints',
    'Trajectory',
    'World',
    '__version__',
    'closest_approach',
    'errors',
    'find_conflict',
]
