"""Run a scenario: agents plan and commit, the simulator moves robots and judges the outcome.

:func:`run_scenario` is the one entry point. It builds the simulation, starts the fleet in the
chosen mode, steps fleet time, injects the scenario's faults at their times, and at the end
writes ``metrics.json`` and ``trajectories.png`` (plus ``run.gif`` on request) into the output
folder.

Modes:

- ``multi-process`` (default): every agent in its own OS process, a Raft ledger cluster of
  node processes, the ZeroMQ mesh between agents and the simulator, and fleet time paced to
  the wall clock (:mod:`mapl_robotics.sim.multiprocess`).
- ``in-process``: every agent in this process, in lockstep with the simulation
  (:mod:`mapl_robotics.sim.inprocess`); deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mapl_robotics.errors import LedgerError, ScenarioError
from mapl_robotics.sim.engine import FleetSimulation
from mapl_robotics.sim.metrics import build_metrics, check_ledger_history, write_metrics
from mapl_robotics.sim.scenario import Scenario
from mapl_robotics.sim.termination import SigtermGuard
from mapl_robotics.spec import (KillAgentFault, KillLeaderFault, MessageLossFault,
                                PartitionFault)

__all__ = ['RunOptions', 'RunResult', 'run_scenario', 'MODES', 'LOG_LEVELS']

_LOG = logging.getLogger(__name__)

MODES = ('multi-process', 'in-process')

LOG_LEVELS = ('debug', 'info', 'warning', 'error')
"""Logging thresholds that agent and ledger node processes accept, lowest first."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run a scenario.

    :param agent_period_s: fleet time between two steps of each agent (in-process mode; in
        multi-process mode agents step on the wall clock at the same period).
    :param linger_s: fleet time to keep simulating after every live robot arrived, so late
        collisions still count.
    :param log_level: logging threshold of the agent and ledger node processes in
        multi-process mode, one of :data:`LOG_LEVELS`. None takes the threshold of this
        process's root logger.
    :param keep_ledger: whether multi-process mode keeps the ledger nodes' Raft journals in
        ``out_dir/ledger``. Without it they go to a folder under :func:`tempfile.gettempdir`
        that is removed when the run ends, also after an error.
    """

    out_dir: Path
    mode: str = 'multi-process'
    progress: bool = True
    gif: bool = False
    agent_period_s: float = 0.05
    linger_s: float = 1.0
    plots: bool = True
    log_level: str | None = None
    keep_ledger: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, 'out_dir', Path(self.out_dir))
        if self.mode not in MODES:
            raise ScenarioError(f'run mode {self.mode!r} is unknown; use one of {MODES}')
        if not self.agent_period_s > 0:
            raise ScenarioError(f'agent_period_s={self.agent_period_s} must be > 0 seconds')
        if self.log_level is not None and self.log_level not in LOG_LEVELS:
            raise ScenarioError(f'log_level={self.log_level!r} is invalid; use one of '
                                f'{LOG_LEVELS} or None')


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Outcome of a run: its metrics and the files written."""

    metrics: dict
    out_dir: Path
    files: tuple[Path, ...]

    @property
    def success(self) -> bool:
        return bool(self.metrics['success'])


def _make_fleet(scenario: Scenario, options: RunOptions):
    if options.mode == 'in-process':
        from mapl_robotics.sim.inprocess import InProcessFleet
        return InProcessFleet(scenario)
    from mapl_robotics.sim.multiprocess import MultiProcessFleet
    return MultiProcessFleet(scenario, out_dir=options.out_dir,
                             agent_period_s=options.agent_period_s,
                             log_level=options.log_level or _root_log_level(),
                             keep_ledger=options.keep_ledger)


def _root_log_level() -> str:
    """Return the name in :data:`LOG_LEVELS` of this process's root logging threshold."""
    threshold = logging.getLogger().getEffectiveLevel()
    for name in LOG_LEVELS:
        if threshold <= getattr(logging, name.upper()):
            return name
    return LOG_LEVELS[-1]


class _FaultSchedule:
    """Fires the scenario's timed faults once fleet time reaches them."""

    def __init__(self, faults) -> None:
        self.pending = sorted((fault for fault in faults if hasattr(fault, 'at_s')),
                              key=lambda fault: fault.at_s)
        self.loss = [fault for fault in faults if isinstance(fault, MessageLossFault)]
        self.heal_at_s: list[float] = []
        self.events: list[dict] = []

    def fire(self, fleet, now_s: float) -> None:
        while self.pending and self.pending[0].at_s <= now_s:
            fault = self.pending.pop(0)
            if isinstance(fault, KillLeaderFault):
                event = fleet.kill_leader(now_s)
            elif isinstance(fault, KillAgentFault):
                event = fleet.kill_agent(fault.robot, now_s)
            elif isinstance(fault, PartitionFault):
                event = fleet.partition(fault.nodes, fault.duration_s, now_s)
                self.heal_at_s.append(now_s + fault.duration_s)
            else:  # pragma: no cover - the spec allows no other timed fault
                continue
            _LOG.warning('fault injected at t=%.2f s: %s', now_s, event)
            self.events.append(event)
        while self.heal_at_s and self.heal_at_s[0] <= now_s:
            self.heal_at_s.pop(0)
            event = fleet.heal(now_s)
            if event:
                self.events.append(event)


def run_scenario(scenario: Scenario, options: RunOptions) -> RunResult:
    """Run ``scenario`` to completion or its time limit and write the outputs."""
    out_dir = Path(options.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ScenarioError(f'cannot create the output folder {str(out_dir)!r}: '
                            f'{error.strerror or error}; pass --out with a folder you can '
                            'write to') from None
    spec = scenario.spec
    (out_dir / 'scenario.json').write_text(
        json.dumps(spec.model_dump(mode='json', by_alias=True), indent=2) + '\n',
        encoding='utf-8')

    schedule = _FaultSchedule(scenario.faults)
    for fault in schedule.loss:
        schedule.events.append({'type': 'message_loss', 'rate': fault.rate,
                                'effect': 'whole run' if options.mode == 'multi-process'
                                else 'skipped in-process: no mesh'})

    wall_started = time.monotonic()
    sim = FleetSimulation(scenario.world, scenario.robots,
                          moving_obstacles=scenario.moving_obstacles, step_s=scenario.step_s,
                          time_limit_s=scenario.time_limit_s)
    fleet = None
    # SIGTERM (kill, timeout, CI limits, docker stop) unwinds through the same clean-up as
    # Ctrl-C, so no agent or ledger node process outlives the run.
    with SigtermGuard() as sigterm:
        try:
            fleet = _make_fleet(scenario, options)
            fleet.start()
            wall_started = time.monotonic()
            outcome = _loop(sim, fleet, schedule, scenario, options)
            wall_time_s = time.monotonic() - wall_started
            fleet.stop_agents()
            history_error = None
            try:
                history = check_ledger_history(fleet.history(),
                                               clearance_m=spec.planner.clearance_m)
            except LedgerError as error:
                # The run still reports what it measured. Without the history the absence of
                # conflicting commits is unproven, so the run fails.
                _LOG.error('cannot read the ledger history at the end of the run: %s', error)
                history, history_error = None, str(error)
            metrics = _metrics(sim, fleet, schedule, scenario, options, history, outcome,
                               wall_time_s)
            if history_error is not None:
                metrics['ledger_history_error'] = history_error
                metrics['success'] = False
        finally:
            with sigterm.deferred():
                if fleet is not None:
                    fleet.close()
                sim.close()
    if fleet.crashed:
        # An agent that died on its own is a failure of the run, not a scripted fault.
        metrics['success'] = False
    files = [write_metrics(metrics, out_dir)]
    if options.plots:
        files.extend(_pictures(sim, scenario, options, metrics))
    return RunResult(metrics=metrics, out_dir=out_dir, files=tuple(files))


def _loop(sim: FleetSimulation, fleet, schedule: _FaultSchedule, scenario: Scenario,
          options: RunOptions) -> dict[str, Any]:
    steps_per_agent_step = max(1, int(round(options.agent_period_s / sim.clock.step_s)))
    all_committed_s = None
    arrived_at_s = None
    bar = tqdm(total=round(scenario.time_limit_s, 1), unit='s', disable=not options.progress,
               desc=f'{scenario.name} ({options.mode})', leave=False,
               bar_format='{desc}: {n:.1f}/{total} s fleet time |{bar}| {postfix}')
    shown_s = 0.0
    try:
        while not sim.timed_out:
            now_s = sim.now_s
            fleet.advance(now_s)
            schedule.fire(fleet, now_s)
            if sim.clock.steps % steps_per_agent_step == 0:
                sim.set_plans(fleet.step(now_s))
                if all_committed_s is None and _all_committed(fleet):
                    all_committed_s = now_s
            sim.step()
            live = [robot_id for robot_id in sim.robot_ids if robot_id not in fleet.dead]
            if all(sim.arrivals.arrived(robot_id) for robot_id in live) \
                    and _dead_robots_at_rest(sim, fleet.dead):
                arrived_at_s = arrived_at_s if arrived_at_s is not None else sim.now_s
                if sim.now_s - arrived_at_s >= options.linger_s:
                    break
            else:
                arrived_at_s = None
            if sim.now_s - shown_s >= 0.5:
                bar.update(round(sim.now_s - shown_s, 1))
                shown_s = sim.now_s
                bar.set_postfix_str(f'arrived {sum(map(sim.arrivals.arrived, live))}/'
                                    f'{len(live)}, collisions {len(sim.monitor.events)}')
    finally:
        bar.close()
    return {'all_committed_s': all_committed_s}


# Speed below which a robot without an agent counts as stopped at the end of its last plan.
_AT_REST_SPEED_MPS = 0.005


def _dead_robots_at_rest(sim: FleetSimulation, dead_robot_ids) -> bool:
    """Return whether every robot whose agent died has finished its last committed plan.

    Such a robot keeps following that plan, so the run must not end while it still moves.
    """
    if not dead_robot_ids:
        return True
    poses = sim.poses()
    for robot_id in dead_robot_ids:
        plan = sim.plans.get(robot_id)
        if plan is not None and sim.now_s < plan.end_time_s:
            return False
        if abs(poses[robot_id].speed_mps) > _AT_REST_SPEED_MPS:
            return False
    return True


def _all_committed(fleet) -> bool:
    return all(status in ('executing', 'parked') for robot_id, status in fleet.statuses.items()
               if robot_id not in fleet.dead)


def _metrics(sim, fleet, schedule, scenario, options, history, outcome, wall_time_s) -> dict:
    stats = fleet.agent_stats()
    mesh = fleet.mesh_summary()
    planning_ms = [value for item in stats.values() for value in item.planning_ms]
    commit_ms = [value for item in stats.values() for value in item.commit_ms]
    bullet_gap = sim.monitor.bullet_robot_robot_gap_m
    return build_metrics(
        scenario=scenario.name, mode=options.mode, seed=scenario.seed,
        robot_ids=sim.robot_ids, dead_robot_ids=fleet.dead,
        arrival_s=dict(sim.arrivals.arrival_s), path_length_m=sim.path_length_m,
        collision_counts=sim.monitor.counts, collision_events=sim.collision_events(),
        min_separation_m=sim.monitor.robot_robot.gap_m,
        min_separation_bullet_m=bullet_gap if math.isfinite(bullet_gap) else math.inf,
        min_obstacle_gap_m=sim.monitor.robot_moving.gap_m,
        planning_ms=planning_ms, commit_ms=commit_ms, mesh_latency_ms=mesh['latency_ms'],
        deadline_misses=mesh['deadline_misses'], replans=fleet.replans(),
        fault_events=schedule.events, history=history, sim_time_s=sim.now_s,
        wall_time_s=wall_time_s, all_committed_s=outcome['all_committed_s'],
        max_tracking_error_m=sim.max_tracking_error_m,
        extra={'closest_approach': _json_safe(sim.closest_approach()),
               'final_pose': _final_poses(sim),
               'max_pacer_lag_s': _json_safe(fleet.max_pacer_lag_s),
               'agent_crashes': dict(fleet.crashed),
               'agent_status': dict(sorted(fleet.statuses.items())),
               'mesh_messages': mesh['messages'],
               'proposals': sum(item.proposals for item in stats.values()),
               'rejections': sum(item.rejections for item in stats.values())})


def _final_poses(sim: FleetSimulation) -> dict:
    """Return each robot's last pose and its distance from the end of its last plan."""
    poses = {}
    for robot_id, pose in sim.poses().items():
        plan = sim.plans[robot_id]
        distance = None
        if plan is not None:
            end = plan.end_xy_m
            distance = round(math.hypot(pose.x_m - float(end[0]), pose.y_m - float(end[1])), 4)
        poses[robot_id] = {'x_m': round(pose.x_m, 4), 'y_m': round(pose.y_m, 4),
                           'yaw_rad': round(pose.yaw_rad, 4),
                           'speed_mps': round(pose.speed_mps, 6),
                           'distance_to_last_plan_end_m': distance}
    return poses


def _json_safe(value):
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _pictures(sim: FleetSimulation, scenario: Scenario, options: RunOptions,
              metrics: dict) -> list:
    from mapl_robotics.sim.plots import animate_run, plot_trajectories
    radii = {setup.robot_id: setup.radius_m for setup in scenario.robots}
    goals = {setup.robot_id: setup.goal_xy_m for setup in scenario.robots}
    obstacle_radii = {obstacle.obstacle_id: obstacle.radius_m
                      for obstacle in scenario.moving_obstacles}
    title = (f"{scenario.name}: {metrics['reached']}/{metrics['robots']} arrived, "
             f"{metrics['collisions']['total']} collisions, min gap "
             f"{metrics['min_separation_m']} m")
    files = [plot_trajectories(options.out_dir / 'trajectories.png', scenario.world,
                               robot_paths=sim.robot_paths(), radii_m=radii, goals_xy_m=goals,
                               obstacle_paths=sim.obstacle_paths(),
                               obstacle_radii_m=obstacle_radii,
                               closest=metrics.get('closest_approach'),
                               collisions=metrics['collision_events'], title=title)]
    if options.gif:
        import numpy as np
        files.append(animate_run(options.out_dir / 'run.gif', scenario.world,
                                 times_s=np.asarray(sim.recorded_times_s),
                                 robot_paths=sim.robot_paths(), radii_m=radii,
                                 obstacle_paths=sim.obstacle_paths(),
                                 obstacle_radii_m=obstacle_radii))
    return files
