"""The non-ROS half of an agent node: ledger replica, ledger client and :class:`RobotAgent`.

The node's timer calls :meth:`AgentRuntime.step` with the fleet time; the agent never blocks
there, because planning and ledger requests run on its own worker thread. In
``replica_per_robot`` mode the runtime also hosts this robot's ledger replica (a pysyncobj
node with its client socket), so a fleet of N agent nodes is an N-replica Raft cluster.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from mapl_robotics.coordination.agent import AgentSettings, AgentStep, RobotAgent
from mapl_robotics.coordination.client import LedgerClient
from mapl_robotics.coordination.ledger_node import LedgerNode
from mapl_robotics.coordination.ledger_state import FencingToken, LedgerConfig
from mapl_robotics.coordination.protocol import generate_key_pair
from mapl_robotics.coordination.settings import LedgerSettings, client_address_for
from mapl_robotics.errors import LedgerError, RosBridgeError
from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.planning import PlannerSettings, RobotModel
from mapl_robotics.ros.diagnostics import RobotReport
from mapl_robotics.runtime import private_temp_dir

__all__ = ['AgentRuntime', 'RuntimeSettings', 'TimedLedgerClient']

_LOG = logging.getLogger(__name__)

_LATENCY_WINDOW = 200
_KEY_FILE = 'robot_signing.key'
# Maximum wait at start-up for the ledger to tell whether the robot is already registered.
_STARTUP_READ_S = 5.0


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Everything the runtime needs, read from node parameters (and the fleet spec)."""

    robot_name: str
    robot: RobotModel
    planner: PlannerSettings
    start_pose: tuple[float, float, float]
    seed: int
    clearance_m: float
    ledger_mode: str
    ledger_addresses: tuple[str, ...]
    ledger_index: int
    journal_dir: str
    latency_bound_s: float
    consensus: Any = None

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any], *, robot_name: str,
                        spec=None) -> 'RuntimeSettings':
        """Build settings from the agent node's parameter values."""
        robot = RobotModel(radius_m=values['radius_m'], max_speed_mps=values['max_speed_mps'],
                           max_accel_mps2=values['max_accel_mps2'], drive=values['drive'],
                           max_yaw_rate_radps=values['max_yaw_rate_radps'])
        planner = PlannerSettings(algorithm=values['planner.algorithm'],
                                  step_size_m=values['planner.step_size_m'],
                                  goal_bias=values['planner.goal_bias'],
                                  time_budget_s=values['planner.time_budget_s'])
        addresses = tuple(values['ledger.addresses'])
        if not addresses:
            raise RosBridgeError(
                'parameter ledger.addresses is empty; give the host:port of every ledger '
                "replica, for example ['127.0.0.1:47100']")
        index = int(values['ledger.index'])
        if values['ledger.mode'] == 'replica_per_robot' and index >= len(addresses):
            raise RosBridgeError(
                f'ledger.index={index} is outside ledger.addresses ({len(addresses)} entries); '
                'each robot hosts the replica at its index')
        return cls(robot_name=robot_name, robot=robot, planner=planner,
                   start_pose=(values['start.x_m'], values['start.y_m'],
                               values['start.yaw_rad']),
                   seed=int(values['planner.seed']), clearance_m=values['planner.clearance_m'],
                   ledger_mode=values['ledger.mode'], ledger_addresses=addresses,
                   ledger_index=index, journal_dir=values['ledger.journal_dir'],
                   latency_bound_s=values['mesh.latency_bound_ms'] / 1000.0,
                   consensus=spec.consensus if spec is not None else None)


class TimedLedgerClient(LedgerClient):
    """A ledger client that records the round-trip time of every proposal.

    The times are the commit latency of the robot: from sending a proposal to receiving the
    ledger's decision (commit or rejection) through Raft.

    :param latency_bound_ms: a round trip longer than this counts as a deadline miss.
    """

    def __init__(self, *args, latency_bound_ms: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latency_bound_ms = latency_bound_ms
        self.commit_ms: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)
        self.round_trips = 0
        self.deadline_misses = 0

    def propose(self, trajectory: Trajectory, **kwargs):
        started = time.monotonic()
        try:
            return super().propose(trajectory, **kwargs)
        finally:
            elapsed_ms = 1000.0 * (time.monotonic() - started)
            self.commit_ms.append(elapsed_ms)
            self.round_trips += 1
            if elapsed_ms > self.latency_bound_ms:
                self.deadline_misses += 1


class AgentRuntime:
    """Owner of the robot's ledger replica (if any), its ledger client and its RobotAgent."""

    def __init__(self, settings: RuntimeSettings, *, world: World, moving_obstacles=(),
                 clock_s: Callable[[], float]) -> None:
        self.settings = settings
        self.world = world
        self.moving_obstacles = tuple(moving_obstacles)
        self.clock_s = clock_s
        self.ledger_node: LedgerNode | None = None
        self._temporary_journal: str | None = None
        self.client: TimedLedgerClient | None = None
        self.agent: RobotAgent | None = None
        self.last_step: AgentStep | None = None

    def start(self) -> None:
        """Start the ledger replica (replica_per_robot mode), the client and the agent."""
        settings = self.settings
        if settings.ledger_mode == 'replica_per_robot':
            self.ledger_node = LedgerNode(self._ledger_settings()).start()
        private_key = self._signing_key()
        self.client = TimedLedgerClient(
            [client_address_for(address) for address in settings.ledger_addresses],
            robot_id=settings.robot_name, private_key=private_key,
            latency_bound_ms=1000.0 * settings.latency_bound_s)
        self.agent = RobotAgent(
            settings.robot_name, robot=settings.robot, world=self.world,
            start_pose=settings.start_pose, goal_xy_m=self._initial_goal_xy(),
            client=self.client,
            rng=np.random.default_rng(settings.seed),
            settings=AgentSettings(clearance_m=settings.clearance_m),
            planner_settings=settings.planner, moving_obstacles=self.moving_obstacles)
        self.agent.prepare()

    def _initial_goal_xy(self) -> tuple[float, float]:
        """Return where the robot should be before any goal arrives.

        A new robot stays at its start pose. A restarted agent whose robot the ledger has already
        registered keeps the end of its committed trajectory, so that it does not drive back to the
        start. The quorum read waits for a ledger leader, at most ``_STARTUP_READ_S``.
        """
        start_xy = (float(self.settings.start_pose[0]), float(self.settings.start_pose[1]))
        deadline_s = time.monotonic() + _STARTUP_READ_S
        while time.monotonic() < deadline_s:
            try:
                view = self.client.read(timeout_s=max(0.1, deadline_s - time.monotonic()))
            except LedgerError as error:
                _LOG.debug('startup read of the ledger failed: %s', error)
                continue
            robot = view.robots.get(self.settings.robot_name)
            if robot is None:
                return start_xy
            end_x_m, end_y_m = (float(v) for v in robot.trajectory.end_xy_m)
            _LOG.info('%s is already registered; it keeps its committed plan to (%.3f, %.3f)',
                      self.settings.robot_name, end_x_m, end_y_m)
            return end_x_m, end_y_m
        _LOG.warning('no ledger leader within %.1f s of start-up; %s assumes it is new and '
                     'holds at its start pose', _STARTUP_READ_S, self.settings.robot_name)
        return start_xy

    def _signing_key(self) -> bytes:
        """Return the robot's Ed25519 private key, kept in ``ledger.journal_dir`` if one is set.

        The ledger accepts requests for a robot only with the key it registered with, so a
        respawned agent must sign with the same key. Without a journal folder the key lives
        only as long as the process.
        """
        if not self.settings.journal_dir:
            return generate_key_pair()[0]
        path = Path(self.settings.journal_dir) / _KEY_FILE
        if path.is_file():
            key = path.read_bytes()
            if len(key) != 32:
                raise RosBridgeError(
                    f'signing key file {path} contains {len(key)} bytes, not the 32 of an Ed25519 '
                    'private key; delete it to let the agent create a new one (the robot must '
                    'then be registered anew)')
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = generate_key_pair()[0]
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'wb') as handle:
            handle.write(key)
        _LOG.info('created the signing key of %s in %s', self.settings.robot_name, path)
        return key

    def _ledger_settings(self) -> LedgerSettings:
        settings = self.settings
        own = settings.ledger_addresses[settings.ledger_index]
        peers = [a for i, a in enumerate(settings.ledger_addresses) if i != settings.ledger_index]
        journal_dir = settings.journal_dir
        if not journal_dir:
            self._temporary_journal = str(private_temp_dir(f'ledger-{settings.robot_name}'))
            journal_dir = self._temporary_journal
        Path(journal_dir).mkdir(parents=True, exist_ok=True)
        config = LedgerConfig(clearance_m=settings.clearance_m)
        if settings.consensus is not None:
            return LedgerSettings.from_spec(settings.consensus, self_address=own, peers=peers,
                                            journal_dir=journal_dir,
                                            node_name=settings.robot_name, ledger=config)
        return LedgerSettings(self_address=own, peers=tuple(peers),
                              journal_dir=Path(journal_dir), node_name=settings.robot_name,
                              ledger=config)

    # -- driving --------------------------------------------------------------------------------

    def step(self) -> AgentStep | None:
        """Advance the agent to the current fleet time (never blocks)."""
        if self.agent is None:
            return None
        self.last_step = self.agent.step(self.clock_s())
        return self.last_step

    def set_goal(self, x_m: float, y_m: float) -> None:
        if self.agent is None:
            raise RosBridgeError('the agent has not started yet; send the goal again')
        self.agent.set_goal((x_m, y_m))

    # -- outputs --------------------------------------------------------------------------------

    def committed_plan(self) -> tuple[Trajectory, FencingToken] | None:
        """Return the robot's committed trajectory and its fencing token, if any."""
        if self.agent is None or self.agent.trajectory is None or self.agent.token is None:
            return None
        return self.agent.trajectory, self.agent.token

    def committed_plans(self) -> dict[str, Trajectory]:
        """Return every robot's committed trajectory from the agent's latest quorum read,
        with this robot's own current commit."""
        plans: dict[str, Trajectory] = {}
        view = self.agent.view if self.agent is not None else None
        if view is not None:
            plans.update({robot_id: robot.trajectory for robot_id, robot in view.robots.items()})
        own = self.committed_plan()
        if own is not None:
            plans[self.settings.robot_name] = own[0]
        return plans

    def report(self, *, rejected_messages: int) -> RobotReport:
        """Return the robot's status for diagnostics."""
        leader, term = '', -1
        if self.ledger_node is not None:
            try:
                status = self.ledger_node.status()
                leader, term = status.get('leader') or '', int(status.get('term', -1))
            except Exception as error:  # noqa: BLE001 - pysyncobj may fail while stopping
                _LOG.debug('ledger status unavailable: %s', error)
        commit_ms = list(self.client.commit_ms) if self.client is not None else []
        step = self.last_step
        return RobotReport(
            robot=self.settings.robot_name,
            state=step.status if step is not None else 'starting',
            ledger_leader=leader, ledger_term=term,
            commit_ms_p50=float(np.percentile(commit_ms, 50)) if commit_ms else float('nan'),
            commit_ms_p99=float(np.percentile(commit_ms, 99)) if commit_ms else float('nan'),
            # NOTE: RobotAgent talks to the ledger directly, not over the mesh, so there is no
            # mesh latency to report yet.
            mesh_ms_p99=float('nan'),
            deadline_misses=self.client.deadline_misses if self.client is not None else 0,
            plan_version=self.agent.token.index if self.agent and self.agent.token else -1,
            replans=step.replans if step is not None else 0,
            rejected_messages=rejected_messages,
            message=step.message if step is not None else '')

    def close(self) -> None:
        """Stop the agent, the client and the replica, and remove a temporary journal."""
        if self.agent is not None:
            self.agent.close()
        if self.client is not None:
            self.client.close()
        if self.ledger_node is not None:
            self.ledger_node.stop()
        if self._temporary_journal is not None:
            shutil.rmtree(self._temporary_journal, ignore_errors=True)
