"""The per-robot agent loop: plan locally, propose to the ledger, execute only committed plans.

A :class:`RobotAgent` registers its robot, which commits a stationary hold at the start pose.
Then it repeats: read the committed set through the ledger leader, and plan from the robot's
committed position ``commit_lead_s`` ahead against the committed trajectories and the
predicted moving obstacles. It proposes the plan, and on rejection retries with exponential
backoff. The
robot always tracks its committed trajectory and nothing else. When it cannot get a new commit
or loses the ledger, it follows its last commit to its end and stays there. That is exactly
the occupancy every other robot plans around. At its goal it parks.

Turns (see :mod:`mapl_robotics.coordination.priorities`): when planning against the committed
set fails and no other robot holds the turn, the agent claims it. It plans ignoring other
robots, delays that plan until the robots it would run into can have moved aside
(:func:`~mapl_robotics.coordination.refuge.escape_delay_s`), and proposes it. The ledger
rejects it and records it as the robot's wish. While another robot holds the turn, an agent
plans around the holder's wish. If it cannot reach its goal that way and its committed plan
crosses the wish, it moves to a refuge clear of the wished path; otherwise it waits there
without claiming, and plans to its goal again once the holder has passed.

Two ways to drive an agent:

* ``step(now_s)`` from a simulator clock: never blocks; ledger and planning work runs on one
  worker thread. ``AgentStep.pending_until_s`` is the fleet time the simulator must not pass
  before the pending proposal is answered (call :meth:`wait_idle`), because the proposal
  starts at that time.
* :meth:`run` in its own process on the wall clock.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import threading
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from mapl_robotics.coordination.client import CommitResult, LedgerClient, LedgerView
from mapl_robotics.coordination.ledger_state import FencingToken, splice
from mapl_robotics.coordination.refuge import (delayed, escape_delay_s, occupied_ends,
                                               plan_to_refuge)
from mapl_robotics.errors import LedgerError, LedgerUnavailableError, PlanningError
from mapl_robotics.geometry.conflicts import conflicting_ids, find_conflict
from mapl_robotics.geometry.obstacles import MovingObstacle
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.geometry.world import World

__all__ = ['AgentSettings', 'AgentStep', 'RobotAgent', 'AGENT_STATUSES']

logger = logging.getLogger(__name__)

AGENT_STATUSES = ('registering', 'planning', 'executing', 'holding', 'parked', 'failed')


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """Timing and retry limits of the agent loop."""

    commit_lead_s: float = 0.6
    """Delay from proposing a plan to the plan's start. It covers planning, the commit round
    trip and a leader failover, which the benchmark measured below 0.55 s with the default
    Raft timeouts."""
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    max_attempts: int = 500
    """Consecutive rejected proposals or failed planning attempts after which the agent gives
    up and stays at the end of its committed trajectory (status ``failed``). A commit resets
    the count."""
    refresh_period_s: float = 0.5
    """Period of quorum reads while executing, to learn yield requests and missed commits."""
    obstacle_deviation_m: float = 0.3
    """Distance between a moving obstacle's observed and predicted position that triggers a
    replan."""
    goal_tolerance_m: float = 0.05
    ledger_timeout_s: float = 1.0
    clearance_m: float | None = None
    """Clearance used when planning; None uses the ledger's clearance."""
    max_rest_shift_s: float = 5.0
    """Maximum delay of a new plan's start to the time the committed plan comes to rest (see
    :func:`next_rest_time_s`); a plan that does not rest within it is replaced while moving."""
    turn_retry_s: float = 0.5
    """Longest backoff (before jitter) while this robot holds the turn, so that its wish
    stays recent for the robots planning around it."""
    yield_reaction_s: float = 1.0
    """Time after a wish's start that the turn holder assumes a robot asked to yield needs
    before it starts moving aside. It must cover the holder's longest retry interval
    (1.5 * ``turn_retry_s`` with jitter), because the yielding robot plans against the latest
    wish, which starts up to that much earlier than its own plan."""


@dataclasses.dataclass(frozen=True)
class AgentStep:
    """Decision of one agent step: the committed trajectory to track and the status."""

    status: str
    trajectory: Trajectory | None
    token: FencingToken | None
    pending_until_s: float | None
    replans: int
    message: str = ''


@dataclasses.dataclass(frozen=True)
class _JobResult:
    kind: str
    result: CommitResult | None = None
    view: LedgerView | None = None
    error: str = ''
    proposed: Trajectory | None = None


def next_rest_time_s(trajectory: Trajectory, t0: float, *, max_shift_s: float) -> float:
    """Return the first time from ``t0`` on at which ``trajectory`` is at rest.

    A new plan starts from rest. Starting it where the committed plan still moves would ask
    the robot to stop at once, and the robot, bound by its deceleration limit, would
    overshoot the new plan's start. The committed plan rests between two equal samples
    (a turn in place or a wait) and at its end. Returns ``t0`` when the plan is at rest then,
    or when it does not come to rest within ``max_shift_s``.
    """
    times = trajectory.t_s
    if t0 >= times[-1]:
        return t0
    xy = trajectory.xy_m
    first = max(int(np.searchsorted(times, t0, side='right')) - 1, 0)
    for index in range(first, len(times) - 1):
        if times[index] > t0 + max_shift_s:
            return t0
        if xy[index, 0] == xy[index + 1, 0] and xy[index, 1] == xy[index + 1, 1]:
            return max(t0, float(times[index]))
    return float(times[-1]) if times[-1] <= t0 + max_shift_s else t0


def _after_braking(braking, plan: Trajectory) -> Trajectory:
    """Return ``plan`` preceded by the braking samples that end where it starts."""
    if not braking:
        return plan
    return Trajectory.from_samples([*braking[:-1], *plan.to_list()])


def braking_rows(trajectory: Trajectory, t0: float, *, max_decel_mps2: float,
                 horizon_s: float, sample_dt_s: float = 0.1) -> list[list[float]]:
    """Return samples ``[t, x, y, yaw]`` of braking to rest along ``trajectory``'s path.

    The robot moves like ``trajectory`` at ``t0`` and then slows down at ``max_decel_mps2``
    along the same path, so that a new plan can start from rest where the braking ends.
    Returns no rows when the trajectory is at rest at ``t0``. The path must cover the braking
    distance within ``horizon_s`` of ``t0``, which holds when it does not rest in that time.
    """
    speed_mps = float(np.hypot(*trajectory.velocity_at(t0)))
    if speed_mps < 1e-6:
        return []
    duration_s = speed_mps / max_decel_mps2
    probe_s = t0 + np.linspace(0.0, horizon_s, 1001)
    probe_xy = trajectory.position_at(probe_s)
    probe_arc_m = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(probe_xy, axis=0).T))])
    steps = max(1, math.ceil(duration_s / sample_dt_s))
    elapsed_s = np.linspace(0.0, duration_s, steps + 1)
    arc_m = speed_mps * elapsed_s - 0.5 * max_decel_mps2 * elapsed_s ** 2
    x_m = np.interp(arc_m, probe_arc_m, probe_xy[:, 0])
    y_m = np.interp(arc_m, probe_arc_m, probe_xy[:, 1])
    yaw_rad = trajectory.yaw_at(np.interp(arc_m, probe_arc_m, probe_s))
    return [[float(t0 + elapsed), float(x), float(y), float(yaw)]
            for elapsed, x, y, yaw in zip(elapsed_s, x_m, y_m, yaw_rad)]


class RobotAgent:
    """One robot's agent; see the module docstring for the loop and the two drive modes."""

    def __init__(self, robot_id: str, *, robot, world: World,
                 start_pose: Sequence[float], goal_xy_m: Sequence[float],
                 client: LedgerClient, rng: np.random.Generator,
                 settings: AgentSettings | None = None, planner_settings=None,
                 moving_obstacles: Iterable[MovingObstacle] = ()) -> None:
        self.robot_id = robot_id
        self.robot = robot
        self.world = world
        self.start_pose = tuple(float(value) for value in start_pose)
        self.goal_xy_m = np.asarray(goal_xy_m, dtype=float)
        self.client = client
        self.rng = rng
        self.settings = settings or AgentSettings()
        self.planner_settings = planner_settings
        self._obstacles: dict[str, MovingObstacle] = {o.obstacle_id: o for o in moving_obstacles}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f'agent-{robot_id}')
        self._future: concurrent.futures.Future | None = None
        self._pending_until_s: float | None = None
        self._lock = threading.Lock()
        self.status = 'registering'
        self.trajectory: Trajectory | None = None
        self.token: FencingToken | None = None
        self.view: LedgerView | None = None
        self.replans = 0
        self.attempts = 0
        self.rejections = 0
        self._backoff_s = self.settings.backoff_initial_s
        self._next_attempt_s = -math.inf
        self._next_refresh_s = -math.inf
        self._replan_requested = False
        self._now_s = 0.0
        self._message = ''
        self._warned = 0

    # -- inputs ---------------------------------------------------------------------------------

    def set_goal(self, goal_xy_m: Sequence[float]) -> None:
        """Give the robot a new goal; it replans at its next step."""
        self.goal_xy_m = np.asarray(goal_xy_m, dtype=float)
        self.attempts = 0
        self._replan_requested = True
        if self.status in ('parked', 'failed'):
            self.status = 'holding'

    def observe_obstacles(self, obstacles: Iterable[MovingObstacle], *, now_s: float) -> bool:
        """Update moving-obstacle models; return True if one departed from its prediction.

        A departure (observed position farther than ``obstacle_deviation_m`` from where the
        previous model put it at ``now_s``), or a new obstacle, requests a replan.
        """
        departed = False
        with self._lock:
            for obstacle in obstacles:
                previous = self._obstacles.get(obstacle.obstacle_id)
                if previous is None:
                    departed = True
                else:
                    error_m = float(np.linalg.norm(previous.position_at(now_s)
                                                   - obstacle.position_at(now_s)))
                    departed = departed or error_m > self.settings.obstacle_deviation_m
                self._obstacles[obstacle.obstacle_id] = obstacle
        if departed:
            self._replan_requested = True
            self._next_attempt_s = -math.inf
        return departed

    # -- helpers --------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether ledger or planning work is running on the worker thread."""
        return self._future is not None and not self._future.done()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until the worker thread is idle; return False on timeout."""
        future = self._future
        if future is None:
            return True
        try:
            future.exception(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def _at_goal(self, trajectory: Trajectory | None) -> bool:
        return trajectory is not None and float(np.linalg.norm(
            trajectory.end_xy_m - self.goal_xy_m)) <= self.settings.goal_tolerance_m

    def _snapshot(self) -> AgentStep:
        return AgentStep(status=self.status, trajectory=self.trajectory, token=self.token,
                         pending_until_s=self._pending_until_s if self.busy else None,
                         replans=self.replans, message=self._message)

    def _submit(self, job: Callable[[], _JobResult], *, pending_until_s: float | None) -> None:
        self._pending_until_s = pending_until_s
        self._future = self._executor.submit(job)

    # -- the step -------------------------------------------------------------------------------

    def step(self, now_s: float) -> AgentStep:
        """Advance the agent to fleet time ``now_s`` without blocking; see the module doc."""
        self._now_s = float(now_s)
        if self._future is not None and self._future.done():
            future, self._future = self._future, None
            try:
                self._handle(future.result(), now_s)
            except Exception as error:  # noqa: BLE001 - the worker must never kill the agent
                logger.exception('agent %s: worker job failed', self.robot_id)
                self._message = f'worker job failed: {error}'
                self._back_off(now_s)
        if self._future is None:
            self._schedule(now_s)
        if self.trajectory is not None and self.status == 'executing' \
                and now_s >= self.trajectory.end_time_s and not self._at_goal(self.trajectory):
            self.status = 'holding'
        return self._snapshot()

    def _schedule(self, now_s: float) -> None:
        if self.status == 'registering':
            if now_s >= self._next_attempt_s:
                self._submit(lambda: self._job_register(now_s), pending_until_s=None)
            return
        if self.status == 'failed':
            return
        yield_requested = (self.view is not None and self.view.turn is not None
                           and self.robot_id in self.view.turn.must_yield
                           and self.view.turn.holder != self.robot_id)
        needs_plan = (not self._at_goal(self.trajectory) or self._replan_requested
                      or yield_requested)
        if self.status == 'parked' and not (self._replan_requested or yield_requested):
            return
        if needs_plan and now_s >= self._next_attempt_s:
            if self.attempts >= self.settings.max_attempts:
                self.status = 'failed'
                self._message = (f'gave up after {self.attempts} failed attempts in a row; '
                                 'staying at the end of the committed trajectory')
                logger.error('agent %s: %s', self.robot_id, self._message)
                return
            t0 = now_s + self.settings.commit_lead_s
            self._replan_requested = False
            if self.status == 'parked':
                self.status = 'planning'
            self._submit(lambda: self._job_plan_and_propose(now_s, t0, yield_requested),
                         pending_until_s=t0)
            return
        if self._at_goal(self.trajectory) and self.trajectory is not None \
                and now_s >= self.trajectory.end_time_s and self.status != 'parked':
            self._submit(lambda: self._job_park(now_s), pending_until_s=None)
            return
        if now_s >= self._next_refresh_s:
            self._next_refresh_s = now_s + self.settings.refresh_period_s
            self._submit(self._job_read, pending_until_s=None)

    def _back_off(self, now_s: float) -> None:
        jitter = 1.0 + 0.5 * float(self.rng.random())
        backoff_max_s = self.settings.backoff_max_s
        if self.view is not None and self.view.turn is not None \
                and self.view.turn.holder == self.robot_id:
            backoff_max_s = min(backoff_max_s, self.settings.turn_retry_s)
        self._backoff_s = min(self._backoff_s, backoff_max_s)
        self._next_attempt_s = now_s + self._backoff_s * jitter
        self._backoff_s = min(self._backoff_s * 2.0, backoff_max_s)

    def _adopt(self, trajectory: Trajectory, token: FencingToken) -> None:
        self.trajectory = trajectory
        self.token = token

    def _handle(self, outcome: _JobResult, now_s: float) -> None:
        if outcome.view is not None:
            self.view = outcome.view
            own = outcome.view.robots.get(self.robot_id)
            # Fencing: execute only the plan whose token the ledger holds for this robot now.
            if own is not None and own.token != self.token:
                if self.token is not None:
                    logger.warning('agent %s: ledger contains plan %s, not %s; switching to it',
                                   self.robot_id, own.token, self.token)
                self._adopt(own.trajectory, own.token)
        if outcome.kind == 'unavailable':
            self._message = outcome.error
            self._warned += 1
            if self._warned <= 5 or self._warned % 100 == 0:
                logger.warning('agent %s: ledger unavailable, holding to the committed plan: %s',
                               self.robot_id, outcome.error)
            if self.status not in ('registering', 'parked'):
                self.status = 'holding'
            self._back_off(now_s)
            return
        if outcome.kind == 'planning_failed':
            self._message = outcome.error
            self.attempts += 1
            self._back_off(now_s)
            if self.status != 'parked' and self.trajectory is not None:
                moving = self.status == 'executing' and now_s < self.trajectory.end_time_s
                self.status = 'executing' if moving else 'holding'
            return
        if outcome.kind in ('read', 'no_change'):
            return
        result = outcome.result
        if result is None:
            return
        if outcome.kind == 'register':
            if result.committed and result.trajectory is not None:
                self._adopt(result.trajectory, result.token)
                self.status = 'holding'
                self._next_attempt_s = -math.inf
            else:
                self._message = result.message
                self._back_off(now_s)
            return
        if outcome.kind == 'park':
            if result.committed:
                self.status = 'parked'
                self._adopt(result.trajectory, result.token)
            return
        if outcome.kind == 'propose':
            if result.committed and result.trajectory is not None:
                self._adopt(result.trajectory, result.token)
                self.attempts = 0
                self.replans += 1
                self.status = 'executing'
                self._backoff_s = self.settings.backoff_initial_s
                self._next_attempt_s = -math.inf
                self._message = ''
            else:
                self.attempts += 1
                self.rejections += 1
                self._message = result.message
                self._back_off(now_s)

    # -- worker jobs (one at a time, on the worker thread) -------------------------------------

    def _job_register(self, now_s: float) -> _JobResult:
        try:
            result = self.client.register(radius_m=self.robot.radius_m,
                                          max_speed_mps=self.robot.max_speed_mps,
                                          pose=self.start_pose, now_s=now_s,
                                          timeout_s=self.settings.ledger_timeout_s)
        except LedgerUnavailableError as error:
            return _JobResult('unavailable', error=str(error))
        return _JobResult('register', result=result)

    def _job_park(self, now_s: float) -> _JobResult:
        try:
            return _JobResult('park', result=self.client.park(
                now_s=now_s, timeout_s=self.settings.ledger_timeout_s))
        except LedgerUnavailableError as error:
            return _JobResult('unavailable', error=str(error))
        except LedgerError as error:
            return _JobResult('planning_failed', error=str(error))

    def _job_read(self) -> _JobResult:
        try:
            return _JobResult('read', view=self.client.read(
                timeout_s=self.settings.ledger_timeout_s))
        except LedgerUnavailableError as error:
            return _JobResult('unavailable', error=str(error))

    def _plan(self, start_xy, t0: float, committed, clearance_m: float, *,
              goal_xy_m=None) -> Trajectory:
        from mapl_robotics.planning import plan_trajectory
        with self._lock:
            obstacles = list(self._obstacles.values())
        yaw = float(self.trajectory.yaw_at(t0)) if self.trajectory is not None else None
        goal_xy_m = self.goal_xy_m if goal_xy_m is None else goal_xy_m
        return plan_trajectory(self.world, self.robot, start_xy, goal_xy_m, t_start_s=t0,
                               rng=self.rng, settings=self.planner_settings,
                               moving_obstacles=obstacles, committed=committed,
                               clearance_m=clearance_m, start_yaw_rad=yaw)

    def _potential_improvement_s(self, plan: Trajectory) -> float:
        """Seconds sooner the robot would arrive with ``plan`` than with its committed plan."""
        if self.trajectory is None or not self._at_goal(self.trajectory):
            return min(3600.0, plan.duration_s + 60.0)
        return max(0.0, self.trajectory.end_time_s - plan.end_time_s)

    def _job_plan_and_propose(self, now_s: float, t0: float, yielding: bool) -> _JobResult:
        try:
            view = self.client.read(timeout_s=self.settings.ledger_timeout_s)
        except LedgerUnavailableError as error:
            return _JobResult('unavailable', error=str(error))
        own = view.robots.get(self.robot_id)
        if own is None:
            return _JobResult('unavailable', view=view,
                              error=f'robot {self.robot_id} is not registered in the ledger')

        committed = view.committed(exclude=self.robot_id)
        turn = view.turn
        if turn is not None and (turn.holder == self.robot_id or turn.holder not in view.robots):
            turn = None
        if turn is not None:
            # Plan around the turn holder's wish, as the ledger will check it.
            committed[f'turn:{turn.holder}'] = (turn.wish, view.robots[turn.holder].radius_m)
        clearance_m = (view.clearance_m if self.settings.clearance_m is None
                       else max(self.settings.clearance_m, view.clearance_m))
        # A new plan starts from rest, so it starts where the committed plan is at rest next,
        # or, when that is far off, after braking along the committed path.
        rest_s = next_rest_time_s(own.trajectory, t0, max_shift_s=self.settings.max_rest_shift_s)
        braking = []
        if rest_s > t0 or own.trajectory.end_time_s <= t0:
            t0 = rest_s
        else:
            braking = braking_rows(own.trajectory, t0, max_decel_mps2=self.robot.max_accel_mps2,
                                   horizon_s=self.settings.max_rest_shift_s)
        if braking:
            t0 = braking[-1][0]
            start_xy = np.asarray(braking[-1][1:3])
        else:
            start_xy = own.trajectory.position_at(t0)

        # Plan with a little more clearance than the ledger checks, so that numerical
        # differences between the planner's and the ledger's checks cannot reject the plan.
        plan_clearance_m = clearance_m + 1e-3
        try:
            plan = self._plan(start_xy, t0, committed, plan_clearance_m)
        except PlanningError as error:
            if turn is not None:
                return self._yield_to(turn, view, own.trajectory, start_xy, t0, committed,
                                      plan_clearance_m, now_s, str(error), braking=braking)
            if own.trajectory.end_time_s > t0:
                # The robot still moves along a committed plan (a move aside, for example).
                # Claiming the turn now would make the others yield to a robot that is not
                # stuck, so it finishes that plan and tries again.
                return _JobResult('planning_failed', view=view,
                                  error=f'keeping the committed plan: {error}')
            try:
                plan = self._claim(view, start_xy, t0, plan_clearance_m)
            except PlanningError as second_error:
                return _JobResult('planning_failed', view=view, error=str(second_error))
        return self._propose(_after_braking(braking, plan), view, now_s, t0)

    def _yield_to(self, turn, view: LedgerView, own_trajectory: Trajectory, start_xy, t0: float,
                  committed, clearance_m: float, now_s: float, reason: str, *,
                  braking=()) -> _JobResult:
        """Move to a refuge clear of the turn holder's wish, or wait if already clear of it.

        A robot that is clear of the wish does not claim the turn against the holder: it
        waits and plans to its goal again once the holder has committed and passed.
        """
        holder_radius_m = view.robots[turn.holder].radius_m
        if find_conflict(own_trajectory, self.robot.radius_m, turn.wish, holder_radius_m,
                         clearance_m=clearance_m, t_start_s=t0) is None:
            return _JobResult('planning_failed', view=view,
                              error=f'waiting for {turn.holder}, which holds the turn: {reason}')
        plan = self._plan_aside(start_xy, t0, committed, clearance_m, wish=turn.wish,
                                holder_radius_m=holder_radius_m)
        if plan is None:
            return _JobResult('planning_failed', view=view,
                              error=f'no refuge clear of the plan of {turn.holder}, which holds '
                                    f'the turn: {reason}')
        return self._propose(_after_braking(braking, plan), view, now_s, t0)

    def _plan_aside(self, start_xy, t0: float, committed, clearance_m: float, *,
                    wish: Trajectory, holder_radius_m: float) -> Trajectory | None:
        """Plan to a refuge whose disc clears the whole wished path, or return None.

        The plan avoids every committed trajectory and the timed wish, so it is one the ledger
        accepts while the holder has the turn.
        """
        robots = {other_id: entry for other_id, entry in committed.items()
                  if not other_id.startswith('turn:')}
        return plan_to_refuge(
            lambda goal_xy: self._plan(start_xy, t0, committed, clearance_m, goal_xy_m=goal_xy),
            self.world.checker(self.robot.radius_m), start_xy, wish_path_xy_m=wish.xy_m,
            required_m=self.robot.radius_m + holder_radius_m + clearance_m,
            occupied=occupied_ends(robots, radius_m=self.robot.radius_m,
                                   clearance_m=clearance_m),
            rng=self.rng, initial_reach_m=4.0 * self.robot.radius_m)

    def _claim(self, view: LedgerView, start_xy, t0: float, clearance_m: float) -> Trajectory:
        """Plan the wish that claims the turn: a plan ignoring the other robots, delayed until
        each robot it runs into can have reached a refuge clear of it.

        The ledger can only ask a robot to change its plan from that robot's next plan start
        on. So the wish treats a blocking robot as gone only once its estimated escape has
        taken it clear. The escape is planned here as if the blocker were this robot with the
        blocker's radius and speed.
        """
        plan = self._plan(start_xy, t0, {}, clearance_m)
        others = view.committed(exclude=self.robot_id)
        blockers = conflicting_ids(plan, self.robot.radius_m, others, clearance_m=clearance_m,
                                   t_start_s=t0)
        delay_s = 0.0
        for blocker_id in blockers:
            blocker_delay_s = self._escape_delay_s(plan, view, blocker_id, clearance_m)
            if blocker_delay_s is not None:
                delay_s = max(delay_s, blocker_delay_s)
        return delayed(plan, delay_s)

    def _escape_delay_s(self, wish: Trajectory, view: LedgerView, blocker_id: str,
                        clearance_m: float) -> float | None:
        blocker = view.robots[blocker_id]
        escape_start_s = wish.start_time_s + self.settings.yield_reaction_s
        start_xy = blocker.trajectory.position_at(escape_start_s)
        # NOTE: the ledger stores only radius and max speed, so the escape estimate uses this
        # robot's acceleration and turning limits for the blocker.
        model = dataclasses.replace(self.robot, radius_m=blocker.radius_m,
                                    max_speed_mps=blocker.max_speed_mps)
        committed = view.committed(exclude=blocker_id)
        robots_elsewhere = {other_id: entry for other_id, entry in committed.items()
                            if other_id != self.robot_id}

        def plan_escape(goal_xy) -> Trajectory:
            from mapl_robotics.planning import plan_trajectory
            return plan_trajectory(self.world, model, start_xy, goal_xy,
                                   t_start_s=escape_start_s, rng=self.rng,
                                   settings=self.planner_settings, committed=committed,
                                   clearance_m=clearance_m,
                                   start_yaw_rad=float(blocker.trajectory.yaw_at(escape_start_s)))

        # Fewer refuge plans than a yielding robot tries (3, not 6), because the claim must
        # reach the ledger before its start time, commit_lead_s after it was begun.
        escape = plan_to_refuge(
            plan_escape, self.world.checker(blocker.radius_m), start_xy,
            wish_path_xy_m=wish.xy_m,
            required_m=blocker.radius_m + self.robot.radius_m + clearance_m,
            occupied=occupied_ends(robots_elsewhere, radius_m=blocker.radius_m,
                                   clearance_m=clearance_m),
            rng=self.rng, initial_reach_m=4.0 * blocker.radius_m, max_plans=3)
        if escape is None:
            logger.debug('agent %s: no refuge found for %s; the wish is not delayed for it',
                         self.robot_id, blocker_id)
            return None
        motion = splice(blocker.trajectory, escape, keep_from_s=-math.inf)
        return escape_delay_s(wish, self.robot.radius_m, motion, blocker.radius_m,
                              clearance_m=clearance_m)

    def _propose(self, plan: Trajectory, view: LedgerView, now_s: float, t0: float) -> _JobResult:
        # A plan may begin with braking before t0, so its own start time is the deadline.
        start_s = min(t0, plan.start_time_s)
        if self._now_s > start_s:
            return _JobResult('planning_failed', view=view,
                              error=f'planning finished after the plan start t_s={start_s}')
        try:
            result = self.client.propose(plan, base_version=view.version, now_s=now_s,
                                         potential_improvement_s=self._potential_improvement_s(
                                             plan),
                                         timeout_s=self.settings.ledger_timeout_s)
        except LedgerUnavailableError as error:
            return self._resolve_unknown_outcome(plan, t0, str(error))
        return _JobResult('propose', result=result, view=view, proposed=plan)

    def _resolve_unknown_outcome(self, plan: Trajectory, t0: float, error: str) -> _JobResult:
        """Find out from the ledger whether a proposal whose reply was lost committed."""
        deadline = time.monotonic() + 5.0 * self.settings.ledger_timeout_s
        while time.monotonic() < deadline:
            try:
                view = self.client.read(timeout_s=self.settings.ledger_timeout_s)
            except LedgerUnavailableError:
                continue
            # The ledger's state wins either way, because _handle adopts the plan it contains.
            return _JobResult('no_change', view=view)
        # NOTE: if the ledger stays unreachable past t0, the robot keeps its previous plan,
        # although the lost proposal may have committed. The ledger then expects the robot on
        # the new plan from t0. A commit_lead_s longer than a failover keeps this window small.
        return _JobResult('unavailable', error=f'{error}; outcome unknown')

    # -- wall-clock mode ------------------------------------------------------------------------

    def run(self, *, clock: Callable[[], float], stop_event: threading.Event | None = None,
            period_s: float = 0.05, max_duration_s: float = 3600.0,
            on_step: Callable[[AgentStep], None] | None = None) -> AgentStep:
        """Drive the agent on ``clock`` (fleet time in seconds) until parked, failed, stopped
        or ``max_duration_s`` passed; return the last step."""
        stop_event = stop_event or threading.Event()
        started = time.monotonic()
        last = self.step(clock())
        while not stop_event.is_set() and time.monotonic() - started < max_duration_s:
            last = self.step(clock())
            if on_step is not None:
                on_step(last)
            if last.status in ('parked', 'failed') and not self.busy:
                break
            stop_event.wait(period_s)
        return last

    def prepare(self) -> None:
        """Build the planner's one-off structures for this robot, before its first plan.

        The first plan otherwise pays for the clearance field of the map, the compiled kernels
        (loaded from numba's cache or compiled) and the spatial indexes. That takes seconds
        when several agent processes start together on few cores. Call it before the robot
        reports ready; later calls cost nothing.
        """
        # Importing the planning package also loads the modules that the first plan would.
        from mapl_robotics.planning import PlannerSettings, prepare_checker

        started_s = time.perf_counter()
        prepare_checker(self.world.checker(self.robot.radius_m))
        margin_m = (self.planner_settings or PlannerSettings()).static_margin_m
        if margin_m > 0.0:
            prepare_checker(self.world.checker(self.robot.radius_m + margin_m))
        logger.info('%s: planner prepared in %.2f s', self.robot_id,
                  time.perf_counter() - started_s)

    def close(self) -> None:
        """Stop the worker thread; the ledger client stays open (its owner closes it)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- checks ---------------------------------------------------------------------------------

    def conflicts_with_obstacles(self, *, now_s: float) -> list[str]:
        """Return ids of moving obstacles whose prediction conflicts with the committed plan."""
        if self.trajectory is None:
            return []
        with self._lock:
            obstacles = list(self._obstacles.values())
        found = []
        end_s = max(self.trajectory.end_time_s, now_s) + 1.0
        for obstacle in obstacles:
            predicted = obstacle.predict(now_s, end_s)
            if find_conflict(self.trajectory, self.robot.radius_m, predicted, obstacle.radius_m,
                             t_start_s=now_s) is not None:
                found.append(obstacle.obstacle_id)
        return found
