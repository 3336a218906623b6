"""Robot agents as the simulator runs them: real :class:`RobotAgent` loops, instrumented.

The simulator measures what the agents do without changing how they do it:
:class:`TimedLedgerClient` times every proposal's round trip (``commit_ms``) and
:class:`InstrumentedAgent` times every planner call (``planning_ms``). :func:`build_agent`
creates one robot's agent from a fleet spec, the same way in both runner modes.

In-process mode talks to the ledger's replicated state machine
(:class:`~mapl_robotics.coordination.LedgerState`) through :class:`InProcessLedger`: the same
apply step that every Raft replica runs, executed in this process, one request at a time and in
order, without replication. It makes runs deterministic and fast; multi-process mode uses real
Raft clusters instead.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any

from mapl_robotics.coordination import (FencingToken, LedgerClient, LedgerConfig,
                                        LedgerSnapshot, LedgerState)
from mapl_robotics.coordination.agent import AgentSettings, RobotAgent
from mapl_robotics.coordination.protocol import decode, encode
from mapl_robotics.errors import LedgerRequestError
from mapl_robotics.spec import FleetSpec

__all__ = ['AgentStats', 'TimedLedgerClient', 'InstrumentedAgent', 'InProcessLedger',
           'InProcessTransport', 'build_agent', 'in_process_client', 'ledger_config_for']

IN_PROCESS_ADDRESS = 'in-process'


@dataclasses.dataclass
class AgentStats:
    """Timing samples and counters that one agent collected."""

    planning_ms: list[float] = dataclasses.field(default_factory=list)
    commit_ms: list[float] = dataclasses.field(default_factory=list)
    proposals: int = 0
    rejections: int = 0

    def to_message(self) -> dict:
        return {'planning_ms': list(self.planning_ms), 'commit_ms': list(self.commit_ms),
                'proposals': self.proposals, 'rejections': self.rejections}


class TimedLedgerClient(LedgerClient):
    """A ledger client that records the round-trip time of each proposal."""

    def __init__(self, *args, stats: AgentStats, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats

    def propose(self, trajectory, **kwargs):
        started = time.perf_counter()
        result = super().propose(trajectory, **kwargs)
        self.stats.commit_ms.append((time.perf_counter() - started) * 1000.0)
        self.stats.proposals += 1
        if not result.committed:
            self.stats.rejections += 1
        return result


class InstrumentedAgent(RobotAgent):
    """A :class:`RobotAgent` that records how long each planner call takes."""

    def __init__(self, *args, stats: AgentStats, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats

    # NOTE: wraps RobotAgent._plan, the agent's single call into the planner; if the agent
    # loop is restructured, planning_ms must be re-attached here.
    def _plan(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return super()._plan(*args, **kwargs)
        finally:
            self.stats.planning_ms.append((time.perf_counter() - started) * 1000.0)


def ledger_config_for(spec: FleetSpec) -> LedgerConfig:
    """Return the ledger apply-step parameters that a spec implies."""
    return LedgerConfig(clearance_m=float(spec.planner.clearance_m))


def build_agent(spec: FleetSpec, robot_id: str, *, world, client: LedgerClient,
                stats: AgentStats, settings: AgentSettings | None = None) -> InstrumentedAgent:
    """Create robot ``robot_id``'s agent from the spec, seeded by ``spec.planner_rng``."""
    robot = spec.robot(robot_id)
    return InstrumentedAgent(
        robot.id, robot=robot.to_model(), world=world, start_pose=robot.start,
        goal_xy_m=robot.goal, client=client, rng=spec.planner_rng(robot.id),
        settings=settings or spec.agent_settings(), planner_settings=spec.planner.to_settings(),
        moving_obstacles=spec.planned_obstacles(), stats=stats)


class InProcessLedger:
    """Ledger state machine applied in this process, in request order.

    Every request gets the next log index as its fencing token (term 1), as a single-node
    Raft log would assign it.
    """

    def __init__(self, config: LedgerConfig) -> None:
        self.state = LedgerState(config)
        self._lock = threading.Lock()
        self._index = 0

    def handle(self, payload: bytes) -> dict:
        """Apply one encoded request and return its reply."""
        try:
            request = decode(payload)
        except LedgerRequestError as error:
            return {'status': 'error', 'reason': 'malformed', 'message': str(error)}
        with self._lock:
            self._index += 1
            result: Any = self.state.apply(request, token=FencingToken(term=1,
                                                                        index=self._index))
        if isinstance(result, LedgerSnapshot):
            return result.to_message()
        return result

    @property
    def history(self):
        with self._lock:
            return list(self.state.history)


class InProcessTransport:
    """A :class:`~mapl_robotics.coordination.ClientTransport` into an :class:`InProcessLedger`."""

    def __init__(self, ledger: InProcessLedger) -> None:
        self._ledger = ledger
        self._replies: queue.SimpleQueue = queue.SimpleQueue()

    def send(self, address: str, request_id: bytes, payload: bytes) -> None:
        reply = self._ledger.handle(payload)
        self._replies.put((address, request_id, encode(reply)))

    def receive(self, timeout_s: float) -> tuple[str, bytes, bytes] | None:
        try:
            return self._replies.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing to close: the transport owns no sockets."""


def in_process_client(ledger: InProcessLedger, robot_id: str, *, stats: AgentStats,
                      private_key: bytes) -> TimedLedgerClient:
    """Return a robot's ledger client bound to an in-process ledger."""
    return TimedLedgerClient([IN_PROCESS_ADDRESS], robot_id=robot_id, private_key=private_key,
                             transport=InProcessTransport(ledger), first_request_id=1,
                             stats=stats)
