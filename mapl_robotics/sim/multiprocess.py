"""Multi-process fleet: a Raft ledger cluster, one OS process per agent, the ZeroMQ mesh.

The simulator process owns fleet time. It publishes the time through a
:class:`~mapl_robotics.sim.clock.SharedClock` file and paces it to the wall clock, so agents
plan against real time and real mesh deadlines. Each agent process
(:mod:`mapl_robotics.sim.agent_process`) talks to the ledger cluster (node processes started by
:class:`~mapl_robotics.coordination.LocalCluster`) and reports its committed plans to the
simulator's mesh node over CurveZMQ. Each agent process reads its config, secret keys
included, from its stdin pipe, so no key is written to disk. Faults act on the real processes:
SIGKILL for the ledger leader or an agent, Raft traffic blocking for partitions, and the mesh
fault layer for message loss.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

from mapl_robotics.coordination import (CommitRecord, FencingToken, LocalCluster,
                                        free_ports, generate_key_pair)
from mapl_robotics.errors import LedgerUnavailableError, MaplError, SimulationError
from mapl_robotics.geometry.trajectory import Trajectory
from mapl_robotics.mesh import (FaultConfig, FleetKeyring, MeshConfig, MeshNode, PeerConfig,
                                generate_keypair)
from mapl_robotics.runtime import private_temp_dir, python_module_command
from mapl_robotics.sim.agent_process import SIM_NODE_ID
from mapl_robotics.sim.agents import AgentStats
from mapl_robotics.sim.clock import RealTimePacer, SharedClock
from mapl_robotics.sim.scenario import Scenario
from mapl_robotics.spec import MessageLossFault

__all__ = ['MultiProcessFleet']

_LOG = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 10.0


class MultiProcessFleet:
    """Agent processes, a ledger cluster and the simulator's mesh node for one run."""

    mode = 'multi-process'

    def __init__(self, scenario: Scenario, *, out_dir: Path, agent_period_s: float = 0.05,
                 log_level: str = 'warning', keep_ledger: bool = False) -> None:
        self.scenario = scenario
        self.spec = scenario.spec
        self.out_dir = Path(out_dir)
        self.agent_period_s = agent_period_s
        self.log_level = log_level
        self.keep_ledger = keep_ledger
        self._temporary_journals: Path | None = None
        self._clock_dir: Path | None = None
        self.robot_ids = list(self.spec.robot_ids)
        self.dead: set[str] = set()
        self.statuses = {robot_id: 'registering' for robot_id in self.robot_ids}
        self.plans: dict[str, Trajectory | None] = {robot_id: None for robot_id in self.robot_ids}
        self._tokens: dict[str, tuple | None] = {robot_id: None for robot_id in self.robot_ids}
        self._stats = {robot_id: AgentStats() for robot_id in self.robot_ids}
        self._replans = {robot_id: 0 for robot_id in self.robot_ids}
        self._mesh_latency_ms: list[float] = []
        self._deadline_misses = {robot_id: 0 for robot_id in self.robot_ids}
        self._ready: set[str] = set()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._messages = 0
        self.processes: dict[str, subprocess.Popen] = {}
        self.cluster: LocalCluster | None = None
        self.clock: SharedClock | None = None
        self.node: MeshNode | None = None
        self.pacer = RealTimePacer(rate=1.0)
        self.partitioned: list[str] = []
        self.crashed: dict[str, int] = {}
        self._next_liveness_check_s = 0.0
        loss = [fault.rate for fault in scenario.faults if isinstance(fault, MessageLossFault)]
        self.message_loss = loss[0] if loss else 0.0

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the ledger cluster, the mesh and every agent; return once all registered."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # A ledger journal left by an earlier run in the same folder would hold robots
        # registered with other keys, so every run starts from empty folders. Older versions
        # left agent configs with secret keys in 'agents' and the shared clock in 'clock.bin'.
        for folder in ('ledger', 'agents', 'logs'):
            shutil.rmtree(self.out_dir / folder, ignore_errors=True)
        (self.out_dir / 'clock.bin').unlink(missing_ok=True)
        consensus = self.spec.consensus
        extra = ['--clearance-m', str(self.spec.planner.clearance_m)]
        # Raft timing the scenario sets explicitly goes to the nodes; the rest keeps the
        # ledger node's own defaults, which are tuned together.
        for field in ('append_entries_period_s', 'election_timeout_min_s',
                      'election_timeout_max_s', 'tick_s'):
            if field in consensus.model_fields_set:
                extra += [f'--{field.replace("_", "-")}', str(getattr(consensus, field))]
        size = max(1, self.spec.ledger_node_count if consensus.mode == 'cluster'
                   else min(self.spec.ledger_node_count, 5))
        if self.keep_ledger:
            journal_root = self.out_dir / 'ledger'
        else:
            # Only this run's ledger nodes read the journals, so close() removes them.
            self._temporary_journals = private_temp_dir('ledger')
            journal_root = self._temporary_journals
        self.cluster = LocalCluster(size, journal_root, extra_args=extra,
                                    log_level=self.log_level, log_dir=self.out_dir / 'logs')
        self.cluster.start_all()
        leader = self._wait_for_leader(timeout_s=60.0)
        _LOG.info('ledger cluster of %d nodes up, leader ledger_%d', size, leader)
        # Only this run's processes read the clock, so it lives in a private temporary folder
        # that close() removes.
        self._clock_dir = private_temp_dir('clock')
        self.clock = SharedClock.create(self._clock_dir / 'clock.bin', t_start_s=0.0)
        self._start_mesh_and_agents()
        self._wait_ready()
        self.pacer.start(0.0)

    def _wait_for_leader(self, *, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, process in self.cluster.processes.items():
                if process.poll() is not None:
                    log = self.cluster.log_path(index)
                    tail = log.read_text(errors='replace').strip().splitlines()[-3:]
                    raise SimulationError(f'ledger node {index} exited with status '
                                          f'{process.returncode} during start-up: '
                                          f'{" / ".join(tail)}')
            leader = self.cluster.leader_index()
            if leader is not None:
                return leader
            time.sleep(0.05)
        raise SimulationError(f'no ledger leader within {timeout_s:.0f} s; see the node logs '
                              f'{self.out_dir / "logs" / "ledger_*.log"}')

    def _start_mesh_and_agents(self) -> None:
        nodes = [SIM_NODE_ID] + self.robot_ids
        ports = free_ports(len(nodes))
        endpoints = {node: f'tcp://127.0.0.1:{port}' for node, port in zip(nodes, ports)}
        keys = {node: generate_keypair() for node in nodes}
        keyring = FleetKeyring({node: pair.public_key for node, pair in keys.items()})
        deadline_s = float(self.spec.system.communication.latency_bound_s)
        seed = self.scenario.seed
        log_dir = self.out_dir / 'logs'
        log_dir.mkdir(parents=True, exist_ok=True)
        self.node = MeshNode(MeshConfig(
            node_id=SIM_NODE_ID, bind_endpoint=endpoints[SIM_NODE_ID],
            peers=tuple(PeerConfig(node_id=robot_id, endpoint=endpoints[robot_id])
                        for robot_id in self.robot_ids),
            security='curve', keypair=keys[SIM_NODE_ID], keyring=keyring,
            faults=FaultConfig(drop_p=self.message_loss), fault_seed=seed,
            default_deadline_s=deadline_s,
            audit_path=str(log_dir / f'audit_{SIM_NODE_ID}.jsonl'))).start()
        # The agent processes start below, so until they register their silence is expected.
        self.node.expect_peer_loss()
        self.node.subscribe(self._inbox.put)
        # The runner wrote the validated spec there; agents load exactly what the simulator
        # runs, also for scenarios built from a MovingAI .scen file.
        spec_path = self.out_dir / 'scenario.json'
        self._compile_planner()
        for index, robot_id in enumerate(self.robot_ids):
            private_key, _ = generate_key_pair()
            config = {
                'robot_id': robot_id, 'spec_path': str(Path(spec_path).resolve()),
                'clock_path': str(self.clock.path),
                'ledger_addresses': list(self.cluster.client_addresses),
                'ledger_private_key': private_key.hex(),
                'mesh_endpoint': endpoints[robot_id],
                'mesh_peers': {SIM_NODE_ID: endpoints[SIM_NODE_ID]},
                'mesh_keys': {node: pair.public_key.decode() for node, pair in keys.items()},
                'mesh_public_key': keys[robot_id].public_key.decode(),
                'mesh_secret_key': keys[robot_id].secret_key.decode(),
                'message_loss': self.message_loss, 'fault_seed': seed * 1000 + index + 1,
                'deadline_s': deadline_s, 'agent_period_s': self.agent_period_s,
                'audit_path': str(log_dir / f'audit_{robot_id}.jsonl'),
                'startup_timeout_s': _STARTUP_TIMEOUT_S,
                'max_duration_s': self.scenario.time_limit_s + _STARTUP_TIMEOUT_S,
                'log_level': self.log_level,
                # The agent stops when this process is gone, even after a SIGKILL.
                'parent_pid': os.getpid(),
            }
            with open(log_dir / f'{robot_id}.log', 'ab') as log:
                process = subprocess.Popen(
                    python_module_command('mapl_robotics.sim.agent_process', '-'),
                    stdout=log, stderr=log, stdin=subprocess.PIPE)
            self.processes[robot_id] = process
            _send_config(process, config)

    def _compile_planner(self) -> None:
        """Compile the planner's kernels in this process, once, before any agent starts.

        The agents then load them from numba's cache. Without a filled cache, as on the first
        run after an install, every agent process would compile the same kernels at the same
        time on few cores.
        """
        from mapl_robotics.planning.rrt import warm_up_compiled

        started_s = time.perf_counter()
        radius_m = min(robot.radius_m for robot in self.spec.robots)
        warm_up_compiled(self.scenario.world.checker(radius_m))
        _LOG.info('planner kernels ready in %.1f s', time.perf_counter() - started_s)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while len(self._ready) < len(self.robot_ids):
            if time.monotonic() > deadline:
                missing = sorted(set(self.robot_ids) - self._ready)
                raise SimulationError(
                    f'agents {missing} did not register within {_STARTUP_TIMEOUT_S:.0f} s; see '
                    f'their logs in {self.out_dir / "logs"}')
            for robot_id, process in self.processes.items():
                if process.poll() is not None:
                    raise SimulationError(
                        f'agent process {robot_id} exited with status {process.returncode} '
                        f'during start-up; see {self.out_dir / "logs" / (robot_id + ".log")}')
            self._drain(timeout_s=0.05)
        self.node.expect_peer_loss(False)
        _LOG.info('all %d agents registered', len(self.robot_ids))

    # -- messages -------------------------------------------------------------------------------

    def _drain(self, timeout_s: float = 0.0) -> None:
        try:
            message = self._inbox.get(timeout=timeout_s) if timeout_s > 0 else \
                self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(message)
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, message) -> None:
        self._messages += 1
        robot_id = message.sender
        if robot_id not in self.statuses or robot_id in self.dead:
            return
        payload = message.payload if isinstance(message.payload, dict) else {}
        try:
            if message.kind == 'ready':
                if payload.get('registered'):
                    self._ready.add(robot_id)
                else:
                    _LOG.warning('agent %s could not register: %s', robot_id,
                                 payload.get('message'))
            elif message.kind == 'plan':
                self._handle_plan(robot_id, payload)
            elif message.kind == 'stats':
                self._handle_stats(robot_id, payload)
        except (MaplError, KeyError, TypeError, ValueError) as error:
            _LOG.warning('dropped malformed %s message from %s: %s', message.kind, robot_id,
                         error)

    def _handle_plan(self, robot_id: str, payload: Mapping) -> None:
        self._ready.add(robot_id)
        self.statuses[robot_id] = str(payload['status'])
        self._replans[robot_id] = int(payload.get('replans', 0))
        token = payload.get('token')
        token_key = tuple(token) if token else None
        previous = self._tokens[robot_id]
        # Messages arrive in order per sender, but a token never goes back: fencing.
        if token_key is not None and (previous is None or token_key >= previous):
            rows = payload.get('trajectory')
            self.plans[robot_id] = Trajectory.from_list(rows) if rows else None
            self._tokens[robot_id] = token_key

    def _handle_stats(self, robot_id: str, payload: Mapping) -> None:
        stats = self._stats[robot_id]
        stats.planning_ms.extend(float(value) for value in payload.get('planning_ms', ()))
        stats.commit_ms.extend(float(value) for value in payload.get('commit_ms', ()))
        stats.proposals = int(payload.get('proposals', stats.proposals))
        stats.rejections = int(payload.get('rejections', stats.rejections))
        self._replans[robot_id] = int(payload.get('replans', self._replans[robot_id]))
        self._mesh_latency_ms.extend(float(value)
                                     for value in payload.get('mesh_latency_ms', ()))
        self._deadline_misses[robot_id] = int(payload.get('deadline_misses', 0))

    # -- stepping -------------------------------------------------------------------------------

    def advance(self, now_s: float) -> None:
        """Publish fleet time ``now_s`` to the agents, no earlier than the wall clock allows."""
        self.pacer.wait_for(now_s)
        self.clock.publish(now_s)

    def step(self, now_s: float) -> Mapping[str, Trajectory | None]:
        """Return the latest committed plan each agent reported."""
        self._drain()
        if now_s >= self._next_liveness_check_s:
            self._next_liveness_check_s = now_s + 1.0
            self._check_agents_alive(now_s)
        return self.plans

    def _check_agents_alive(self, now_s: float) -> None:
        """Record agent processes that exited without being killed by a fault."""
        for robot_id, process in self.processes.items():
            if robot_id in self.dead or robot_id in self.crashed:
                continue
            if process.poll() is not None:
                self.crashed[robot_id] = process.returncode
                _LOG.error('agent %s exited unexpectedly with status %s at t=%.2f s; its robot '
                           'tracks its last plan. See %s', robot_id, process.returncode, now_s,
                           self.out_dir / 'logs' / f'{robot_id}.log')

    # -- faults ---------------------------------------------------------------------------------

    def kill_agent(self, robot_id: str, now_s: float) -> dict:
        process = self.processes[robot_id]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self._drain()
        self.dead.add(robot_id)
        return {'type': 'kill_agent', 'robot': robot_id, 'at_s': round(now_s, 3),
                'pid': process.pid, 'effect': 'agent SIGKILLed; the robot tracks its last '
                                              'committed plan to its end and stops'}

    def kill_leader(self, now_s: float) -> dict:
        leader = self.cluster.leader_index()
        if leader is None:
            return {'type': 'kill_leader', 'at_s': round(now_s, 3), 'effect': 'no leader found'}
        killed_at = time.monotonic()
        self.cluster.kill(leader)
        # The watch thread fills in the new leader and the failover time once they are known,
        # and logs them, because the fault line is logged before that.
        event = {'type': 'kill_leader', 'at_s': round(now_s, 3), 'node': f'ledger_{leader}',
                 'effect': 'leader SIGKILLed', 'new_leader': None, 'failover_s': None}

        def watch() -> None:
            try:
                new_leader = self.cluster.wait_for_leader(timeout_s=30.0, exclude=[leader])
            except (LedgerUnavailableError, MaplError) as error:
                _LOG.error('no new ledger leader after killing ledger_%d: %s', leader, error)
                return
            event['new_leader'] = f'ledger_{new_leader}'
            event['failover_s'] = round(time.monotonic() - killed_at, 3)
            _LOG.warning('ledger_%d is the new leader, %.3f s after ledger_%d was killed',
                         new_leader, event['failover_s'], leader)

        threading.Thread(target=watch, name='failover-watch', daemon=True).start()
        return event

    def partition(self, nodes: Sequence[str], duration_s: float, now_s: float) -> dict:
        names = self.spec.ledger_node_names if self.spec.consensus.mode == 'cluster' else ()
        side = [index for index, name in enumerate(names) if name in nodes]
        rest = [index for index in range(len(self.cluster.raft_addresses)) if index not in side]
        for index in side:
            self.cluster.set_blocked(index, rest)
        for index in rest:
            self.cluster.set_blocked(index, side)
        reachable = [self.cluster.client_addresses[index] for index in side]
        majority = [self.cluster.client_addresses[index] for index in rest]
        for robot_id in self.robot_ids:
            if robot_id in self.dead:
                continue
            allowed = reachable if robot_id in nodes else majority
            self.node.send(robot_id, 'partition', {'reachable': allowed})
        self.partitioned = list(nodes)
        return {'type': 'partition', 'at_s': round(now_s, 3), 'nodes': list(nodes),
                'duration_s': duration_s}

    def heal(self, now_s: float) -> dict:
        for index in range(len(self.cluster.raft_addresses)):
            if self.cluster.is_running(index):
                self.cluster.set_blocked(index, [])
        for robot_id in self.robot_ids:
            if robot_id not in self.dead:
                self.node.send(robot_id, 'heal', {})
        self.partitioned = []
        return {'type': 'heal', 'at_s': round(now_s, 3)}

    # -- results --------------------------------------------------------------------------------

    @property
    def max_pacer_lag_s(self) -> float:
        """Largest delay of fleet time behind the wall clock, in seconds."""
        return self.pacer.max_lag_s

    def replans(self) -> int:
        return sum(self._replans.values())

    def agent_stats(self) -> dict[str, AgentStats]:
        return self._stats

    def mesh_summary(self) -> dict:
        return {'latency_ms': list(self._mesh_latency_ms),
                'deadline_misses': sum(self._deadline_misses.values()),
                'messages': self._messages}

    def history(self) -> list[CommitRecord]:
        """Return the ledger's commit history from the leader (the most complete replica)."""
        leader = self.cluster.wait_for_leader(timeout_s=15.0)
        reply = self.cluster.client.request(
            {'op': 'history'}, address=self.cluster.client_addresses[leader], timeout_s=10.0)
        return [CommitRecord(token=FencingToken.from_list(item['token']),
                             version=int(item['version']), robot_id=item['robot_id'],
                             kind=item['kind'], t_from_s=float(item['t_from_s']),
                             radius_m=float(item['radius_m']),
                             trajectory=None if item['trajectory'] is None
                             else Trajectory.from_list(item['trajectory']))
                for item in reply['records']]

    def stop_agents(self) -> None:
        """SIGTERM every agent, collect final stats, SIGKILL any that does not exit."""
        if self.node is not None:
            # The mesh node stays open for the final stats while the agents stop on purpose.
            self.node.expect_peer_loss()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for robot_id, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _LOG.warning('agent %s ignored SIGTERM; killing it', robot_id)
                process.kill()
                process.wait(timeout=10)
        self._drain(timeout_s=0.2)

    def close(self) -> None:
        """Stop agents, mesh, ledger cluster and clock, and remove temporary journals.

        Safe to call twice, and after a failed :meth:`start`.
        """
        try:
            self.stop_agents()
            if self.node is not None:
                self.node.close()
                self.node = None
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None
            if self.clock is not None:
                self.clock.close()
                self.clock = None
        finally:
            if self._clock_dir is not None:
                shutil.rmtree(self._clock_dir, ignore_errors=True)
                self._clock_dir = None
            if self._temporary_journals is not None:
                shutil.rmtree(self._temporary_journals, ignore_errors=True)
                _LOG.debug('removed the ledger journals in %s', self._temporary_journals)
                self._temporary_journals = None


def _send_config(process: subprocess.Popen, config: Mapping) -> None:
    """Write ``config`` to the agent's stdin and close it, so the agent reads it to the end."""
    try:
        process.stdin.write(json.dumps(config).encode('utf-8'))
        process.stdin.flush()
    except BrokenPipeError:
        # The agent exited before it read its config; _wait_ready reports the exit status.
        _LOG.debug('agent process %s exited before it read its config', process.pid)
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
