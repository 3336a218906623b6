"""One ledger node: a pysyncobj replica of :class:`LedgerState` plus a client request socket.

The node runs pysyncobj's tick thread (Raft over TCP between nodes) and serves clients on a
ZeroMQ ROUTER socket. Each client request that reads or changes state becomes one Raft log
entry. The reply is sent when the entry is applied on this node, so a read returns the state
at a log position that a quorum agreed on, never a possibly stale local copy.
Requests sent to a follower are forwarded to the leader by pysyncobj.

The transport adds two things to pysyncobj's TCP transport: the durability hooks of
:class:`~mapl_robotics.coordination.durability.DurableRaftState`, and a fault layer that drops
all Raft traffic to and from chosen nodes, used by the partition tests and the benchmark.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Callable

import zmq
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConsumer, replicated
from pysyncobj.monotonic import monotonic as syncobj_monotonic
from pysyncobj.transport import TCPTransport

from mapl_robotics.coordination.durability import DurableRaftState
from mapl_robotics.coordination.ledger_state import (FencingToken, LedgerConfig,
                                                     LedgerSnapshot, LedgerState)
from mapl_robotics.coordination.protocol import (READ_OPS, ROBOT_OPS, decode, encode,
                                                 validate_request)
from mapl_robotics.coordination.settings import LedgerSettings
from mapl_robotics.errors import LedgerError, LedgerRequestError
from mapl_robotics.runtime import freeze_startup_heap

__all__ = ['LedgerNode', 'run_node']

logger = logging.getLogger(__name__)

_FAIL_NAMES = {value: name for name, value in vars(FAIL_REASON).items()
               if not name.startswith('_')}
_STATE_NAMES = {0: 'follower', 1: 'candidate', 2: 'leader'}
_CANDIDATE = 1


class LedgerConsumer(SyncObjConsumer):
    """The replicated part of a node: one replicated method that applies a request."""

    def __init__(self, config: LedgerConfig) -> None:
        super().__init__()
        self.state = LedgerState(config)

    def _entry_token(self) -> FencingToken:
        # pysyncobj applies entry lastApplied + 1 and only then advances lastApplied. The
        # term of that entry is read from the journal, so every replica derives the same token.
        index = self._syncObj.raftLastApplied + 1
        entries = self._syncObj._SyncObj__getEntries(index, 1)
        term = entries[0][2] if entries else -1
        return FencingToken(term=term, index=index)

    @replicated
    def execute(self, request: dict) -> Any:
        return self.state.apply(request, token=self._entry_token())


class FaultSwitch:
    """Set of Raft node ids whose traffic this node drops, in both directions."""

    def __init__(self) -> None:
        self.blocked: frozenset[str] = frozenset()

    def blocks(self, node_id: str) -> bool:
        return node_id in self.blocked


class LedgerTransport(TCPTransport):
    """pysyncobj TCP transport with durability hooks before sends and a fault layer."""

    def send(self, node, message) -> bool:
        if self._syncObj.mapl_faults.blocks(node.id):
            return False
        if not self._syncObj.mapl_durable.before_send(node.id, message):
            return False
        return super().send(node, message)

    def _onMessageReceived(self, node, message) -> None:
        if self._syncObj.mapl_faults.blocks(node.id):
            return
        syncobj = self._syncObj
        split_vote = (syncobj.mapl_split_vote_retry_s is not None
                      and isinstance(message, dict) and message.get('type') == 'request_vote'
                      and message.get('term') == syncobj.raftCurrentTerm
                      and syncobj._SyncObj__raftState == _CANDIDATE)
        super()._onMessageReceived(node, message)
        if split_vote:
            syncobj.retry_split_vote()


class _LedgerSyncObj(SyncObj):
    def __init__(self, settings: LedgerSettings, consumer: LedgerConsumer,
                 durable: DurableRaftState, faults: FaultSwitch, conf) -> None:
        # The transport is built inside SyncObj.__init__ and reads these attributes.
        self.mapl_durable = durable
        self.mapl_faults = faults
        self.mapl_split_vote_retry_s = (None if settings.pysyncobj_defaults
                                        else settings.append_entries_period_s)
        self.mapl_split_votes = 0
        super().__init__(settings.self_address, list(settings.peers), conf,
                         consumers=[consumer], transportClass=LedgerTransport)

    def retry_split_vote(self) -> None:
        """Schedule this candidate's next election soon, staggered by its rank among the nodes.

        A candidate that receives a vote request for its own term has met another candidate,
        so the votes split and the term may end without a leader. Plain Raft then waits for a
        fresh random election timeout (150 to 300 ms here), which nearly doubles the failover. The node with the lowest
        address retries after one heartbeat period, the next after two, and so on, so the
        first retry's vote request reaches the others before they retry. Election timing
        changes only liveness, never Raft's safety.
        """
        addresses = sorted([self.selfNode.id, *(node.id for node in self.otherNodes)])
        rank = addresses.index(self.selfNode.id)
        self.mapl_split_votes += 1
        self._SyncObj__raftElectionDeadline = (syncobj_monotonic()
                                               + self.mapl_split_vote_retry_s * (1 + rank))


class LedgerNode:
    """A ledger replica with its client socket; use :meth:`start` or :func:`run_node`."""

    def __init__(self, settings: LedgerSettings, *, context: zmq.Context | None = None) -> None:
        self.settings = settings
        self.name = settings.node_name or settings.self_address
        self.durable = DurableRaftState(settings.journal_dir, self_id=settings.self_address)
        self.durable.reconcile_meta()
        self.faults = FaultSwitch()
        self.consumer = LedgerConsumer(settings.ledger)
        self._context = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._reply_address = f'inproc://ledger-replies-{id(self)}'
        self._pull = self._context.socket(zmq.PULL)
        self._pull.bind(self._reply_address)
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, 2 * 1024 * 1024)
        self._router.bind(f'tcp://{settings.client_address}')
        self._push_sockets: list[zmq.Socket] = []
        self._push_lock = threading.Lock()
        conf = settings.to_syncobj_conf(on_state_changed=self._on_state_changed)
        self.syncobj = _LedgerSyncObj(settings, self.consumer, self.durable, self.faults, conf)
        if not settings.pysyncobj_defaults:
            # pysyncobj counts the first election timeout from construction, before its tick
            # thread has connected to anyone. Push that deadline back, so a restarted node hears
            # from the current leader before it may campaign. pysyncobj has no public setting for
            # this; its first tick runs 0.1 s after construction, so this write comes first.
            self.syncobj._SyncObj__raftElectionDeadline = (syncobj_monotonic()
                                                           + settings.startup_grace_s)
        self.syncobj.addOnTickCallback(self.durable.sync_if_changed)
        logger.info('ledger node %s started: raft %s, clients %s, peers %s, journal %s',
                    self.name, settings.self_address, settings.client_address,
                    list(settings.peers), settings.journal_dir)

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> LedgerState:
        """This replica's local state (may lag the leader; never use it to decide motion)."""
        return self.consumer.state

    def _on_state_changed(self, old_state: int, new_state: int) -> None:
        logger.info('ledger node %s: %s -> %s', self.name, _STATE_NAMES.get(old_state),
                    _STATE_NAMES.get(new_state))

    def status(self) -> dict:
        """Return Raft status of this node (leader, term, commit index) as plain values."""
        raw = self.syncobj.getStatus()
        leader = raw.get('leader')
        return {'status': 'ok', 'op': 'status', 'self': self.settings.self_address,
                'name': self.name, 'state': _STATE_NAMES.get(raw['state'], str(raw['state'])),
                'leader': leader.id if leader is not None else None,
                'term': raw['raft_term'], 'commit_idx': raw['commit_idx'],
                'last_applied': raw['last_applied'], 'has_quorum': raw['has_quorum'],
                'partners': sorted(node.id for node in self.syncobj.otherNodes),
                'local_version': self.state.version, 'blocked': sorted(self.faults.blocked),
                'dropped_votes': self.durable.dropped_votes,
                'split_votes': self.syncobj.mapl_split_votes,
                'vote_record': [self.durable.votes.term, self.durable.votes.voted_for],
                'clearance_m': self.state.config.clearance_m}

    # -- replies from the tick thread -----------------------------------------------------------

    def _push_socket(self) -> zmq.Socket:
        socket = getattr(self._local, 'push', None)
        if socket is None:
            socket = self._context.socket(zmq.PUSH)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(self._reply_address)
            self._local.push = socket
            with self._push_lock:
                self._push_sockets.append(socket)
        return socket

    def _reply_later(self, identity: bytes, request_id: bytes) -> Callable:
        def on_result(result: Any, error: int) -> None:
            if error != FAIL_REASON.SUCCESS:
                reason = _FAIL_NAMES.get(error, str(error))
                reply = {'status': 'error', 'reason': 'unavailable',
                         'message': f'ledger node {self.name} could not commit the request '
                                    f'({reason}); retry on another node'}
            elif isinstance(result, LedgerSnapshot):
                reply = result.to_message()
            else:
                reply = result
            try:
                self._push_socket().send_multipart([identity, request_id, encode(reply)])
            except zmq.ZMQError as zmq_error:
                logger.warning('ledger node %s could not queue a reply: %s', self.name,
                               zmq_error)
        return on_result

    # -- request handling -----------------------------------------------------------------------

    def _handle(self, identity: bytes, request_id: bytes, payload: bytes) -> dict | None:
        """Handle one client request; return a reply to send now, or None if it comes later."""
        try:
            request = decode(payload)
        except LedgerRequestError as error:
            return {'status': 'error', 'reason': 'malformed', 'message': str(error)}
        op = request.get('op')
        if op == 'status':
            return self.status()
        if op == 'fault':
            return self._handle_fault(request)
        if op in ('add_node', 'remove_node'):
            return self._handle_membership(identity, request_id, request)
        if op == 'history':
            return self._history_message()
        if op not in ROBOT_OPS and op not in READ_OPS:
            return {'status': 'error', 'reason': 'malformed',
                    'message': f'unknown op {op!r}; expected one of '
                               f'{sorted(ROBOT_OPS | READ_OPS)} or status, fault, history, '
                               'add_node, remove_node'}
        try:
            validate_request(request)
        except LedgerRequestError as error:
            return {'status': 'error', 'reason': 'malformed', 'message': str(error)}
        leader = self.syncobj._getLeader()
        if (leader is not None and leader != self.syncobj.selfNode
                and not self.syncobj.isNodeConnected(leader)):
            # pysyncobj would forward the request to a leader it cannot reach and hold it until
            # the leader changes, so the client would only move on after its attempt timeout.
            return {'status': 'error', 'reason': 'unavailable',
                    'message': f'ledger node {self.name} has no connection to leader '
                               f'{leader.id}; retry on another node'}
        self.consumer.execute(request, callback=self._reply_later(identity, request_id))
        return None

    def _handle_fault(self, request: dict) -> dict:
        if not self.settings.fault_injection:
            return {'status': 'error', 'reason': 'not_authorized',
                    'message': 'fault injection is disabled on this node; start it with '
                               '--fault-injection (tests only)'}
        blocked = request.get('blocked', [])
        if not isinstance(blocked, list) or not all(isinstance(item, str) for item in blocked):
            return {'status': 'error', 'reason': 'malformed',
                    'message': f'fault request needs blocked: [raft addresses], got {blocked!r}'}
        self.faults.blocked = frozenset(blocked)
        logger.warning('ledger node %s now drops Raft traffic with %s', self.name, blocked)
        return {'status': 'ok', 'op': 'fault', 'blocked': sorted(blocked)}

    def _handle_membership(self, identity: bytes, request_id: bytes, request: dict) -> dict | None:
        if not self.settings.admin:
            return {'status': 'error', 'reason': 'not_authorized',
                    'message': 'membership changes are disabled on this node; start it with '
                               '--admin'}
        address = request.get('address')
        if not isinstance(address, str) or ':' not in address:
            return {'status': 'error', 'reason': 'malformed',
                    'message': f'{request["op"]} needs address: host:port, got {address!r}'}
        callback = self._reply_later(identity, request_id)

        def on_result(result: Any, error: int) -> None:
            callback({'status': 'ok' if error == FAIL_REASON.SUCCESS else 'error',
                      'op': request['op'], 'address': address,
                      'reason': _FAIL_NAMES.get(error, str(error)),
                      'message': f'{request["op"]} {address}: {_FAIL_NAMES.get(error)}'},
                     FAIL_REASON.SUCCESS)
        try:
            if request['op'] == 'add_node':
                self.syncobj.addNodeToCluster(address, callback=on_result)
            else:
                self.syncobj.removeNodeFromCluster(address, callback=on_result)
        except Exception as error:  # noqa: BLE001 - pysyncobj raises plain Exception here
            return {'status': 'error', 'reason': 'membership', 'message': str(error)}
        return None

    def _history_message(self) -> dict:
        records = [{'token': record.token.to_list(), 'version': record.version,
                    'robot_id': record.robot_id, 'kind': record.kind,
                    't_from_s': record.t_from_s, 'radius_m': record.radius_m,
                    'trajectory': None if record.trajectory is None
                    else record.trajectory.to_list()}
                   for record in list(self.state.history)]
        return {'status': 'ok', 'op': 'history', 'records': records,
                'last_applied': self.syncobj.raftLastApplied,
                'clearance_m': self.state.config.clearance_m}

    # -- serving --------------------------------------------------------------------------------

    def serve(self, *, stop_event: threading.Event | None = None) -> None:
        """Serve client requests until :meth:`stop` or ``stop_event``."""
        stop_event = stop_event or self._stop
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        bad_requests = 0
        parent_pid = self.settings.parent_pid
        while not (stop_event.is_set() or self._stop.is_set()):
            if parent_pid is not None and os.getppid() != parent_pid:
                logger.warning('ledger node %s: parent process %s is gone; stopping', self.name,
                               parent_pid)
                break
            events = dict(poller.poll(100))
            if self._pull in events:
                for _ in range(1000):
                    try:
                        frames = self._pull.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._router.send_multipart(frames)
            if self._router in events:
                for _ in range(1000):
                    try:
                        frames = self._router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) != 3:
                        bad_requests += 1
                        if bad_requests <= 10 or bad_requests % 1000 == 0:
                            logger.warning('ledger node %s dropped a request with %d frames '
                                           '(%d so far)', self.name, len(frames), bad_requests)
                        continue
                    identity, request_id, payload = frames
                    try:
                        reply = self._handle(identity, request_id, payload)
                    except LedgerError as error:
                        reply = {'status': 'error', 'reason': 'malformed', 'message': str(error)}
                    if reply is not None:
                        self._router.send_multipart([identity, request_id, encode(reply)])

    def start(self) -> 'LedgerNode':
        """Serve clients from a background thread (a replica inside an agent process)."""
        self._thread = threading.Thread(target=self.serve, name=f'ledger-{self.name}',
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop serving, stop pysyncobj and close every socket and file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.syncobj.destroy()
        deadline = time.monotonic() + timeout_s
        while self.syncobj.tick_thread_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._router.close(0)
        self._pull.close(0)
        with self._push_lock:
            for socket in self._push_sockets:
                socket.close(0)
        self.durable.close()
        logger.info('ledger node %s stopped', self.name)


def run_node(settings: LedgerSettings) -> None:
    """Run one ledger node in this process until SIGTERM or SIGINT."""
    stop_event = threading.Event()

    def on_signal(signum, _frame) -> None:
        logger.info('ledger node %s got signal %s; stopping', settings.self_address, signum)
        stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node = LedgerNode(settings)
    freeze_startup_heap()
    try:
        node.serve(stop_event=stop_event)
    finally:
        node.stop()
