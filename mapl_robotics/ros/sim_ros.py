"""Run the PyBullet fleet simulator as part of a ROS 2 system.

Two modes share one loop (:func:`run_ros_simulation`), paced to the wall clock:

- **whole fleet** (``mapl sim --ros``): the scenario's agents run in this process, exactly as
  ``mapl sim --in-process`` runs them; ROS gets every robot's ``odom``, the ``tf`` tree and
  ``/clock``, and a goal sent on ``/<robot>/goal_pose`` replaces that robot's goal.
- **world only** (``ros2 run mapl_robotics sim_bridge``, started by the launch file with
  ``sim:=true``): there are no agents here; each robot executes the committed plan that its
  agent node publishes on ``/<robot>/plan``, and the agent nodes receive the goals.

Fleet time is simulation time, and ROS time on ``/clock`` is simulation time too (fleet epoch
0), so agent nodes started with ``use_sim_time:=true`` share the simulator's clock.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
from typing import Sequence

from mapl_robotics.errors import MaplError
from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.ros.sim_bridge import RobotState, SimBridge
from mapl_robotics.ros.time_conversion import FleetTimeBase

__all__ = ['run_ros_simulation', 'run_scenario_with_ros', 'sim_bridge_main']

_LOG = logging.getLogger(__name__)

_AGENT_PERIOD_S = 0.05
_PUBLISH_PERIOD_S = 0.05
_TIME_BASE = FleetTimeBase(epoch_ns=0)


class _RosPlans:
    """Latest committed plan per robot, from the agent nodes' ``plan`` topics."""

    def __init__(self, node, names: Sequence[str]) -> None:
        from nav_msgs.msg import Path

        from mapl_robotics.ros import qos
        self.plans: dict[str, Trajectory | None] = {name: None for name in names}
        for name in names:
            node.create_subscription(Path, f'/{name}/plan',
                                     lambda message, name=name: self._on_plan(name, message),
                                     qos.PLAN_QOS)

    def _on_plan(self, name: str, message) -> None:
        from mapl_robotics.ros.conversions import path_to_trajectory
        try:
            self.plans[name] = path_to_trajectory(message, time_base=_TIME_BASE)
        except MaplError as error:
            _LOG.error('ignored the plan of %s: %s', name, error)


def _states(sim, previous_yaw: dict[str, float], dt_s: float) -> list[RobotState]:
    states = []
    for robot_id, pose in sim.poses().items():
        last = previous_yaw.get(robot_id, pose.yaw_rad)
        turn = (pose.yaw_rad - last + math.pi) % (2.0 * math.pi) - math.pi
        previous_yaw[robot_id] = pose.yaw_rad
        states.append(RobotState(name=robot_id, x_m=pose.x_m, y_m=pose.y_m, yaw_rad=pose.yaw_rad,
                                 speed_mps=pose.speed_mps, yaw_rate_radps=turn / dt_s))
    return states


def run_ros_simulation(*, world: World, robots, moving_obstacles=(), fleet=None,
                       step_s: float = 1.0 / 60.0, duration_s: float = math.inf,
                       real_time_factor: float = 1.0, args: Sequence[str] | None = None,
                       stop_event: threading.Event | None = None) -> float:
    """Simulate until Ctrl-C, SIGTERM, ``stop_event`` or ``duration_s`` of simulation time.

    :param robots: :class:`~mapl_robotics.sim.engine.RobotSetup` per robot.
    :param fleet: an in-process fleet (whole-fleet mode) whose agents plan; ``None`` makes
        the robots follow the plans that agent nodes publish (world-only mode).
    :returns: the simulation time reached, in seconds.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from mapl_robotics.sim.clock import RealTimePacer
    from mapl_robotics.sim.engine import FleetSimulation

    stop_event = stop_event or threading.Event()
    context = rclpy.Context()
    rclpy.init(args=list(args) if args is not None else None, context=context)
    node = rclpy.create_node('sim_bridge', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    sim = FleetSimulation(world, robots, moving_obstacles=moving_obstacles, step_s=step_s,
                          time_limit_s=duration_s if math.isfinite(duration_s) else 1.0e9)
    names = [robot.robot_id for robot in robots]

    def on_goal(name: str, goal) -> None:
        fleet.agents[name].set_goal((goal.x_m, goal.y_m))

    bridge = SimBridge(node, robots={robot.robot_id: robot.radius_m for robot in robots},
                       world=world, time_base=_TIME_BASE,
                       on_goal=on_goal if fleet is not None else None)
    ros_plans = None if fleet is not None else _RosPlans(node, names)
    agent_every = max(1, round(_AGENT_PERIOD_S / step_s))
    publish_every = max(1, round(_PUBLISH_PERIOD_S / step_s))
    pacer = RealTimePacer(rate=real_time_factor)
    previous_yaw: dict[str, float] = {}
    _LOG.info('simulating %d robots on %r (%s mode)', len(names), world.name,
              'whole fleet' if fleet is not None else 'world only')
    try:
        if fleet is not None:
            fleet.start()
        pacer.start(sim.now_s)
        while context.ok() and not stop_event.is_set() and not sim.timed_out:
            steps = sim.clock.steps
            if steps % agent_every == 0:
                if fleet is not None:
                    fleet.advance(sim.now_s)
                    sim.set_plans(fleet.step(sim.now_s))
                else:
                    sim.set_plans(ros_plans.plans)
            sim.step()
            if steps % publish_every == 0:
                bridge.publish(sim.now_s, _states(sim, previous_yaw, publish_every * step_s))
                executor.spin_once(timeout_sec=0.0)
            pacer.wait_for(sim.now_s)
    except KeyboardInterrupt:
        pass
    finally:
        reached_s = sim.now_s
        if fleet is not None:
            fleet.stop_agents()
            fleet.close()
        sim.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        _LOG.info('simulation stopped at t=%.2f s (largest lag behind real time %.3f s)',
                  reached_s, pacer.max_lag_s)
    return reached_s


def _robot_setups(robots_argument: str, world: World, spec) -> list:
    from mapl_robotics.ros.launch_description import parse_robots
    from mapl_robotics.sim.engine import RobotSetup
    specs = {robot.id: robot for robot in spec.robots} if spec is not None else {}
    setups = []
    for start in parse_robots(robots_argument):
        if not start.has_pose:
            raise MaplError(f'robot {start.name} needs a start pose in --robots, for example '
                            f'"{start.name}={{x: 0.0, y: 0.0, yaw: 0.0}}"')
        world.require_inside((start.x_m, start.y_m), what=f'start of {start.name}')
        robot = specs.get(start.name)
        setups.append(RobotSetup(
            robot_id=start.name, radius_m=robot.radius_m if robot else 0.2,
            max_speed_mps=robot.max_speed_mps if robot else 0.5,
            max_accel_mps2=robot.max_accel_mps2 if robot else 1.0,
            start_xy_m=(start.x_m, start.y_m), goal_xy_m=(start.x_m, start.y_m),
            start_yaw_rad=start.yaw_rad,
            max_yaw_rate_radps=robot.max_yaw_rate_radps if robot else None))
    return setups


def sim_bridge_main(argv: Sequence[str] | None = None) -> int:
    """World-only simulator for a ROS fleet: ``sim_bridge --map M --robots R [--spec S]``."""
    from mapl_robotics.ros.world_loading import load_node_world, load_optional_spec
    arguments = list(sys.argv[1:] if argv is None else argv)
    ros_arguments: list[str] = []
    if '--ros-args' in arguments:
        index = arguments.index('--ros-args')
        arguments, ros_arguments = arguments[:index], arguments[index:]
    parser = argparse.ArgumentParser(prog='sim_bridge', description=sim_bridge_main.__doc__)
    parser.add_argument('--map', default='', help='Map file; default: the spec\'s map.')
    parser.add_argument('--robots', required=True,
                        help='Names with start poses: "a={x: 0.0, y: 1.0, yaw: 0.0}; b=...".')
    parser.add_argument('--spec', default='', help='MAPL fleet spec (robot limits, moving '
                                                   'obstacles).')
    parser.add_argument('--duration-s', type=float, default=math.inf,
                        help='Stop after this much simulation time; default: run until '
                             'Ctrl-C.')
    options = parser.parse_args(arguments)
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        spec = load_optional_spec(options.spec)
        world = load_node_world(options.map, cell_size_m=1.0, spec=spec)
        robots = _robot_setups(options.robots, world, spec)
        obstacles = spec.moving_obstacle_models() if spec is not None else ()
    except MaplError as error:
        sys.stderr.write(f'error: {error}\n')
        return 2
    run_ros_simulation(world=world, robots=robots, moving_obstacles=obstacles,
                       duration_s=options.duration_s, args=['sim_bridge', *ros_arguments])
    return 0


def run_scenario_with_ros(scenario, *, duration_s: float = math.inf) -> float:
    """Run a scenario's whole fleet in this process with the ROS bridge (``mapl sim --ros``)."""
    from mapl_robotics.sim.inprocess import InProcessFleet
    fleet = InProcessFleet(scenario)
    limit_s = min(duration_s, scenario.time_limit_s) if math.isfinite(duration_s) else \
        math.inf
    return run_ros_simulation(world=scenario.world, robots=scenario.robots,
                              moving_obstacles=scenario.moving_obstacles, fleet=fleet,
                              step_s=scenario.step_s, duration_s=limit_s)

