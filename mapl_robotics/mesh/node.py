"""MeshNode: the public face of the mesh, one per robot or ledger node.

A node binds one inbound ROUTER socket, connects to its peers, and runs an I/O thread
(:mod:`mapl_robotics.mesh.engine`). Sending is asynchronous and never means "delivered":
:meth:`MeshNode.send` returns a ``concurrent.futures.Future`` that resolves to a
:class:`~mapl_robotics.mesh.delivery.DeliveryReport` once the receiver acknowledged the
message, or fails with :class:`~mapl_robotics.errors.DeliveryFailedError` when the deadline
passes first. Within one receiver incarnation (see :mod:`mapl_robotics.mesh.delivery` for
restarts), received messages reach the application exactly once and in order per sender and
priority lane. They arrive through the handler given to :meth:`MeshNode.subscribe`, which is
called on the I/O thread and must return quickly, or without a handler through
:meth:`MeshNode.receive`.

Example::

    with MeshNode(config) as node:
        future = node.send('robot_2', 'state', {'x_m': 1.0}, priority=Priority.STATE)
        report = future.result(timeout=1.0)
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterable, NoReturn

import numpy as np

from mapl_robotics.errors import MeshConfigError, MeshError, PeerUnknownError
from mapl_robotics.mesh.audit import AuditLog
from mapl_robotics.mesh.clock import ClockSync
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.delivery import DeliveryReport
from mapl_robotics.mesh.engine import Engine, SendCommand
from mapl_robotics.mesh.metrics import MeshMetrics
from mapl_robotics.mesh.schema import MAX_KIND_BYTES, Message, Priority, encode_payload

__all__ = ['MeshNode']

_log = logging.getLogger(__name__)
# The engine logs peer state changes as 'peer %s is %s': INFO when a peer comes alive, WARNING
# when it goes dead. NOTE: the filter below matches that text, and
# tests/mesh/test_mesh_peer_loss.py fails if the engine changes it.
_ENGINE_LOG = logging.getLogger('mapl_robotics.mesh.engine')
_PEER_STATE_FORMAT = 'peer %s is %s'


class _ExpectedPeerLossFilter(logging.Filter):
    """Demote one node's peer state lines to DEBUG while its peers stop on purpose."""

    def __init__(self, node: 'MeshNode') -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        # The engine logs peer state changes on the node's I/O thread, so its id marks them.
        thread = self.node._thread
        if thread is None or record.thread != thread.ident:
            return True
        if not str(record.msg).startswith(_PEER_STATE_FORMAT):
            return True
        # The logger checked the original level before this filter ran, so the demoted line
        # is dropped here unless DEBUG is enabled.
        if not _ENGINE_LOG.isEnabledFor(logging.DEBUG):
            return False
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return True


class MeshNode:
    """A mesh peer with acknowledged, de-duplicated, ordered delivery.

    ``rng`` seeds the retry jitter; the fault layer uses ``config.fault_seed``.
    """

    def __init__(self, config: MeshConfig, *, rng: np.random.Generator | None = None) -> None:
        self.config = config
        self.metrics_registry = MeshMetrics()
        self.clock = ClockSync(clock=config.clock)
        self.clock.set_reference(config.reference_id == config.node_id)
        self.audit = AuditLog(config.audit_path, node_id=config.node_id)
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._handlers: list[Callable[[Message], None]] = []
        self._deadline_handlers: list[Callable[[DeliveryReport], None]] = []
        self._peer_handlers: list[Callable[[str, bool], None]] = []
        self._peer_ids = {peer.node_id for peer in config.peers}
        self._peer_lock = threading.Lock()
        self._engine = Engine(
            config, metrics=self.metrics_registry, clock_sync=self.clock, audit=self.audit,
            rng=rng if rng is not None else np.random.default_rng(config.fault_seed + 1),
            deliver=self._deliver, on_deadline_missed=self._deadline_missed,
            on_peer_state=self._peer_state)
        self._thread: threading.Thread | None = None
        self._start_error: MeshConfigError | None = None
        # The error that stopped the I/O thread after start, if any (it was logged there).
        self.io_error: BaseException | None = None
        self._closed = False
        self._batch = threading.local()
        self._peer_loss_filter: _ExpectedPeerLossFilter | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> 'MeshNode':
        """Bind, connect to the peers and start the I/O thread; return self.

        Raises MeshConfigError when the inbound socket cannot bind, for example to an invalid
        endpoint, a port in use or an address that is not local. The node is then closed.
        """
        if self._thread is not None:
            raise MeshError(f'mesh node {self.config.node_id!r} is already started')
        started = threading.Event()
        self._thread = threading.Thread(target=self._run_engine, args=(started,),
                                        name=f'mesh-{self.config.node_id}', daemon=True)
        self._thread.start()
        started.wait(timeout=10.0)
        if not self._engine.transport.endpoint or self._engine.setup_error is not None:
            self._thread.join(timeout=5.0)
            self._fail_start()
        _log.info('mesh node %s listening on %s (%s)', self.config.node_id, self.endpoint,
                  'CurveZMQ' if self.config.secure else 'no security')
        reference_id = self.config.reference_id
        if reference_id not in (None, self.config.node_id) and reference_id not in self.peers:
            _log.warning('mesh node %s: clock reference %s is not a peer, so the clock error '
                         'bound stays unknown until add_peer adds it', self.config.node_id,
                         reference_id)
        return self

    @property
    def running(self) -> bool:
        """Return whether the I/O thread is alive (False before start, after close or an error)."""
        return self._thread is not None and self._thread.is_alive()

    def _run_engine(self, started: threading.Event) -> None:
        """Run the I/O loop, keeping a bind or connect failure for :meth:`start` to raise."""
        try:
            self._engine.run(started)
        except MeshConfigError as error:
            if self._engine.iterations > 0:
                self.io_error = error
                raise
            # start() raises it on the caller's thread, so no thread traceback is printed.
            self._start_error = error
        except BaseException as error:
            self.io_error = error
            raise

    def _fail_start(self) -> NoReturn:
        if not self._thread.is_alive():
            # The loop never ran, so the engine's shutdown did not release the sockets.
            self._engine.dispose()
            self._closed = True
            self.audit.close()
        error = self._start_error
        if error is None:
            raise MeshError(f'mesh node {self.config.node_id!r} failed to start; see the log')
        if self._engine.transport.endpoint:
            raise MeshConfigError(f'{error}. Give each peer as ID=tcp://HOST:PORT with a '
                                  'reachable host and a port from 1 to 65535') from error
        raise MeshConfigError(f'{error}. Use tcp://HOST:PORT with a local address and a free '
                              'port, for example tcp://127.0.0.1:7001') from error

    @property
    def endpoint(self) -> str:
        """The endpoint the inbound socket is bound to (with the real port if 0 was given)."""
        return self._engine.transport.endpoint

    @property
    def node_id(self) -> str:
        return self.config.node_id

    @property
    def session(self) -> int:
        return self._engine.session

    def close(self, *, timeout_s: float = 5.0) -> None:
        """Stop the I/O thread and close every socket; outstanding sends fail."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            # Never started: release the sockets and the wake pipe the engine created.
            self._engine.dispose()
        else:
            self._engine.running = False
            self._engine.wake()
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                _log.error('mesh node %s I/O thread did not stop within %.1f s',
                           self.config.node_id, timeout_s)
        self.expect_peer_loss(False)
        self.audit.close()

    def __enter__(self) -> 'MeshNode':
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ----------------------------------------------------------------- peers

    def add_peer(self, peer: PeerConfig) -> None:
        """Connect to a new peer (in secure mode its key must be in the keyring)."""
        if self.config.secure:
            self.config.keyring.public_key(peer.node_id)
        with self._peer_lock:
            self._peer_ids.add(peer.node_id)
        self._command(('add_peer', peer))

    def remove_peer(self, peer_id: str) -> None:
        with self._peer_lock:
            self._peer_ids.discard(peer_id)
        self._command(('remove_peer', peer_id))

    @property
    def peers(self) -> list[str]:
        with self._peer_lock:
            return sorted(self._peer_ids)

    def is_alive(self, peer_id: str) -> bool:
        """Return whether ``peer_id`` was heard from within the heartbeat timeout."""
        return self._engine.liveness.is_alive(peer_id)

    def expect_peer_loss(self, expected: bool = True) -> None:
        """Log this node's peer up and down events at DEBUG while ``expected`` is true.

        Call it before stopping the peers on purpose (a fleet shutting down, or peers not
        started yet), so that their missed heartbeats do not log WARNING lines. Metrics and
        :meth:`on_peer_state` handlers still see every event.
        """
        if expected and self._peer_loss_filter is None:
            self._peer_loss_filter = _ExpectedPeerLossFilter(self)
            _ENGINE_LOG.addFilter(self._peer_loss_filter)
        elif not expected and self._peer_loss_filter is not None:
            _ENGINE_LOG.removeFilter(self._peer_loss_filter)
            self._peer_loss_filter = None

    def wait_for_peers(self, peer_ids: Iterable[str] | None = None, *,
                       timeout_s: float = 10.0) -> bool:
        """Poll until every listed peer (default: all) is alive; return False on timeout."""
        wanted = list(self.peers if peer_ids is None else peer_ids)
        deadline_s = time.monotonic() + timeout_s
        while time.monotonic() < deadline_s:
            if all(self.is_alive(peer) for peer in wanted):
                return True
            time.sleep(0.005)
        return False

    # ----------------------------------------------------------------- sending

    def send(self, peer_id: str, kind: str, payload: Any = None, *,
             priority: Priority = Priority.PLAN, deadline_s: float | None = None) -> Future:
        """Queue ``payload`` for ``peer_id``; return a future of its DeliveryReport.

        ``deadline_s`` is the time from now in which the message must be acknowledged
        (default ``config.default_deadline_s``). Raises PeerUnknownError for an unknown peer,
        and MessageFormatError for a payload that msgpack cannot encode or that is too large.
        Delivery failures arrive through the future as DeliveryFailedError.
        """
        if self._closed:
            raise MeshError(f'mesh node {self.config.node_id!r} is closed')
        with self._peer_lock:
            known = peer_id in self._peer_ids
        if not known:
            raise PeerUnknownError(f'peer {peer_id!r} is not configured on mesh node '
                                   f'{self.config.node_id!r}; known peers: {self.peers}')
        command = self._build_command(peer_id, kind, payload, priority, deadline_s)
        self._command(command)
        return command.future

    def broadcast(self, kind: str, payload: Any = None, *, priority: Priority = Priority.PLAN,
                  deadline_s: float | None = None,
                  peer_ids: Iterable[str] | None = None) -> dict[str, Future]:
        """Send the same message to every peer (or to ``peer_ids``); return futures by peer."""
        targets = list(self.peers if peer_ids is None else peer_ids)
        with self._peer_lock:
            for peer_id in targets:
                if peer_id not in self._peer_ids:
                    raise PeerUnknownError(f'peer {peer_id!r} is not configured on mesh '
                                           f'node {self.config.node_id!r}')
        futures = {}
        commands = []
        if targets:
            # Validate, encode and time-stamp once; only the peer and the future differ.
            first = self._build_command(targets[0], kind, payload, priority, deadline_s)
            for peer_id in targets:
                command = SendCommand(
                    peer=peer_id, priority=first.priority, kind=first.kind,
                    payload_bytes=first.payload_bytes, deadline_fleet_s=first.deadline_fleet_s,
                    deadline_s=first.deadline_s, created_s=first.created_s, future=Future())
                commands.append(command)
                futures[peer_id] = command.future
        pending = getattr(self._batch, 'commands', None)
        if pending is not None:
            pending.extend(commands)
        else:
            self._engine.commands.extend(commands)
            self._engine.wake()
        return futures

    def _build_command(self, peer_id: str, kind: str, payload: Any, priority: Priority,
                       deadline_s: float | None, *,
                       payload_bytes: bytes | None = None) -> SendCommand:
        if self._closed:
            raise MeshError(f'mesh node {self.config.node_id!r} is closed')
        if not isinstance(kind, str) or not kind or len(kind.encode()) > MAX_KIND_BYTES:
            raise MeshError(f'message kind must be a non-empty string of at most '
                            f'{MAX_KIND_BYTES} bytes, got {kind!r}')
        try:
            priority = Priority(priority)
        except ValueError:
            raise MeshError(f'priority must be one of {[lane.name for lane in Priority]}, got '
                            f'{priority!r}') from None
        if deadline_s is None:
            deadline_s = self.config.default_deadline_s
        # Receivers reject a packet whose deadline is not finite, so an infinite deadline
        # would be retransmitted for good and hold back every later message of its lane.
        if isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float)) \
                or not math.isfinite(deadline_s) or deadline_s <= 0:
            raise MeshError(f'deadline_s must be a finite number of seconds > 0, got '
                            f'{deadline_s!r}')
        if payload_bytes is None:
            payload_bytes = encode_payload(payload,
                                           max_payload_bytes=self.config.max_payload_bytes)
        deadline_fleet_s = self.clock.fleet_time() + deadline_s
        if not math.isfinite(deadline_fleet_s):
            raise MeshError(f'the fleet clock of node {self.config.node_id!r} reads '
                            f'{deadline_fleet_s - deadline_s!r}; give the node a clock that '
                            'returns finite seconds')
        now_s = time.monotonic()
        return SendCommand(peer=peer_id, priority=priority, kind=kind,
                           payload_bytes=payload_bytes, deadline_fleet_s=deadline_fleet_s,
                           deadline_s=now_s + deadline_s, created_s=now_s, future=Future())

    def _command(self, command) -> None:
        pending = getattr(self._batch, 'commands', None)
        if pending is not None:
            pending.append(command)
            return
        self._engine.commands.append(command)
        self._engine.wake()

    @contextlib.contextmanager
    def batch(self):
        """Hand every send made inside the block to the I/O thread at once, on exit.

        The I/O thread then takes them in one iteration, so priorities decide the order on the
        wire (an emergency stop queued after plans still goes first).
        """
        self._batch.commands = []
        try:
            yield self
        finally:
            commands, self._batch.commands = self._batch.commands, None
            self._engine.commands.extend(commands)
            self._engine.wake()

    # ----------------------------------------------------------------- receiving

    def subscribe(self, handler: Callable[[Message], None]) -> None:
        """Call ``handler(message)`` on the I/O thread for each delivered message.

        With at least one handler, messages no longer go to :meth:`receive`. Messages that
        arrived before the first handler, and that :meth:`receive` has not taken, go to that
        handler first and in order, so none is lost between :meth:`start` and this call. A
        handler that raises is logged and counted; the message still counts as delivered.
        """
        engine_thread = self._thread
        if engine_thread is None or not engine_thread.is_alive() \
                or threading.current_thread() is engine_thread:
            self._attach(handler)
            return
        # On the I/O thread, so that no message is delivered between draining the queue and
        # attaching the handler.
        attached = threading.Event()

        def attach() -> None:
            self._attach(handler)
            attached.set()

        # Straight to the engine, not through an open batch(), which would hold it back.
        self._engine.commands.append(('call', attach))
        self._engine.wake()
        while not attached.wait(0.1):
            if not engine_thread.is_alive():
                if not attached.is_set():
                    self._attach(handler)
                return

    def _attach(self, handler: Callable[[Message], None]) -> None:
        first = not self._handlers
        self._handlers.append(handler)
        if not first:
            return
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                handler(message)
            except Exception:  # noqa: BLE001 - a handler must not stop the hand-over
                self._engine.metrics.count('handler_errors')
                _log.exception('message handler raised on %s from %s', message.kind,
                               message.sender)

    def on_deadline_missed(self, handler: Callable[[DeliveryReport], None]) -> None:
        """Call ``handler(report)`` on the I/O thread whenever a message misses its deadline."""
        self._deadline_handlers.append(handler)

    def on_peer_state(self, handler: Callable[[str, bool], None]) -> None:
        """Call ``handler(peer_id, alive)`` when a peer comes alive or misses heartbeats."""
        self._peer_handlers.append(handler)

    def receive(self, *, timeout_s: float = 0.0) -> Message | None:
        """Return the next delivered message, waiting up to ``timeout_s``; None if none."""
        try:
            return self._inbox.get(timeout=timeout_s) if timeout_s > 0 \
                else self._inbox.get_nowait()
        except queue.Empty:
            return None

    def _deliver(self, message: Message) -> None:
        if not self._handlers:
            self._inbox.put(message)
            return
        for handler in self._handlers:
            handler(message)

    def _deadline_missed(self, report: DeliveryReport) -> None:
        for handler in self._deadline_handlers:
            handler(report)

    def _peer_state(self, peer_id: str, alive: bool) -> None:
        for handler in self._peer_handlers:
            handler(peer_id, alive)

    # ----------------------------------------------------------------- metrics

    def metrics(self) -> dict:
        """Return counters, latency percentiles, breaker states and live peers."""
        snapshot = self.metrics_registry.snapshot()
        snapshot['node_id'] = self.config.node_id
        snapshot['breakers'] = {peer: breaker.state.value
                                for peer, breaker in list(self._engine.breakers.items())}
        snapshot['alive_peers'] = self._engine.liveness.alive_peers()
        snapshot['clock'] = {'offset_s': self.clock.offset_s,
                             'error_bound_s': self.clock.error_bound_s}
        return snapshot
