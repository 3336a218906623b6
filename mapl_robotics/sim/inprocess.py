"""In-process fleet: every agent in this process, stepped in lockstep with the simulation.

Each agent's :meth:`~mapl_robotics.coordination.agent.RobotAgent.step` runs at the agent
period, and the runner waits for the agent's worker job (a ledger request or a planner call) to
finish before it advances fleet time. Planning therefore costs no fleet time, and with the same
seed a run repeats exactly: same plans, same commits, same metrics. The ledger is the
replicated state machine applied in this process (:class:`~mapl_robotics.sim.agents.
InProcessLedger`); there is no mesh, so mesh faults do not apply in this mode.
"""

from __future__ import annotations

import logging
from typing import Mapping

from mapl_robotics.coordination.protocol import generate_key_pair
from mapl_robotics.errors import ScenarioError
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.sim.agents import (AgentStats, InProcessLedger, build_agent,
                                      in_process_client, ledger_config_for)
from mapl_robotics.sim.scenario import Scenario

__all__ = ['InProcessFleet']

_LOG = logging.getLogger(__name__)

# Maximum wait for one agent job (a planner call or a ledger request) in lockstep mode.
_JOB_TIMEOUT_S = 120.0


class InProcessFleet:
    """All agents of a scenario in this process, with an in-process ledger."""

    mode = 'in-process'
    max_pacer_lag_s = None  # fleet time is not paced to the wall clock in this mode

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        spec = scenario.spec
        self.ledger = InProcessLedger(ledger_config_for(spec))
        self.stats = {robot.id: AgentStats() for robot in spec.robots}
        self.agents = {}
        self.clients = {}
        for robot in spec.robots:
            private_key, _ = generate_key_pair()
            client = in_process_client(self.ledger, robot.id, stats=self.stats[robot.id],
                                       private_key=private_key)
            self.clients[robot.id] = client
            self.agents[robot.id] = build_agent(spec, robot.id, world=scenario.world,
                                                client=client, stats=self.stats[robot.id])
        self.dead: set[str] = set()
        self.crashed: dict[str, int] = {}  # in-process agents cannot exit on their own
        self.statuses = {robot_id: 'registering' for robot_id in self.agents}
        self.plans: dict[str, Trajectory | None] = {robot_id: None for robot_id in self.agents}

    def start(self) -> None:
        """Register every robot at its start pose before fleet time starts.

        A robot that is on the floor but not registered is invisible to the ledger, so
        another robot could commit a plan through it. Registering the whole fleet first, as
        robots do when they power up, closes that gap; each agent's own registration then
        returns the existing entry.
        """
        for robot in self.scenario.spec.robots:
            result = self.clients[robot.id].register(
                radius_m=robot.radius_m, max_speed_mps=robot.max_speed_mps,
                pose=robot.start, now_s=0.0)
            if not result.committed:
                raise ScenarioError(f'robot {robot.id} could not register at its start '
                                    f'{robot.start}: {result.message}')

    def advance(self, now_s: float) -> None:
        """Nothing to publish: in-process agents receive fleet time in :meth:`step`."""

    def step(self, now_s: float) -> Mapping[str, Trajectory | None]:
        """Step every live agent at ``now_s`` in id order and return the plans to track."""
        for robot_id in sorted(self.agents):
            if robot_id in self.dead:
                continue
            agent = self.agents[robot_id]
            agent.step(now_s)
            if not agent.wait_idle(_JOB_TIMEOUT_S):
                _LOG.error('agent %s: job did not finish within %.0f s', robot_id,
                           _JOB_TIMEOUT_S)
            # A second step hands the finished job's result to the agent at the same time.
            result = agent.step(now_s)
            agent.wait_idle(_JOB_TIMEOUT_S)
            self.statuses[robot_id] = result.status
            self.plans[robot_id] = result.trajectory
        return self.plans

    def kill_agent(self, robot_id: str, now_s: float) -> dict:
        """Stop stepping one agent; its robot finishes its last committed trajectory."""
        self.dead.add(robot_id)
        self.agents[robot_id].close()
        return {'type': 'kill_agent', 'robot': robot_id, 'at_s': round(now_s, 3),
                'effect': 'agent stopped; the robot tracks its last committed plan to its end'}

    def kill_leader(self, now_s: float) -> dict:
        _LOG.warning('kill_leader at t=%.2f s skipped: the in-process ledger has no Raft '
                     'leader; run in multi-process mode to test failover', now_s)
        return {'type': 'kill_leader', 'at_s': round(now_s, 3), 'effect': 'skipped in-process'}

    def partition(self, nodes, duration_s: float, now_s: float) -> dict:
        _LOG.warning('partition at t=%.2f s skipped: in-process mode has no network',
                     now_s)
        return {'type': 'partition', 'at_s': round(now_s, 3), 'nodes': list(nodes),
                'effect': 'skipped in-process'}

    def heal(self, now_s: float) -> dict | None:
        return None

    def replans(self) -> int:
        return sum(agent.replans for agent in self.agents.values())

    def agent_stats(self) -> dict[str, AgentStats]:
        return self.stats

    def mesh_summary(self) -> dict:
        return {'latency_ms': [], 'deadline_misses': 0, 'messages': 0}

    def history(self):
        return self.ledger.history

    def stop_agents(self) -> None:
        """Nothing to stop: in-process agents only run when stepped."""

    def close(self) -> None:
        for robot_id, agent in self.agents.items():
            if robot_id not in self.dead:
                agent.close()
