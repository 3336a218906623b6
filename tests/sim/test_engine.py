"""FleetSimulation stepping with fixed plans (no agents)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from mapl_robotics.errors import ScenarioError
from mapl_robotics.geometry import ConstantVelocity, MovingObstacle, World
from mapl_robotics.planning import RobotModel, plan_trajectory
from mapl_robotics.sim.engine import FleetSimulation, RobotSetup

WORLD = World(bounds_m=(0.0, 0.0, 10.0, 6.0), obstacles=[box(4.0, 0.0, 6.0, 2.5)],
              name='bay')


def _setup(robot_id, start, goal):
    return RobotSetup(robot_id=robot_id, radius_m=0.25, max_speed_mps=1.0, max_accel_mps2=1.0,
                      start_xy_m=start, goal_xy_m=goal, max_yaw_rate_radps=2.0)


def test_robot_follows_plan_and_arrives():
    model = RobotModel(radius_m=0.25, max_speed_mps=1.0, max_accel_mps2=1.0,
                       drive='differential', max_yaw_rate_radps=2.0)
    trajectory = plan_trajectory(WORLD, model, (1.0, 1.0), (9.0, 1.0), t_start_s=0.0,
                                 rng=np.random.default_rng(3), start_yaw_rad=0.0)
    with FleetSimulation(WORLD, [_setup('r0', (1.0, 1.0), (9.0, 1.0))],
                         time_limit_s=60.0) as sim:
        sim.set_plans({'r0': trajectory})
        while not sim.all_arrived and not sim.timed_out:
            sim.step()
        assert sim.all_arrived
        assert sim.monitor.counts == {'robot-robot': 0, 'robot-static': 0, 'robot-moving': 0}
        assert sim.arrivals.arrival_s['r0'] == pytest.approx(trajectory.end_time_s, abs=1.0)
        assert sim.path_length_m['r0'] >= trajectory.length_m - 0.05
        assert sim.max_tracking_error_m < 0.1


def test_holding_robot_is_hit_by_obstacle():
    person = MovingObstacle('walker', 0.3, ConstantVelocity(start_xy_m=(2.0, 5.0),
                                                            velocity_mps=(0.0, -1.0)))
    with FleetSimulation(WORLD, [_setup('r0', (2.0, 2.0), (9.0, 1.0))],
                         moving_obstacles=[person], time_limit_s=10.0) as sim:
        for _ in range(4 * 60):
            sim.step()
        assert sim.monitor.counts['robot-moving'] == 1
        assert not sim.all_arrived
        paths = sim.obstacle_paths()
        assert paths['walker'][-1][1] == pytest.approx(1.0)


def test_duplicate_robot_ids_rejected():
    with pytest.raises(ScenarioError, match='unique'):
        FleetSimulation(WORLD, [_setup('r0', (1.0, 1.0), (9.0, 1.0))] * 2)


def test_goal_outside_map_rejected():
    with pytest.raises(ValueError, match='outside'):
        FleetSimulation(WORLD, [_setup('r0', (1.0, 1.0), (19.0, 1.0))])
