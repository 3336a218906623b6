"""The MAPL fleet spec: load, validate and use a fleet description written in JSON or YAML.

``load_spec(path_or_mapping)`` returns a frozen :class:`FleetSpec`. Every section is a strict
pydantic model: unknown keys, wrong types, out-of-range values and bad units are rejected with
one :class:`~mapl_robotics.errors.SpecError` that lists each problem with its key path.
docs/spec.md describes every key.
"""

from mapl_robotics.spec.fleet import (ConstantVelocitySpec, MapSpec, MovingObstacleSpec,
                                      RobotSpec, WaypointsSpec)
from mapl_robotics.spec.loading import format_location, load_spec, spec_json_schema
from mapl_robotics.spec.model import FleetSpec
from mapl_robotics.spec.settings import (ConsensusSpec, KillAgentFault, KillLeaderFault,
                                         MeshSpec, MessageLossFault, PartitionFault,
                                         PlannerSpec, ScenarioSpec)
from mapl_robotics.spec.system import (Communication, Coordination, PathPlanning,
                                       PathPlanningConstraints, RoboticSystem)
from mapl_robotics.spec.units import DURATION_UNITS, format_duration, parse_duration

__all__ = [
    'DURATION_UNITS',
    'Communication',
    'ConsensusSpec',
    'ConstantVelocitySpec',
    'Coordination',
    'FleetSpec',
    'KillAgentFault',
    'KillLeaderFault',
    'MapSpec',
    'MeshSpec',
    'MessageLossFault',
    'MovingObstacleSpec',
    'PartitionFault',
    'PathPlanning',
    'PathPlanningConstraints',
    'PlannerSpec',
    'RobotSpec',
    'RoboticSystem',
    'ScenarioSpec',
    'WaypointsSpec',
    'format_duration',
    'format_location',
    'load_spec',
    'parse_duration',
    'spec_json_schema',
]
