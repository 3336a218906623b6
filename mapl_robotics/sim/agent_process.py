"""Entry point of one robot's agent process in multi-process simulation.

``python -m mapl_robotics.sim.agent_process -`` reads its JSON config from stdin, loads the
fleet spec, attaches to the simulator's shared clock (fleet time), opens a ledger client to the
Raft cluster and a mesh node, registers the robot, reports ``ready`` to the simulator over the
mesh, and then steps its :class:`~mapl_robotics.coordination.agent.RobotAgent` on the wall
clock until SIGTERM, or until the simulator process that started it is gone. Every change of
the agent's committed plan (new fencing token or status) goes to the simulator as a ``plan``
message, and the simulated robot tracks that plan. ``stats`` messages carry timing samples.
The config contains secret keys, so the simulator passes it through the stdin pipe and never
writes it to disk. A file path in place of ``-`` also works, for runs by hand.

A partition fault arrives as a ``partition`` message naming the ledger client addresses this
process may still reach; :class:`_SwitchableTransport` drops requests to every other node until
a ``heal`` message arrives.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mapl_robotics.coordination.client import ZmqClientTransport
from mapl_robotics.errors import DeliveryFailedError, MaplError
from mapl_robotics.mesh import (FaultConfig, FleetKeyring, KeyPair, MeshConfig, MeshNode,
                                PeerConfig, Priority)
from mapl_robotics.mesh.audit import PLAN_COMMITTED
from mapl_robotics.runtime import freeze_startup_heap
from mapl_robotics.sim.agents import AgentStats, TimedLedgerClient, build_agent
from mapl_robotics.sim.clock import SharedClock
from mapl_robotics.spec import load_spec

__all__ = ['main', 'SIM_NODE_ID']

_LOG = logging.getLogger(__name__)

SIM_NODE_ID = 'sim'
_STATS_PERIOD_S = 1.0
_READY_RETRY_S = 0.5
_PARENT_CHECK_PERIOD_S = 0.2
# After the simulator is gone, the main thread gets this long to close its sockets and exit
# before the process ends without clean-up, for example while it is still preparing its planner.
_ORPHAN_EXIT_TIMEOUT_S = 5.0


class _SwitchableTransport(ZmqClientTransport):
    """ZeroMQ client transport that drops requests to ledger nodes outside ``reachable``."""

    def __init__(self) -> None:
        super().__init__()
        self.reachable: frozenset[str] | None = None

    def send(self, address: str, request_id: bytes, payload: bytes) -> None:
        reachable = self.reachable
        if reachable is not None and address not in reachable:
            return
        super().send(address, request_id, payload)


class _Reporter:
    """Sends plan and stats messages to the simulator and records their delivery."""

    def __init__(self, node: MeshNode, robot_id: str) -> None:
        self.node = node
        self.robot_id = robot_id
        self.latency_ms: list[float] = []
        self.deadline_misses = 0
        self.sent = 0
        self._lock = threading.Lock()
        self.unconfirmed_plan = False

    def _done(self, future, *, plan: bool) -> None:
        try:
            report = future.result()
        except DeliveryFailedError:
            with self._lock:
                self.deadline_misses += 1
                if plan:
                    self.unconfirmed_plan = True
            return
        except MaplError as error:
            _LOG.warning('agent %s: message to the simulator failed: %s', self.robot_id, error)
            return
        with self._lock:
            self.latency_ms.append(report.latency_s * 1000.0)

    def send(self, kind: str, payload: dict, *, priority: Priority) -> None:
        future = self.node.send(SIM_NODE_ID, kind, payload, priority=priority)
        self.sent += 1
        future.add_done_callback(lambda done: self._done(done, plan=kind == 'plan'))

    def take_latencies(self) -> list[float]:
        with self._lock:
            samples, self.latency_ms = self.latency_ms, []
        return samples


def _watch_parent(parent_pid: int, robot_id: str, stop: threading.Event) -> None:
    """Set ``stop`` once ``parent_pid`` is no longer this process's parent.

    A simulator killed with SIGKILL cannot stop its agents, and the kernel then re-parents them,
    so a changed :func:`os.getppid` means that the simulator is gone. The parent id comes from
    the config rather than from :func:`os.getppid` at start, so a simulator that died before
    this thread started is noticed too.
    """
    while os.getppid() == parent_pid:
        if stop.wait(_PARENT_CHECK_PERIOD_S):
            return
    _LOG.warning('agent %s: simulator process %d is gone; stopping', robot_id, parent_pid)
    stop.set()
    time.sleep(_ORPHAN_EXIT_TIMEOUT_S)
    _LOG.error('agent %s did not stop within %.0f s after its simulator exited; exiting '
               'without clean-up', robot_id, _ORPHAN_EXIT_TIMEOUT_S)
    logging.shutdown()
    os._exit(1)


def _plan_message(robot_id: str, step) -> dict:
    return {'robot_id': robot_id, 'status': step.status, 'replans': step.replans,
            'token': step.token.to_list() if step.token is not None else None,
            'trajectory': step.trajectory.to_list() if step.trajectory is not None else None,
            'message': step.message[:300]}


def _audit_commit(node: MeshNode, robot_id: str, step) -> None:
    """Record a newly committed plan (a new fencing token) in the node's audit log."""
    trajectory = step.trajectory
    node.audit.record(PLAN_COMMITTED, robot=robot_id, token=step.token.to_list(),
                      start_s=None if trajectory is None else trajectory.start_time_s,
                      end_s=None if trajectory is None else trajectory.end_time_s)


def run(config: dict) -> int:
    """Run one agent process from its config mapping; return the exit status."""
    robot_id = config['robot_id']
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if config.get('parent_pid') is not None:
        threading.Thread(target=_watch_parent, args=(int(config['parent_pid']), robot_id, stop),
                         name='parent-watch', daemon=True).start()
    spec = load_spec(config['spec_path'])
    world = spec.load_world()
    clock = SharedClock.attach(config['clock_path'])
    stats = AgentStats()
    transport = _SwitchableTransport()
    client = TimedLedgerClient(config['ledger_addresses'], robot_id=robot_id,
                               private_key=bytes.fromhex(config['ledger_private_key']),
                               transport=transport, stats=stats, timeout_s=1.0)
    keyring = FleetKeyring({node: key.encode() for node, key in config['mesh_keys'].items()})
    mesh_config = MeshConfig(
        node_id=robot_id, bind_endpoint=config['mesh_endpoint'],
        peers=tuple(PeerConfig(node_id=node, endpoint=endpoint)
                    for node, endpoint in config['mesh_peers'].items()),
        security='curve', keypair=KeyPair(public_key=config['mesh_public_key'].encode(),
                                          secret_key=config['mesh_secret_key'].encode()),
        keyring=keyring, faults=FaultConfig(drop_p=config['message_loss']),
        fault_seed=int(config['fault_seed']),
        default_deadline_s=float(config['deadline_s']), audit_path=config.get('audit_path'))
    node = MeshNode(mesh_config).start()
    reporter = _Reporter(node, robot_id)

    def on_message(message) -> None:
        if message.kind == 'partition':
            transport.reachable = frozenset(message.payload.get('reachable', []))
            _LOG.warning('agent %s: partitioned, ledger nodes reachable: %s', robot_id,
                         sorted(transport.reachable))
        elif message.kind == 'heal':
            transport.reachable = None
            _LOG.warning('agent %s: partition healed', robot_id)

    node.subscribe(on_message)
    agent = build_agent(spec, robot_id, world=world, client=client, stats=stats)
    try:
        agent.prepare()
        freeze_startup_heap()
        return _serve(config, robot_id, spec, agent, client, clock, reporter, stop)
    finally:
        agent.close()
        node.close()
        client.close()
        clock.close()


def _serve(config, robot_id, spec, agent, client, clock, reporter, stop) -> int:
    robot = spec.robot(robot_id)

    registered = None
    deadline = time.monotonic() + float(config['startup_timeout_s'])
    # Register before fleet time starts, then tell the simulator (retried until it starts).
    while not stop.is_set() and time.monotonic() < deadline:
        if registered is None:
            try:
                registered = client.register(radius_m=robot.radius_m,
                                             max_speed_mps=robot.max_speed_mps,
                                             pose=robot.start, now_s=0.0)
            except MaplError as error:
                _LOG.warning('agent %s: registration failed, retrying: %s', robot_id, error)
                stop.wait(_READY_RETRY_S)
                continue
        if clock() > 0.0:
            break
        reporter.send('ready', {'robot_id': robot_id, 'registered': registered.committed,
                                'message': registered.message}, priority=Priority.PLAN)
        stop.wait(_READY_RETRY_S)

    period_s = float(config['agent_period_s'])
    last_key = None
    next_stats_s = time.monotonic()
    end = time.monotonic() + float(config['max_duration_s'])
    while not stop.is_set() and time.monotonic() < end:
        step = agent.step(clock())
        key = (step.token, step.status)
        if key != last_key or reporter.unconfirmed_plan:
            reporter.unconfirmed_plan = False
            reporter.send('plan', _plan_message(robot_id, step), priority=Priority.PLAN)
            if step.token is not None and (last_key is None or step.token != last_key[0]):
                _audit_commit(reporter.node, robot_id, step)
            last_key = key
        if time.monotonic() >= next_stats_s:
            _send_stats(reporter, agent, agent.stats)
            next_stats_s = time.monotonic() + _STATS_PERIOD_S
        stop.wait(period_s)
    _send_stats(reporter, agent, agent.stats)
    time.sleep(0.2)
    return 0


def _send_stats(reporter: _Reporter, agent, stats: AgentStats) -> None:
    message = stats.to_message()
    # The worker thread may append while this runs, so only the samples sent are removed.
    del stats.planning_ms[:len(message['planning_ms'])]
    del stats.commit_ms[:len(message['commit_ms'])]
    message.update({'robot_id': agent.robot_id, 'replans': agent.replans,
                    'status': agent.status, 'mesh_latency_ms': reporter.take_latencies(),
                    'deadline_misses': reporter.deadline_misses, 'sent': reporter.sent})
    reporter.send('stats', message, priority=Priority.STATE)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m mapl_robotics.sim.agent_process CONFIG.json|-', file=sys.stderr)
        return 2
    if argv[0] == '-':
        config = json.loads(sys.stdin.read())
    else:
        config = json.loads(Path(argv[0]).read_text(encoding='utf-8'))
    logging.basicConfig(level=getattr(logging, config.get('log_level', 'WARNING').upper()),
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    return run(config)


if __name__ == '__main__':
    sys.exit(main())
