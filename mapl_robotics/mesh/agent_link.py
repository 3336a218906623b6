"""Connect a robot agent to the mesh: fleet time, plan announcements, state, emergency stops.

:class:`AgentLink` wraps a :class:`~mapl_robotics.coordination.agent.RobotAgent` and its
robot's :class:`~mapl_robotics.mesh.node.MeshNode`:

* Fleet time comes from the node's clock synchronization. The agent is stepped only while
  the clock error bound is known and at most ``max_clock_error_s``. Until then the link
  reports ``holding`` and the agent proposes nothing. While stepping, the planning clearance
  is the base clearance plus the error bound times the robot's top speed. The reason: a robot
  whose clock is off by ``e`` seconds can be up to ``e * speed`` metres from where its
  committed plan puts it.
* Each newly committed plan (a new fencing token) is announced to every peer on the plan
  lane, and recorded in the audit log; the pose along the committed plan goes out on the
  state lane every ``state_period_s``. Announcements are informational: the ledger remains
  the authority on what is committed.
* :meth:`AgentLink.emergency_stop` sends an emergency stop on the emergency lane, which
  overtakes queued plans and state updates. A received stop holds the agent until
  :meth:`AgentLink.release_emergency_stop` or a release message from the same sender.
* A plan or emergency message that misses its mesh deadline is reported by the node; the
  link then holds for ``miss_hold_s`` (the fallback), and counts the miss.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from mapl_robotics.coordination.agent import AgentStep, RobotAgent
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.mesh.audit import PLAN_COMMITTED
from mapl_robotics.mesh.delivery import DeliveryReport
from mapl_robotics.mesh.metrics import LogThrottle
from mapl_robotics.mesh.node import MeshNode
from mapl_robotics.mesh.schema import Message, Priority

__all__ = ['AgentLink', 'PeerPlan', 'PeerState', 'PLAN_ANNOUNCEMENT', 'STATE_UPDATE',
           'EMERGENCY_STOP', 'EMERGENCY_RELEASE']

_log = logging.getLogger(__name__)

PLAN_ANNOUNCEMENT = 'agent.plan'
STATE_UPDATE = 'agent.state'
EMERGENCY_STOP = 'agent.estop'
EMERGENCY_RELEASE = 'agent.estop.release'


@dataclasses.dataclass(frozen=True)
class PeerPlan:
    """A committed plan that a peer announced, with its fencing token ``(term, index)``."""

    robot_id: str
    trajectory: Trajectory
    token: tuple[int, int]
    received_fleet_s: float


@dataclasses.dataclass(frozen=True)
class PeerState:
    """A peer's last reported pose and agent status, stamped with its fleet time."""

    robot_id: str
    x_m: float
    y_m: float
    yaw_rad: float
    status: str
    fleet_time_s: float


class AgentLink:
    """Drive one agent on fleet time and keep its peers informed over the mesh."""

    def __init__(self, node: MeshNode, agent: RobotAgent, *, max_clock_error_s: float = 0.01,
                 base_clearance_m: float = 0.1, state_period_s: float = 0.05,
                 deadline_s: float | None = None, miss_hold_s: float = 0.5) -> None:
        self.node = node
        self.agent = agent
        self.max_clock_error_s = max_clock_error_s
        self.base_clearance_m = base_clearance_m
        self.state_period_s = state_period_s
        self.deadline_s = deadline_s if deadline_s is not None else node.config.default_deadline_s
        self.miss_hold_s = miss_hold_s
        self.peer_plans: dict[str, PeerPlan] = {}
        self.peer_states: dict[str, PeerState] = {}
        self.deadline_misses = 0
        self.announced = 0
        self._lock = threading.Lock()
        self._estops: dict[str, str] = {}
        self._estop_handlers: list[Callable[[str, str], None]] = []
        self._hold_until_mono_s = float('-inf')
        self._last_token = None
        self._next_state_s = float('-inf')
        self._throttle = LogThrottle(_log)
        node.subscribe(self._on_message)
        node.on_deadline_missed(self._on_deadline_missed)

    # ----------------------------------------------------------------- time and safety

    def fleet_time(self) -> float:
        return self.node.clock.fleet_time()

    def clearance_m(self) -> float | None:
        """Planning clearance widened by the clock error bound, or None if it is unknown."""
        bound_s = self.node.clock.error_bound_s
        if bound_s is None:
            return None
        return self.base_clearance_m + bound_s * self.agent.robot.max_speed_mps

    @property
    def emergency_stopped(self) -> bool:
        with self._lock:
            return bool(self._estops)

    def hold_reason(self) -> str | None:
        """Return why the agent must hold now, or None when it may proceed."""
        with self._lock:
            if self._estops:
                sender, reason = next(iter(self._estops.items()))
                return f'emergency stop from {sender}: {reason}'
        bound_s = self.node.clock.error_bound_s
        if bound_s is None:
            return 'clock offset to the fleet reference is not known yet'
        if bound_s > self.max_clock_error_s:
            return (f'clock error bound {bound_s * 1e3:.1f} ms is above the maximum '
                    f'{self.max_clock_error_s * 1e3:.1f} ms')
        if time.monotonic() < self._hold_until_mono_s:
            return 'a plan or emergency message missed its mesh deadline'
        return None

    # ----------------------------------------------------------------- stepping

    def step(self) -> AgentStep:
        """Step the agent at the current fleet time unless it must hold; send announcements."""
        now_s = self.fleet_time()
        reason = self.hold_reason()
        if reason is not None:
            self._throttle.log(logging.INFO, 'hold', 'agent %s holds: %s', self.agent.robot_id,
                               reason)
            return AgentStep(status='holding', trajectory=self.agent.trajectory,
                             token=self.agent.token, pending_until_s=None,
                             replans=self.agent.replans, message=reason)
        self.agent.settings = dataclasses.replace(self.agent.settings,
                                                  clearance_m=self.clearance_m())
        step = self.agent.step(now_s)
        if step.token is not None and step.token != self._last_token \
                and step.trajectory is not None:
            self._last_token = step.token
            self._announce(step, now_s)
        if step.trajectory is not None and now_s >= self._next_state_s:
            self._next_state_s = now_s + self.state_period_s
            self._send_state(step, now_s)
        return step

    def run(self, *, stop_event: threading.Event | None = None, period_s: float = 0.05,
            max_duration_s: float = 3600.0,
            on_step: Callable[[AgentStep], None] | None = None) -> AgentStep:
        """Step every ``period_s`` until parked, failed, stopped or ``max_duration_s``."""
        stop_event = stop_event or threading.Event()
        started_s = time.monotonic()
        last = self.step()
        while not stop_event.is_set() and time.monotonic() - started_s < max_duration_s:
            last = self.step()
            if on_step is not None:
                on_step(last)
            if last.status in ('parked', 'failed') and not self.agent.busy:
                break
            stop_event.wait(period_s)
        return last

    def _announce(self, step: AgentStep, now_s: float) -> None:
        token = step.token.to_list()
        payload = {'trajectory': step.trajectory.to_list(), 'token': token}
        self.node.broadcast(PLAN_ANNOUNCEMENT, payload, priority=Priority.PLAN,
                            deadline_s=self.deadline_s)
        self.announced += 1
        self.node.audit.record(PLAN_COMMITTED, robot=self.agent.robot_id, token=token,
                               fleet_time_s=round(now_s, 6),
                               start_s=step.trajectory.start_time_s,
                               end_s=step.trajectory.end_time_s)

    def _send_state(self, step: AgentStep, now_s: float) -> None:
        x_m, y_m = (float(value) for value in step.trajectory.position_at(now_s))
        yaw_rad = float(step.trajectory.yaw_at(now_s))
        self.node.broadcast(STATE_UPDATE, {'x_m': x_m, 'y_m': y_m, 'yaw_rad': yaw_rad,
                                           'status': step.status, 'fleet_time_s': now_s},
                            priority=Priority.STATE, deadline_s=self.deadline_s)

    # ----------------------------------------------------------------- emergency stops

    def emergency_stop(self, reason: str) -> dict:
        """Stop this robot and ask every peer to stop; return the delivery futures by peer."""
        with self._lock:
            self._estops[self.node.node_id] = reason
        _log.warning('agent %s: emergency stop: %s', self.agent.robot_id, reason)
        return self.node.broadcast(EMERGENCY_STOP, {'reason': reason},
                                   priority=Priority.EMERGENCY, deadline_s=self.deadline_s)

    def release_emergency_stop(self) -> dict:
        """Lift this robot's own stop and the ones peers sent; tell the peers; return futures."""
        with self._lock:
            self._estops.clear()
        return self.node.broadcast(EMERGENCY_RELEASE, {}, priority=Priority.EMERGENCY,
                                   deadline_s=self.deadline_s)

    def on_emergency_stop(self, handler: Callable[[str, str], None]) -> None:
        """Call ``handler(sender, reason)`` on the mesh I/O thread for each received stop."""
        self._estop_handlers.append(handler)

    # ----------------------------------------------------------------- mesh callbacks

    def _on_message(self, message: Message) -> None:
        payload = message.payload if isinstance(message.payload, dict) else {}
        try:
            if message.kind == PLAN_ANNOUNCEMENT:
                trajectory = Trajectory.from_list(payload['trajectory'])
                token = tuple(int(value) for value in payload['token'])
                previous = self.peer_plans.get(message.sender)
                if previous is None or token > previous.token:
                    self.peer_plans[message.sender] = PeerPlan(
                        robot_id=message.sender, trajectory=trajectory, token=token,
                        received_fleet_s=self.fleet_time())
            elif message.kind == STATE_UPDATE:
                self.peer_states[message.sender] = PeerState(
                    robot_id=message.sender, x_m=float(payload['x_m']),
                    y_m=float(payload['y_m']), yaw_rad=float(payload['yaw_rad']),
                    status=str(payload['status']),
                    fleet_time_s=float(payload['fleet_time_s']))
            elif message.kind == EMERGENCY_STOP:
                reason = str(payload.get('reason', ''))
                with self._lock:
                    self._estops[message.sender] = reason
                _log.warning('agent %s: emergency stop from %s: %s', self.agent.robot_id,
                             message.sender, reason)
                for handler in self._estop_handlers:
                    handler(message.sender, reason)
            elif message.kind == EMERGENCY_RELEASE:
                with self._lock:
                    self._estops.pop(message.sender, None)
        except (KeyError, TypeError, ValueError) as error:
            self._throttle.log(logging.WARNING, 'bad:' + message.kind, 'dropped malformed %s '
                               'from %s: %s', message.kind, message.sender, error)

    def _on_deadline_missed(self, report: DeliveryReport) -> None:
        if report.priority == Priority.STATE:
            return
        self.deadline_misses += 1
        self._hold_until_mono_s = time.monotonic() + self.miss_hold_s
