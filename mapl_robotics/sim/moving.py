"""Moving obstacles in the simulation: bodies that follow their motion models exactly.

A :class:`~mapl_robotics.geometry.obstacles.MovingObstacle` predicts its own motion. The
simulator moves its body along the same prediction, so the obstacle moves as the agents'
predictions say.
"""

from __future__ import annotations

import numpy as np

from mapl_robotics.geometry.obstacles import MovingObstacle
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.resources import bundled_path
from mapl_robotics.sim.controllers import TrajectoryReference
from mapl_robotics.sim.quiet_pybullet import pybullet
from mapl_robotics.sim.world import MOVING_GROUP, ROBOT_GROUP, BodyInfo, SimWorld

__all__ = ['MovingObstacleBody', 'OBSTACLE_URDF']

OBSTACLE_URDF = 'sim/models/moving_obstacle.urdf'
_URDF_RADIUS_M = 0.5


class MovingObstacleBody:
    """A moving obstacle's PyBullet body and its motion over the whole run."""

    def __init__(self, sim_world: SimWorld, obstacle: MovingObstacle, *,
                 t_end_s: float) -> None:
        self.obstacle = obstacle
        self.obstacle_id = obstacle.obstacle_id
        self.radius_m = float(obstacle.radius_m)
        # One prediction over the whole run, sampled by interpolation every step.
        self.trajectory: Trajectory = obstacle.predict(0.0, max(t_end_s, 1e-3))
        self._reference = TrajectoryReference(self.trajectory)
        self._client_id = sim_world.client_id
        start = self.trajectory.position_at(0.0)
        self.body_id = pybullet.loadURDF(
            str(bundled_path(OBSTACLE_URDF)), basePosition=[start[0], start[1], 0.0],
            globalScaling=self.radius_m / _URDF_RADIUS_M, useFixedBase=False,
            physicsClientId=self._client_id)
        sim_world.register(self.body_id, BodyInfo(kind='moving', name=self.obstacle_id),
                           group=MOVING_GROUP, mask=ROBOT_GROUP)
        self.xy_m = np.asarray(start, dtype=float)

    def position_at(self, t_s: float) -> np.ndarray:
        return self.trajectory.position_at(t_s)

    def move_to_time(self, t_s: float) -> np.ndarray:
        """Place the body where its motion puts it at ``t_s`` and return that position."""
        x_m, y_m, vx_mps, vy_mps = self._reference.sample(t_s)
        yaw = self._reference.heading(t_s, vx_mps, vy_mps)
        pybullet.resetBasePositionAndOrientation(
            self.body_id, [x_m, y_m, 0.0], pybullet.getQuaternionFromEuler([0.0, 0.0, yaw]),
            physicsClientId=self._client_id)
        self.xy_m = np.array([x_m, y_m])
        return self.xy_m
