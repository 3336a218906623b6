"""The whole fleet spec (the MAPL document) and its cross-section checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from mapl_robotics.spec.base import SpecModel
from mapl_robotics.spec.fleet import MapSpec, MovingObstacleSpec, RobotSpec, distance_m
from mapl_robotics.spec.settings import (ConsensusSpec, KillAgentFault, KillLeaderFault,
                                         MeshSpec, MessageLossFault, PartitionFault,
                                         PlannerSpec, ScenarioSpec)
from mapl_robotics.spec.system import RoboticSystem

if TYPE_CHECKING:
    from mapl_robotics.coordination.agent import AgentSettings
    from mapl_robotics.geometry import MovingObstacle, World

__all__ = ['FleetSpec', 'CrossFieldError', 'DEFAULT_CLUSTER_NODES']

# Ledger size in cluster mode when neither node_count nor addresses is given: the smallest
# Raft cluster that survives the loss of one node.
DEFAULT_CLUSTER_NODES = 3

Location = tuple[Any, ...]


class CrossFieldError(ValueError):
    """Problems that involve several fields, each with the key path it belongs to."""

    def __init__(self, problems: list[tuple[Location, str, Any]]) -> None:
        super().__init__('; '.join(message for _, message, _ in problems))
        self.problems = problems


class FleetSpec(SpecModel):
    """A fleet description: the ``roboticSystem`` block plus everything a fleet run needs."""

    spec_version: Literal[1] = Field(default=1, alias='specVersion')
    """Version of this document format."""

    name: Optional[str] = None
    """Short name of the fleet or scenario, used in output folder names and plots."""

    description: str = ''
    """Free text."""

    system: RoboticSystem = Field(alias='roboticSystem')
    map: Optional[MapSpec] = None
    robots: Annotated[tuple[RobotSpec, ...], Field(strict=False, max_length=1000)] = ()
    moving_obstacles: Annotated[tuple[MovingObstacleSpec, ...],
                                Field(strict=False, max_length=1000,
                                      alias='movingObstacles')] = ()
    planner: PlannerSpec = PlannerSpec()
    consensus: ConsensusSpec = ConsensusSpec()
    mesh: MeshSpec = MeshSpec()
    scenario: ScenarioSpec = ScenarioSpec()

    # Derived values.

    @property
    def robot_ids(self) -> tuple[str, ...]:
        return tuple(robot.id for robot in self.robots)

    @property
    def hold_timeout_s(self) -> float:
        """Time without a confirmed commit or ledger contact after which a robot holds."""
        return self.system.communication.latency_bound_s

    @property
    def ledger_node_count(self) -> int:
        """Number of ledger replicas: one per robot, or the cluster size."""
        if self.consensus.addresses:
            return len(self.consensus.addresses)
        if self.consensus.mode == 'replica_per_robot':
            return len(self.robots)
        return self.consensus.node_count or DEFAULT_CLUSTER_NODES

    @property
    def ledger_node_names(self) -> tuple[str, ...]:
        """Ledger node names: the robot ids in replica_per_robot mode, else ledger_<i>."""
        if self.consensus.mode == 'replica_per_robot':
            return self.robot_ids
        return tuple(f'ledger_{index}' for index in range(self.ledger_node_count))

    def ledger_addresses(self) -> tuple[str, ...]:
        """Return each ledger node's 'host:port', in the order of :attr:`ledger_node_names`."""
        if self.consensus.addresses:
            return self.consensus.addresses
        return tuple(f'{self.consensus.host}:{self.consensus.base_port + index}'
                     for index in range(self.ledger_node_count))

    @property
    def mesh_node_ids(self) -> tuple[str, ...]:
        """Mesh nodes: every robot, plus the dedicated ledger nodes in cluster mode."""
        if self.consensus.mode == 'cluster':
            return self.robot_ids + self.ledger_node_names
        return self.robot_ids

    def mesh_endpoints(self) -> dict[str, str]:
        """Return the ZeroMQ endpoint ``tcp://host:port`` of each mesh node."""
        return {node: f'tcp://{self.mesh.host}:{self.mesh.base_port + index}'
                for index, node in enumerate(self.mesh_node_ids)}

    def robot(self, robot_id: str) -> RobotSpec:
        """Return the robot with id ``robot_id``."""
        for robot in self.robots:
            if robot.id == robot_id:
                return robot
        from mapl_robotics.errors import SpecError
        raise SpecError(f'robot id {robot_id!r} is not in the spec; its robots are '
                        f'{", ".join(self.robot_ids) or "(none)"}')

    def planner_rng(self, robot_id: str) -> np.random.Generator:
        """Return robot ``robot_id``'s planner generator, seeded by (planner.seed, index)."""
        index = self.robot_ids.index(self.robot(robot_id).id)
        return np.random.default_rng([self.planner.seed, index])

    def moving_obstacle_models(self) -> tuple['MovingObstacle', ...]:
        """Return every moving obstacle as a geometry-layer object (what the simulator moves)."""
        return tuple(spec.to_obstacle() for spec in self.moving_obstacles)

    def planned_obstacles(self) -> tuple['MovingObstacle', ...]:
        """Return the moving obstacles that planners and the ledger plan against.

        Empty when ``roboticSystem.pathPlanning.constraints.dynamic_obstacles`` is false.
        """
        if not self.system.path_planning.constraints.dynamic_obstacles:
            return ()
        return self.moving_obstacle_models()

    def agent_settings(self, **changes: Any) -> 'AgentSettings':
        """Return the agent loop's settings: planner.max_replans proposals per goal,
        consensus.commit_timeout_s per ledger request and planner.clearance_m.

        ``changes`` set the agent settings that the spec does not cover (``commit_lead_s``,
        ``refresh_period_s``, ...).
        """
        import dataclasses

        from mapl_robotics.coordination.agent import AgentSettings
        base = AgentSettings(max_attempts=self.planner.max_replans,
                             ledger_timeout_s=self.consensus.commit_timeout_s,
                             clearance_m=self.planner.clearance_m)
        return dataclasses.replace(base, **changes) if changes else base

    def load_world(self) -> 'World':
        """Load the spec's map; raises :class:`~mapl_robotics.errors.SpecError` without one."""
        if self.map is None:
            from mapl_robotics.errors import SpecError
            raise SpecError('the spec has no map section; add map.path, for example '
                            "'maps/ros/warehouse.yaml'")
        return self.map.load()

    def check_positions(self, world: 'World') -> None:
        """Check every robot's start and goal against ``world``: inside the bounds and free
        for the robot's radius. Raises one :class:`~mapl_robotics.errors.SpecError` listing
        every position that is not.
        """
        from mapl_robotics.errors import SpecError
        from mapl_robotics.spec.loading import format_location

        problems: list[tuple[str, str]] = []
        x_min, y_min, x_max, y_max = world.bounds_m
        for index, robot in enumerate(self.robots):
            checker = world.checker(robot.radius_m)
            for key, xy in (('start', robot.start_xy_m), ('goal', robot.goal)):
                where = format_location(('robots', index, key))
                shown = f'({xy[0]:g}, {xy[1]:g}) m'
                if not bool(world.contains_xy(xy)[0]):
                    problems.append((where, f'{shown} is outside the map bounds x in '
                                     f'[{x_min:g}, {x_max:g}], y in [{y_min:g}, {y_max:g}]'))
                elif not checker.point_free(xy):
                    problems.append((where, f'{shown} is not free for a robot of radius '
                                     f'{robot.radius_m:g} m: it overlaps an obstacle or the map '
                                     'border; move it into free space'))
        if problems:
            count = len(problems)
            lines = [f'the robots of fleet spec {self.name or "(unnamed)"!r} do not fit map '
                     f'{world.name!r}: {count} problem{"s" if count != 1 else ""}']
            lines += [f'  {path}: {message}' for path, message in problems]
            raise SpecError('\n'.join(lines), problems=problems)

    # Cross-section checks.

    @model_validator(mode='after')
    def _cross_check(self) -> 'FleetSpec':
        problems: list[tuple[Location, str, Any]] = []
        self._check_ids(problems)
        self._check_separation(problems, 'start')
        self._check_separation(problems, 'goal')
        self._check_timing(problems)
        self._check_ledger(problems)
        self._check_faults(problems)
        if problems:
            raise CrossFieldError(problems)
        return self

    def _check_ids(self, problems: list) -> None:
        seen: dict[str, int] = {}
        for index, robot in enumerate(self.robots):
            if robot.id in seen:
                problems.append((('robots', index, 'id'), f'duplicate robot id, also used by '
                                 f'robots[{seen[robot.id]}]; robot ids must be unique',
                                 robot.id))
            seen.setdefault(robot.id, index)
        obstacles: dict[str, int] = {}
        for index, obstacle in enumerate(self.moving_obstacles):
            location = ('movingObstacles', index, 'id')
            if obstacle.id in seen:
                problems.append((location, 'a moving obstacle may not share an id with a '
                                 'robot', obstacle.id))
            elif obstacle.id in obstacles:
                problems.append((location, 'duplicate moving obstacle id, also used by '
                                 f'movingObstacles[{obstacles[obstacle.id]}]', obstacle.id))
            obstacles.setdefault(obstacle.id, index)

    def _check_separation(self, problems: list, key: str) -> None:
        clearance_m = self.planner.clearance_m
        for j, later in enumerate(self.robots):
            for i, earlier in enumerate(self.robots[:j]):
                gap_m = distance_m(getattr(earlier, key), getattr(later, key))
                needed_m = earlier.radius_m + later.radius_m + clearance_m
                if gap_m < needed_m:
                    problems.append((
                        ('robots', j, key),
                        f'{key} is {gap_m:.3g} m from the {key} of robot {earlier.id!r} '
                        f'(robots[{i}]); the two discs need at least {needed_m:.3g} m (radii '
                        'plus planner.clearance_m) between centres',
                        list(getattr(later, key))))

    def _check_timing(self, problems: list) -> None:
        communication = self.system.communication
        bound_s = communication.latency_bound_s
        detect_s = self.mesh.heartbeat_period_s * self.mesh.heartbeat_misses
        if detect_s > bound_s:
            problems.append((
                ('mesh', 'heartbeat_period_s'),
                f'heartbeat_period_s x heartbeat_misses = {detect_s:.4g} s exceeds '
                f'roboticSystem.communication.latency_bound ({bound_s:.4g} s), so a dead peer '
                'would go unnoticed past the bound; shorten the period or allow fewer misses',
                self.mesh.heartbeat_period_s))
        if communication.acknowledged and self.mesh.retry_initial_s >= bound_s:
            problems.append((
                ('mesh', 'retry_initial_s'),
                f'the first retry would come after the deadline of {bound_s:.4g} s '
                '(roboticSystem.communication.latency_bound); make it shorter',
                self.mesh.retry_initial_s))

    def _check_ledger(self, problems: list) -> None:
        consensus = self.consensus
        if consensus.mode == 'replica_per_robot':
            if consensus.node_count is not None:
                problems.append((('consensus', 'node_count'), 'node_count applies only to '
                                 'mode cluster; in replica_per_robot mode every robot runs one '
                                 'replica', consensus.node_count))
            if consensus.addresses and len(consensus.addresses) != len(self.robots):
                problems.append((('consensus', 'addresses'), f'replica_per_robot mode needs '
                                 f'one address per robot ({len(self.robots)}), got '
                                 f'{len(consensus.addresses)}', list(consensus.addresses)))
        ledger_ports = range(consensus.base_port, consensus.base_port + self.ledger_node_count)
        mesh_ports = range(self.mesh.base_port, self.mesh.base_port + len(self.mesh_node_ids))
        if mesh_ports.stop - 1 > 65535:
            problems.append((('mesh', 'base_port'), f'{len(mesh_ports)} mesh nodes need ports '
                             f'up to {mesh_ports.stop - 1}, above 65535', self.mesh.base_port))
        if not consensus.addresses:
            if ledger_ports.stop - 1 > 65535:
                problems.append((('consensus', 'base_port'), f'{len(ledger_ports)} ledger '
                                 f'nodes need ports up to {ledger_ports.stop - 1}, above 65535',
                                 consensus.base_port))
            overlap = set(ledger_ports) & set(mesh_ports)
            if overlap and consensus.host == self.mesh.host:
                problems.append((('consensus', 'base_port'), f'ledger ports {ledger_ports.start}'
                                 f'-{ledger_ports.stop - 1} overlap mesh ports '
                                 f'{mesh_ports.start}-{mesh_ports.stop - 1}; move one base_port',
                                 consensus.base_port))

    def _check_faults(self, problems: list) -> None:
        robot_ids = set(self.robot_ids)
        robot_list = ', '.join(sorted(robot_ids)) or '(none)'
        node_names = robot_ids | set(self.ledger_node_names)
        limit_s = self.scenario.time_limit_s
        loss_faults = 0
        for index, fault in enumerate(self.scenario.faults):
            where = ('scenario', 'faults', index)
            at_s = getattr(fault, 'at_s', None)
            if at_s is not None and at_s >= limit_s:
                problems.append((where + ('at_s',), f'the fault would come at or after '
                                 f'scenario.time_limit_s ({limit_s:g} s)', at_s))
            if isinstance(fault, KillAgentFault) and fault.robot not in robot_ids:
                problems.append((where + ('robot',), f'no robot has this id; robots: {robot_list}',
                                 fault.robot))
            if isinstance(fault, KillLeaderFault) and self.ledger_node_count < 3:
                problems.append((where + ('type',), f'a ledger of {self.ledger_node_count} '
                                 'node(s) cannot elect a new leader after losing one; use at '
                                 'least 3 ledger nodes', fault.type))
            if isinstance(fault, PartitionFault):
                for position, node in enumerate(fault.nodes):
                    if node not in node_names:
                        problems.append((where + ('nodes', position), 'not a robot id or '
                                         'ledger node name; known: '
                                         f'{", ".join(sorted(node_names)) or "(none)"}', node))
            if isinstance(fault, MessageLossFault):
                loss_faults += 1
                if loss_faults > 1:
                    problems.append((where, 'only one message_loss fault is allowed',
                                     fault.type))
