"""The simulation loop: robots tracking their plans, moving obstacles, collision checks.

:class:`FleetSimulation` has no notion of agents or the ledger. Each step the runner hands
it the trajectory each robot may execute (or ``None``: hold), and it moves the robots, moves
the moving obstacles, checks collisions, tracks arrivals and records paths for the metrics and
plots. This split keeps the physics deterministic and testable on its own.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Mapping, Sequence

import numpy as np

from mapl_robotics.errors import ScenarioError
from mapl_robotics.geometry.obstacles import MovingObstacle
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.geometry.world import World
from mapl_robotics.sim.clock import SimClock
from mapl_robotics.sim.collisions import CollisionEvent, CollisionMonitor
from mapl_robotics.sim.controllers import TrackingController
from mapl_robotics.sim.metrics import ArrivalTracker
from mapl_robotics.sim.moving import MovingObstacleBody
from mapl_robotics.sim.robots import DiffDriveRobot
from mapl_robotics.sim.world import MOVING_GROUP, ROBOT_GROUP, STATIC_GROUP, BodyInfo, SimWorld

__all__ = ['RobotSetup', 'RobotPose', 'FleetSimulation', 'DEFAULT_FOOTPRINT_MARGIN_M']

_LOG = logging.getLogger(__name__)

# How much smaller than its planning disc a simulated robot body is, in metres.
DEFAULT_FOOTPRINT_MARGIN_M = 0.01


@dataclasses.dataclass(frozen=True)
class RobotSetup:
    """A robot as the simulator needs it: footprint, limits, start and goal."""

    robot_id: str
    radius_m: float
    max_speed_mps: float
    max_accel_mps2: float
    start_xy_m: tuple[float, float]
    goal_xy_m: tuple[float, float]
    start_yaw_rad: float = 0.0
    max_yaw_rate_radps: float | None = None


@dataclasses.dataclass(frozen=True)
class RobotPose:
    """A robot's pose and speed at one instant, as agents receive it."""

    robot_id: str
    t_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float

    @property
    def xy_m(self) -> tuple[float, float]:
        return (self.x_m, self.y_m)


class FleetSimulation:
    """Steps a fleet of kinematic differential-drive robots through a static world.

    :param footprint_margin_m: the simulated body's radius is the planning radius minus this
        margin. The planning radius is the disc that contains the footprint, and plans may
        touch static obstacles with it, so a body of exactly that radius would graze walls
        with every millimetre of tracking error. 1 cm covers the controller's lateral tracking
        error, which stays below 5 mm in the tests.
    :param record_every: keep every n-th step's positions for plots (all steps are checked).
    """

    def __init__(self, world: World, robots: Sequence[RobotSetup], *,
                 moving_obstacles: Sequence[MovingObstacle] = (), step_s: float = 1.0 / 60.0,
                 time_limit_s: float = 120.0, goal_tolerance_m: float = 0.1,
                 footprint_margin_m: float = DEFAULT_FOOTPRINT_MARGIN_M,
                 record_every: int = 6) -> None:
        ids = [robot.robot_id for robot in robots]
        if len(set(ids)) != len(ids):
            raise ScenarioError(f'robot ids must be unique, got {ids}')
        if not robots:
            raise ScenarioError('a simulation needs at least one robot; add robots to the '
                                'scenario')
        self.world = world
        self.setups = list(robots)
        self.robot_ids = ids
        self.clock = SimClock(step_s=step_s)
        self.time_limit_s = float(time_limit_s)
        self.record_every = max(1, int(record_every))
        if not 0.0 <= footprint_margin_m < 0.5 * min(robot.radius_m for robot in robots):
            raise ScenarioError(f'footprint_margin_m={footprint_margin_m} must be >= 0 and '
                                'below half of the smallest robot radius')
        self.footprint_margin_m = float(footprint_margin_m)
        self.sim_world = SimWorld(world)
        try:
            self._build(moving_obstacles, goal_tolerance_m)
        except Exception:
            self.sim_world.close()
            raise

    def _build(self, moving_obstacles, goal_tolerance_m) -> None:
        client = self.sim_world.client_id
        self.robots: dict[str, DiffDriveRobot] = {}
        for setup in self.setups:
            for name, xy in (('start', setup.start_xy_m), ('goal', setup.goal_xy_m)):
                self.world.require_inside(xy, what=f'robot {setup.robot_id} {name}')
            robot = DiffDriveRobot(client, robot_id=setup.robot_id,
                                   radius_m=setup.radius_m - self.footprint_margin_m,
                                   start_xy_m=setup.start_xy_m,
                                   start_yaw_rad=setup.start_yaw_rad,
                                   max_speed_mps=setup.max_speed_mps,
                                   max_accel_mps2=setup.max_accel_mps2,
                                   max_yaw_rate_radps=setup.max_yaw_rate_radps)
            self.sim_world.register(robot.body_id, BodyInfo(kind='robot', name=setup.robot_id),
                                    group=ROBOT_GROUP,
                                    mask=ROBOT_GROUP | STATIC_GROUP | MOVING_GROUP)
            self.robots[setup.robot_id] = robot
        self.controllers = {robot_id: TrackingController(step_s=self.clock.step_s)
                            for robot_id in self.robot_ids}
        horizon_s = self.time_limit_s + 10.0
        self.obstacles = [MovingObstacleBody(self.sim_world, obstacle, t_end_s=horizon_s)
                          for obstacle in moving_obstacles]
        self.monitor = CollisionMonitor(
            self.sim_world, self.world, robot_ids=self.robot_ids,
            robot_body_ids=[self.robots[r].body_id for r in self.robot_ids],
            robot_radii_m=[self.robots[r].radius_m for r in self.robot_ids],
            obstacle_ids=[body.obstacle_id for body in self.obstacles],
            obstacle_radii_m=[body.radius_m for body in self.obstacles])
        self.arrivals = ArrivalTracker({s.robot_id: s.goal_xy_m for s in self.setups},
                                       tolerance_m=goal_tolerance_m)
        self.plans: dict[str, Trajectory | None] = {robot_id: None for robot_id in self.robot_ids}
        self.path_length_m = {robot_id: 0.0 for robot_id in self.robot_ids}
        self._positions = self._robot_xy()
        self._obstacle_positions = self._obstacle_xy(0.0)
        self.recorded_times_s: list[float] = [0.0]
        self.recorded_robot_xy: list[np.ndarray] = [self._positions.copy()]
        self.recorded_obstacle_xy: list[np.ndarray] = [self._obstacle_positions.copy()]
        self.monitor.check(0.0, self._positions, self._positions, self._obstacle_positions,
                           self._obstacle_positions)

    # -- state ----------------------------------------------------------------------------------

    def _robot_xy(self) -> np.ndarray:
        return np.array([self.robots[r].state.xy_m for r in self.robot_ids])

    def _obstacle_xy(self, t_s: float) -> np.ndarray:
        if not self.obstacles:
            return np.zeros((0, 2))
        return np.array([body.move_to_time(t_s) for body in self.obstacles])

    @property
    def now_s(self) -> float:
        return self.clock.now_s()

    def pose(self, robot_id: str) -> RobotPose:
        """Return the current pose of one robot."""
        state = self.robots[robot_id].state
        return RobotPose(robot_id=robot_id, t_s=self.now_s, x_m=state.x_m, y_m=state.y_m,
                         yaw_rad=state.yaw_rad, speed_mps=state.speed_mps)

    def poses(self) -> dict[str, RobotPose]:
        return {robot_id: self.pose(robot_id) for robot_id in self.robot_ids}

    @property
    def all_arrived(self) -> bool:
        return self.arrivals.all_arrived

    @property
    def timed_out(self) -> bool:
        return self.now_s >= self.time_limit_s

    @property
    def max_tracking_error_m(self) -> float:
        return max(controller.max_error_m for controller in self.controllers.values())

    # -- stepping -------------------------------------------------------------------------------

    def set_plans(self, plans: Mapping[str, Trajectory | None]) -> None:
        """Set the trajectory each robot executes from now on; ``None`` makes it hold."""
        for robot_id, trajectory in plans.items():
            if robot_id not in self.plans:
                raise ScenarioError(f'unknown robot id {robot_id!r}; the simulation has '
                                    f'{", ".join(self.robot_ids)}')
            self.plans[robot_id] = trajectory

    def step(self) -> list[CollisionEvent]:
        """Advance one step; return the collision events that started in it."""
        t_s = self.now_s
        dt_s = self.clock.step_s
        for robot_id in self.robot_ids:
            robot = self.robots[robot_id]
            speed, yaw_rate = self.controllers[robot_id].command(robot.state,
                                                                 self.plans[robot_id], t_s)
            robot.step(speed, yaw_rate, dt_s)
        t_next_s = self.clock.advance()
        previous = self._positions
        current = self._robot_xy()
        obstacles_previous = self._obstacle_positions
        obstacles_current = self._obstacle_xy(t_next_s)
        events = self.monitor.check(t_next_s, previous, current, obstacles_previous,
                                    obstacles_current)
        moved = np.linalg.norm(current - previous, axis=1)
        for index, robot_id in enumerate(self.robot_ids):
            self.path_length_m[robot_id] += float(moved[index])
            state = self.robots[robot_id].state
            self.arrivals.update(t_next_s, robot_id, current[index], state.speed_mps)
        self._positions = current
        self._obstacle_positions = obstacles_current
        if self.clock.steps % self.record_every == 0:
            self.recorded_times_s.append(t_next_s)
            self.recorded_robot_xy.append(current.copy())
            self.recorded_obstacle_xy.append(obstacles_current.copy())
        return events

    # -- results --------------------------------------------------------------------------------

    def robot_paths(self) -> dict[str, np.ndarray]:
        """Return each robot's recorded positions, shape ``(T, 2)``."""
        stacked = np.stack(self.recorded_robot_xy)
        return {robot_id: stacked[:, index] for index, robot_id in enumerate(self.robot_ids)}

    def obstacle_paths(self) -> dict[str, np.ndarray]:
        if not self.obstacles:
            return {}
        stacked = np.stack(self.recorded_obstacle_xy)
        return {body.obstacle_id: stacked[:, index] for index, body in enumerate(self.obstacles)}

    def closest_approach(self) -> dict:
        """Return the robot pair that came closest: ids, surface gap, time and place."""
        record = self.monitor.robot_robot
        return {'pair': list(record.pair), 'gap_m': record.gap_m, 'time_s': record.time_s,
                'xy_m': list(record.xy_m)}

    def collision_events(self) -> list[dict]:
        """Return the collision events as JSON-ready mappings, with the robot's position."""
        events = []
        for event in self.monitor.events:
            item = dataclasses.asdict(event)
            item['penetration_m'] = round(event.penetration_m, 4)
            item['time_s'] = round(event.time_s, 4)
            index = min(int(round(event.time_s / self.clock.step_s / self.record_every)),
                        len(self.recorded_robot_xy) - 1)
            robot_index = self.robot_ids.index(event.robot_id)
            item['xy_m'] = [round(float(v), 3)
                            for v in self.recorded_robot_xy[index][robot_index]]
            events.append(item)
        return events

    def close(self) -> None:
        self.sim_world.close()

    def __enter__(self) -> 'FleetSimulation':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
