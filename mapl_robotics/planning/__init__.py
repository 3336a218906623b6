"""Planning: RRT-family path search, shortcut smoothing, time parameterization and space-time
planning against moving obstacles and other robots' committed trajectories."""

from mapl_robotics.planning.curvature import RoundedPath, round_corners
from mapl_robotics.planning.models import (ALGORITHMS, CORNER_RULES, DRIVES, PlannerSettings,
                                           RobotModel, require_generator)
from mapl_robotics.planning.rrt import (PathResult, plan_path, prepare_checker, search_path,
                                        validate_endpoints)
from mapl_robotics.planning.smoothing import (path_length_m, remove_redundant_vertices,
                                              shortcut_smooth)
from mapl_robotics.planning.spacetime import (DiscAvoidingChecker, earliest_conflict_time,
                                              plan_trajectory)
from mapl_robotics.planning.timing import arc_speed_mps, corner_indices, time_parameterize

__all__ = [
    'ALGORITHMS',
    'CORNER_RULES',
    'DRIVES',
    'DiscAvoidingChecker',
    'PathResult',
    'PlannerSettings',
    'RobotModel',
    'RoundedPath',
    'arc_speed_mps',
    'corner_indices',
    'earliest_conflict_time',
    'path_length_m',
    'plan_path',
    'plan_trajectory',
    'prepare_checker',
    'remove_redundant_vertices',
    'require_generator',
    'round_corners',
    'search_path',
    'shortcut_smooth',
    'time_parameterize',
    'validate_endpoints',
]
