"""The mesh I/O loop: one thread that owns the sockets and all delivery state.

Application threads never touch a socket. :class:`~mapl_robotics.mesh.node.MeshNode` appends
commands to a deque and wakes the loop through a pipe; the loop then, in each iteration:

1. receives and handles every waiting packet (data, acknowledgements, heartbeats);
2. takes new messages from the command deque and adds due retransmissions;
3. sends data packets lane by lane, emergency first, then plans, then state updates, one
   packet per (peer, lane) holding every queued message of that lane (that is the batching);
4. sends the acknowledgements collected in step 1, one packet per sender;
5. fails messages whose deadline passed, sends due heartbeats, expires silent peers.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import math
import os
import threading
import time
from concurrent.futures import Future
from typing import Callable

import numpy as np
import zmq

from mapl_robotics.errors import DeliveryFailedError, MessageFormatError
from mapl_robotics.mesh import audit as audit_events
from mapl_robotics.mesh.audit import AuditLog
from mapl_robotics.mesh.breaker import BreakerState, CircuitBreaker
from mapl_robotics.mesh.clock import ClockSync
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.delivery import (Acceptance, DeliveryReport, InboundStream,
                                         OutboundStream, Pending, RttEstimator)
from mapl_robotics.mesh.faults import FaultInjector
from mapl_robotics.mesh.heartbeat import PeerLiveness
from mapl_robotics.mesh.metrics import LogThrottle, MeshMetrics
from mapl_robotics.mesh.schema import (MESSAGE_OVERHEAD_BYTES, AckPacket, DataPacket,
                                       HeartbeatPacket, Message, Priority, WireMessage,
                                       decode_packet, decode_payload, encode_packet)
from mapl_robotics.mesh.transport import Transport

__all__ = ['Engine', 'SendCommand']

_log = logging.getLogger(__name__)
_LANES = tuple(Priority)
_LANE_NUMBERS = tuple(int(lane) for lane in Priority)
_MAX_RECEIVE_PER_ITERATION = 512
_PEER_LOG_INTERVAL_S = 1.0
_STALE_SESSION_GRACE_S = 1.0


@dataclasses.dataclass
class SendCommand:
    peer: str
    priority: Priority
    kind: str
    payload_bytes: bytes
    deadline_fleet_s: float
    deadline_s: float
    created_s: float
    future: Future


class Engine:
    """State and loop of one node; every method below runs on the I/O thread only."""

    def __init__(self, config: MeshConfig, *, metrics: MeshMetrics, clock_sync: ClockSync,
                 audit: AuditLog, rng: np.random.Generator,
                 deliver: Callable[[Message], None],
                 on_deadline_missed: Callable[[DeliveryReport], None],
                 on_peer_state: Callable[[str, bool], None]) -> None:
        self.config = config
        self.metrics = metrics
        self.clock_sync = clock_sync
        self.audit = audit
        self._rng = rng
        self._deliver = deliver
        self._on_deadline_missed = on_deadline_missed
        self._on_peer_state = on_peer_state
        self._throttle = LogThrottle(_log)
        # Session numbers grow across restarts, so a receiver can tell a restarted sender's
        # new stream from stragglers of the old one. Wall-clock nanoseconds are used because
        # a restarted process has no memory; a clock stepped backwards breaks this ordering.
        self.session = time.time_ns()
        self.commands: collections.deque = collections.deque()
        self._wake_read_fd, self._wake_write_fd = os.pipe()
        os.set_blocking(self._wake_read_fd, False)
        os.set_blocking(self._wake_write_fd, False)
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._pipe_closed = False
        self.context = zmq.Context()
        faults = None
        if config.faults.active:
            faults = FaultInjector(config.faults, np.random.default_rng(config.fault_seed))
        self.transport = Transport(
            self.context, node_id=config.node_id, bind_endpoint=config.bind_endpoint,
            keypair=config.keypair if config.secure else None,
            keyring=config.keyring if config.secure else None, audit=audit,
            send_hwm=config.send_hwm, receive_hwm=config.receive_hwm,
            max_message_bytes=config.max_packet_bytes, faults=faults, metrics=metrics)
        self.peers: dict[str, PeerConfig] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.rtt: dict[str, RttEstimator] = {}
        self.liveness = PeerLiveness((), interval_s=config.heartbeat_interval_s,
                                     misses=config.heartbeat_misses)
        self.transport.ever_heard = self.liveness.ever_heard
        self.transport.is_alive = self.liveness.is_alive
        self._outbound: dict[tuple[str, int], OutboundStream] = {}
        self._inbound: dict[tuple[str, int], InboundStream] = {}
        self._send_queue: dict[int, dict[str, list[Pending]]] = {lane: {} for lane in _LANES}
        self._state_queued_since_s: float | None = None
        self._retry_heap: list[tuple[float, str, int, int]] = []
        self._deadline_heap: list[tuple[float, str, int, int]] = []
        self._acks: dict[str, tuple[int, set]] = {}
        self._last_heartbeat_s = 0.0
        self._last_expiry_s = 0.0
        # Peer state lines: when each peer's last line was logged, with which state, and the
        # latest state not yet logged with the number of changes it stands for.
        self._peer_logged: dict[str, tuple[float, bool]] = {}
        self._peer_unlogged: dict[str, tuple[bool, int]] = {}
        # When a packet of each (sender, lane) stream's session last arrived.
        self._stream_heard_s: dict[tuple[str, int], float] = {}
        self._heartbeat_echo: dict[str, tuple[float, float]] = {}
        self._last_sent_s: dict[str, float] = {}
        self._last_ack_s: dict[str, float] = {}
        self._outstanding = 0
        self.iterations = 0
        self.running = True
        self.setup_error: BaseException | None = None

    # ----------------------------------------------------------------- thread interface

    def wake(self) -> None:
        """Wake the loop from another thread (cheap when a wake-up is already pending)."""
        with self._wake_lock:
            if self._wake_pending or self._pipe_closed:
                return
            self._wake_pending = True
            try:
                os.write(self._wake_write_fd, b'\0')
            except BlockingIOError:
                pass  # the pipe is full, so a wake-up is already queued
            except OSError as error:
                # NOTE: seen once (EBADF) while closing a CurveZMQ node under heavy load, with
                # the I/O loop logging no error; the cause is not found. The loop still wakes
                # within one heartbeat interval, so the write is only an optimization.
                self._throttle.log(logging.WARNING, 'wake', 'mesh node %s could not wake its '
                                   'I/O thread: %s', self.config.node_id, error)

    def _drain_wake(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        # One read is enough: wake() writes one byte, and only when no wake-up is pending.
        try:
            os.read(self._wake_read_fd, 4096)
        except BlockingIOError:
            pass

    # ------------------------------------------------------------------------- loop

    def run(self, started: threading.Event) -> None:
        try:
            self.transport.start()
            self.audit.record(audit_events.NODE_STARTED, endpoint=self.transport.endpoint,
                              secure=self.config.secure)
            for peer in self.config.peers:
                self._add_peer(peer)
        except BaseException as error:
            # Recorded before ``started`` is set, so that MeshNode.start raises it.
            self.setup_error = error
            raise
        finally:
            started.set()
        poller = zmq.Poller()
        poller.register(self.transport.inbound, zmq.POLLIN)
        poller.register(self._wake_read_fd, zmq.POLLIN)
        try:
            while self.running:
                timeout_ms = self._poll_timeout_ms(time.monotonic())
                events = dict(poller.poll(timeout_ms))
                self.iterations += 1
                if self._wake_read_fd in events:
                    self._drain_wake()
                self._iterate(readable=self.transport.inbound in events)
        except BaseException:
            _log.exception('mesh I/O loop of node %s stopped on an error; outstanding sends '
                           'fail and nothing more is received', self.config.node_id)
            raise
        finally:
            self._shutdown()

    def _poll_timeout_ms(self, now_s: float) -> int:
        if self.commands:
            return 0
        self._prune_timers()
        due_s = self._last_heartbeat_s + self.config.heartbeat_interval_s
        if self._retry_heap and self._retry_heap[0][0] < due_s:
            due_s = self._retry_heap[0][0]
        if self._deadline_heap and self._deadline_heap[0][0] < due_s:
            due_s = self._deadline_heap[0][0]
        delayed_s = self.transport.next_delayed_due_s()
        if delayed_s is not None and delayed_s < due_s:
            due_s = delayed_s
        if self._state_queued_since_s is not None:
            due_s = min(due_s, self._state_queued_since_s + self.config.state_batch_window_s)
        # zmq_poll takes whole milliseconds and truncates, so a timer due in 0.7 ms would make
        # the loop spin with zero timeouts until it fires. Round up: timers fire up to 1 ms
        # late instead, and an idle node wakes only when something is due.
        return max(0, math.ceil((due_s - now_s) * 1e3))

    def _prune_timers(self) -> None:
        """Drop timer entries of acknowledged messages from the heads of both heaps.

        Entries stay in the heaps when a message resolves, because removing them would cost a
        heap search per message. Without this pruning, every acknowledged message would still
        wake the loop at its retry time and again at its deadline.
        """
        outbound = self._outbound
        heap = self._retry_heap
        while heap:
            due_s, peer, lane, seq = heap[0]
            stream = outbound.get((peer, lane))
            pending = None if stream is None else stream.outstanding.get(seq)
            if pending is not None and pending.next_retry_s == due_s:
                break
            heapq.heappop(heap)
        heap = self._deadline_heap
        while heap:
            _, peer, lane, seq = heap[0]
            stream = outbound.get((peer, lane))
            if stream is not None and seq in stream.outstanding:
                break
            heapq.heappop(heap)

    def _iterate(self, *, readable: bool) -> None:
        now_s = time.monotonic()
        if readable:
            for user_id, frames in self.transport.receive(_MAX_RECEIVE_PER_ITERATION):
                self._handle_frames(user_id, frames, now_s)
        self._take_commands(now_s)
        self._queue_retransmissions(now_s)
        self._flush_data(now_s)
        self._flush_acks(now_s)
        self._expire_deadlines(now_s)
        self.transport.flush_delayed(now_s)
        if now_s - self._last_heartbeat_s >= self.config.heartbeat_interval_s:
            self._send_heartbeats(now_s)
        # Expiry walks every peer, so it runs at a tenth of the heartbeat interval, not on
        # every iteration; detection is at most that much later.
        if now_s - self._last_expiry_s >= self.config.heartbeat_interval_s / 10.0:
            self._last_expiry_s = now_s
            for peer in self.liveness.expire(now_s):
                self._peer_state_changed(peer, alive=False)
            if self._peer_unlogged:
                self._flush_peer_lines()

    def dispose(self) -> None:
        """Release the sockets, context and wake pipe of an engine whose loop never ran."""
        self.transport.close()
        self.context.term()
        self._close_pipe()

    def _shutdown(self) -> None:
        for stream in self._outbound.values():
            for pending in stream.outstanding.values():
                if not pending.future.done():
                    pending.future.set_exception(DeliveryFailedError(
                        f'mesh node {self.config.node_id!r} closed before message '
                        f'{pending.message.kind!r} was acknowledged'))
        while self.commands:
            command = self.commands.popleft()
            if isinstance(command, SendCommand) and not command.future.done():
                command.future.set_exception(DeliveryFailedError(
                    f'mesh node {self.config.node_id!r} closed before sending '
                    f'{command.kind!r}'))
        self.audit.record(audit_events.NODE_STOPPED)
        self.transport.close()
        self.context.term()
        self._close_pipe()

    def _close_pipe(self) -> None:
        # Under the wake lock, so that no thread writes to a closed (or reused) descriptor.
        with self._wake_lock:
            self._pipe_closed = True
            os.close(self._wake_read_fd)
            os.close(self._wake_write_fd)

    # ------------------------------------------------------------------------- peers

    def _add_peer(self, peer: PeerConfig) -> None:
        self.transport.add_peer(peer.node_id, peer.endpoint)
        self.peers[peer.node_id] = peer
        self.breakers.setdefault(peer.node_id, CircuitBreaker(
            failure_threshold=self.config.breaker_failure_threshold,
            cooldown_s=self.config.breaker_cooldown_s))
        self.rtt.setdefault(peer.node_id,
                            RttEstimator(initial_rto_s=self.config.retry.initial_s))
        self.liveness.add_peer(peer.node_id)

    def _remove_peer(self, peer_id: str) -> None:
        self.transport.remove_peer(peer_id)
        self.peers.pop(peer_id, None)
        self.liveness.remove_peer(peer_id)

    def _peer_state_changed(self, peer: str, *, alive: bool) -> None:
        self.metrics.count('peer_up' if alive else 'peer_down')
        logged = self._peer_logged.get(peer)
        if logged is not None and time.monotonic() - logged[0] < _PEER_LOG_INTERVAL_S:
            # At most one line per peer a second; _flush_peer_lines logs the latest state.
            _, changes = self._peer_unlogged.get(peer, (alive, 0))
            self._peer_unlogged[peer] = (alive, changes + 1)
        else:
            self._log_peer_state(peer, alive, 0)
        try:
            self._on_peer_state(peer, alive)
        except Exception:  # noqa: BLE001 - an application callback must not stop the loop
            _log.exception('peer state callback raised for peer %s', peer)

    def _log_peer_state(self, peer: str, alive: bool, changes: int) -> None:
        self._peer_logged[peer] = (time.monotonic(), alive)
        level = logging.INFO if alive else logging.WARNING
        state = 'alive' if alive else 'dead (missed heartbeats)'
        if changes > 1:
            _log.log(level, 'peer %s is %s (%d state changes since the last line)', peer, state,
                     changes)
        else:
            _log.log(level, 'peer %s is %s', peer, state)

    def _flush_peer_lines(self) -> None:
        """Log the latest state of peers whose changes were held back, once their second is up.

        Without this a peer that went dead and came back within the second would be left
        logged as dead.
        """
        now_s = time.monotonic()
        for peer, (alive, changes) in list(self._peer_unlogged.items()):
            logged_s, logged_alive = self._peer_logged[peer]
            if now_s - logged_s < _PEER_LOG_INTERVAL_S:
                continue
            del self._peer_unlogged[peer]
            if alive != logged_alive:
                self._log_peer_state(peer, alive, changes)

    # ---------------------------------------------------------------------- sending

    def _take_commands(self, now_s: float) -> None:
        while self.commands:
            command = self.commands.popleft()
            if isinstance(command, SendCommand):
                self._start_send(command, now_s)
            elif command[0] == 'add_peer':
                self._add_peer(command[1])
            elif command[0] == 'remove_peer':
                self._remove_peer(command[1])
            elif command[0] == 'call':
                command[1]()

    def _fail_now(self, command: SendCommand, reason: str, now_s: float) -> None:
        report = DeliveryReport(peer=command.peer, priority=command.priority, seq=0,
                                kind=command.kind, delivered=False,
                                latency_s=now_s - command.created_s, attempts=0, reason=reason)
        self.metrics.count('send_rejected')
        error = DeliveryFailedError(f'message {command.kind!r} to {command.peer!r} was not '
                                    f'sent: {reason}')
        error.report = report
        command.future.set_exception(error)

    def _start_send(self, command: SendCommand, now_s: float) -> None:
        if command.future.done():
            return
        if command.peer not in self.peers:
            self._fail_now(command, 'peer removed', now_s)
            return
        if not self.breakers[command.peer].allows_send(now_s):
            self._fail_now(command, 'circuit breaker open', now_s)
            return
        if self._outstanding >= self.config.max_outstanding:
            self._fail_now(command, f'{self._outstanding} messages outstanding '
                                    f'(max_outstanding)', now_s)
            return
        lane = int(command.priority)
        stream = self._outbound.setdefault((command.peer, lane), OutboundStream())
        seq = stream.allocate_seq()
        message = WireMessage(priority=command.priority, seq=seq, kind=command.kind,
                              deadline_fleet_s=command.deadline_fleet_s,
                              payload_bytes=command.payload_bytes)
        pending = Pending(message=message, future=command.future, created_s=command.created_s,
                          deadline_s=command.deadline_s, next_retry_s=now_s)
        stream.outstanding[seq] = pending
        self._outstanding += 1
        heapq.heappush(self._deadline_heap, (command.deadline_s, command.peer, lane, seq))
        self._enqueue(command.peer, lane, pending, now_s)
        self.metrics.count('messages_sent')

    def _enqueue(self, peer: str, lane: int, pending: Pending, now_s: float) -> None:
        self._send_queue[lane].setdefault(peer, []).append(pending)
        if lane == Priority.STATE and self._state_queued_since_s is None:
            self._state_queued_since_s = now_s

    def _queue_retransmissions(self, now_s: float) -> None:
        heap = self._retry_heap
        while heap and heap[0][0] <= now_s:
            due_s, peer, lane, seq = heapq.heappop(heap)
            stream = self._outbound.get((peer, lane))
            pending = None if stream is None else stream.outstanding.get(seq)
            if pending is None or pending.next_retry_s != due_s:
                continue
            self.metrics.count('retransmissions')
            # Back off only when the peer acknowledged nothing since this message left,
            # because then it may be overloaded. A peer that acknowledged other messages
            # since is responsive, so this message or its acknowledgement was lost, and a
            # longer timeout would only delay the retry.
            if peer in self.rtt and self._last_ack_s.get(peer, -1.0) <= pending.last_sent_s:
                self.rtt[peer].on_timeout(now_s)
            self._enqueue(peer, lane, pending, now_s)

    def _flush_data(self, now_s: float) -> None:
        # NOTE: priority order holds for what this node still queues. Packets already handed
        # to ZeroMQ leave in FIFO order per peer, so an emergency stop can wait behind at most
        # the packets sent in earlier iterations that the socket has not written yet.
        for lane in _LANES:
            queue = self._send_queue[lane]
            if not queue:
                continue
            if lane == Priority.STATE:
                waited_s = now_s - (self._state_queued_since_s or now_s)
                if waited_s < self.config.state_batch_window_s:
                    continue
                self._state_queued_since_s = None
            self._send_queue[lane] = {}
            for peer, pendings in queue.items():
                self._send_lane(peer, lane, pendings, now_s)

    def _send_lane(self, peer: str, lane: int, pendings: list[Pending], now_s: float) -> None:
        stream = self._outbound[(peer, lane)]
        batch: list[Pending] = []
        batch_bytes = 0
        queued_seqs = set()
        for pending in pendings:
            seq = pending.message.seq
            if seq not in stream.outstanding or seq in queued_seqs:
                continue
            queued_seqs.add(seq)
            size = len(pending.message.payload_bytes) + MESSAGE_OVERHEAD_BYTES
            if batch and batch_bytes + size > self.config.max_batch_bytes:
                self._send_batch(peer, lane, batch, now_s)
                batch, batch_bytes = [], 0
            batch.append(pending)
            batch_bytes += size
        if batch:
            self._send_batch(peer, lane, batch, now_s)

    def _send_batch(self, peer: str, lane: int, batch: list[Pending], now_s: float) -> None:
        packet = DataPacket(sender=self.config.node_id, session=self.session,
                            messages=tuple(pending.message for pending in batch),
                            floors=self._floors_for(peer))
        self.transport.send(peer, encode_packet(packet), now_s)
        self._last_sent_s[peer] = now_s
        self.metrics.count('data_packets_sent')
        rto_s = self.rtt[peer].rto_s if peer in self.rtt else None
        # One jittered interval per attempt number and packet, not one random draw per
        # message: the messages of a packet travel together, so they are retried together.
        intervals_s: dict[int, float] = {}
        retry = self.config.retry
        heap = self._retry_heap
        for pending in batch:
            attempts = pending.attempts = pending.attempts + 1
            pending.last_sent_s = now_s
            interval_s = intervals_s.get(attempts)
            if interval_s is None:
                interval_s = intervals_s[attempts] = retry.interval_s(attempts, self._rng,
                                                                      rto_s=rto_s)
            due_s = now_s + interval_s
            if due_s > pending.deadline_s:
                due_s = pending.deadline_s
            pending.next_retry_s = due_s
            heapq.heappush(heap, (due_s, peer, lane, pending.message.seq))

    def _floors_for(self, peer: str) -> tuple[tuple[int, int], ...]:
        floors = []
        outbound = self._outbound
        for lane in _LANE_NUMBERS:
            stream = outbound.get((peer, lane))
            if stream is not None:
                floors.append((lane, stream.floor))
        return tuple(floors)

    def _expire_deadlines(self, now_s: float) -> None:
        heap = self._deadline_heap
        while heap and heap[0][0] <= now_s:
            _, peer, lane, seq = heapq.heappop(heap)
            stream = self._outbound.get((peer, lane))
            pending = None if stream is None else stream.outstanding.pop(seq, None)
            if pending is None:
                continue
            self._outstanding -= 1
            report = DeliveryReport(peer=peer, priority=Priority(lane), seq=seq,
                                    kind=pending.message.kind, delivered=False,
                                    latency_s=now_s - pending.created_s,
                                    attempts=pending.attempts, reason='deadline missed')
            self.metrics.count('deadline_missed')
            self._throttle.log(logging.WARNING, 'deadline:' + peer,
                               'message %s seq %d to %s missed its deadline after %d '
                               'attempts (%.1f ms)', report.kind, seq, peer, report.attempts,
                               report.latency_s * 1e3)
            breaker = self.breakers.get(peer)
            if breaker is not None and breaker.record_failure(now_s):
                self.metrics.count('breaker_opened')
                _log.warning('circuit breaker for peer %s opened after %d failed deliveries',
                             peer, breaker.consecutive_failures)
            error = DeliveryFailedError(
                f'message {report.kind!r} seq {seq} to {peer!r} was not acknowledged within '
                f'its deadline ({report.attempts} attempts); the receiver may or may not have '
                'it, so fall back to a safe action')
            error.report = report
            pending.future.set_exception(error)
            try:
                self._on_deadline_missed(report)
            except Exception:  # noqa: BLE001 - an application callback must not stop the loop
                _log.exception('deadline-missed callback raised for peer %s', peer)

    def _resolve(self, peer: str, pending: Pending, now_s: float, *, sample: bool) -> None:
        self._outstanding -= 1
        latency_s = now_s - pending.created_s
        report = DeliveryReport(peer=peer, priority=pending.message.priority,
                                seq=pending.message.seq, kind=pending.message.kind,
                                delivered=True, latency_s=latency_s, attempts=pending.attempts)
        self.metrics.count('messages_acked')
        self.metrics.record_latency(latency_s)
        if sample and pending.attempts == 1 and peer in self.rtt:
            self.rtt[peer].add_sample(now_s - pending.last_sent_s)
        if not pending.future.done():
            pending.future.set_result(report)

    # ---------------------------------------------------------------------- receiving

    def _handle_frames(self, user_id: str | None, frames: list[bytes], now_s: float) -> None:
        try:
            packet = decode_packet(frames, max_packet_bytes=self.config.max_packet_bytes)
        except MessageFormatError as error:
            self.metrics.count('malformed_dropped')
            self.metrics.count('malformed.' + error.reason)
            self._throttle.log(logging.WARNING, 'malformed:' + error.reason,
                               'dropped malformed packet from %s: %s',
                               user_id or 'a peer without an authenticated id',
                               error)
            return
        if user_id is not None and packet.sender != user_id:
            self.metrics.count('sender_mismatch')
            self.audit.record(audit_events.SENDER_MISMATCH, claimed=packet.sender,
                              authenticated=user_id)
            return
        if packet.sender not in self.peers:
            self.metrics.count('unknown_sender')
            self._throttle.log(logging.WARNING, 'unknown-sender',
                               'dropped packet from %s, which is not a configured peer',
                               packet.sender)
            return
        if self.liveness.heard(packet.sender, now_s):
            self._peer_state_changed(packet.sender, alive=True)
        self._probe_breaker(packet.sender, now_s)
        if isinstance(packet, DataPacket):
            self._handle_data(packet, now_s)
        elif isinstance(packet, AckPacket):
            self._handle_ack(packet, now_s)
        else:
            self._handle_heartbeat(packet, now_s)

    def _probe_breaker(self, sender: str, now_s: float) -> None:
        # Every packet from the peer is a probe: once the cooldown is over, any packet closes
        # the breaker. Heartbeats alone would not do, because a peer that sent us data or
        # acknowledgements within the interval skips its own heartbeats.
        breaker = self.breakers[sender]
        if breaker.state is BreakerState.CLOSED:
            return
        breaker.allows_send(now_s)
        if breaker.state is BreakerState.HALF_OPEN and breaker.record_success():
            self.metrics.count('breaker_closed')
            _log.info('circuit breaker for peer %s closed after a probe', sender)

    def _inbound_stream(self, sender: str, session: int, lane: int, floors: dict[int, int],
                        now_s: float) -> InboundStream | None:
        key = (sender, lane)
        stream = self._inbound.get(key)
        if stream is not None and stream.session == session:
            self._stream_heard_s[key] = now_s
            return stream
        if stream is not None and stream.session > session:
            # Sessions start at the wall clock, so a lower one is either a straggler from
            # before a restart or a restart whose clock stepped back. Stragglers arrive
            # within milliseconds, so a lower session after a quiet spell is a restart.
            quiet_s = now_s - self._stream_heard_s.get(key, now_s)
            if quiet_s < _STALE_SESSION_GRACE_S:
                self.metrics.count('stale_session_dropped')
                self._throttle.log(logging.WARNING, 'stale-session:' + sender,
                                   'dropped a packet from %s of session %d, older than its '
                                   'current session %d', sender, session, stream.session)
                return None
            _log.warning('peer %s started session %d, lower than its previous session %d, '
                         'after %.1f s without packets of the old one; its clock may have '
                         'stepped back. Accepting the new session', sender, session,
                         stream.session, quiet_s)
        elif stream is not None:
            _log.info('peer %s restarted (new session); resetting its lane %d stream',
                      sender, lane)
        stream = InboundStream(session=session, floor=floors.get(lane, 1),
                               window=self.config.window)
        self._inbound[key] = stream
        self._stream_heard_s[key] = now_s
        return stream

    def _handle_data(self, packet: DataPacket, now_s: float) -> None:
        self.metrics.count('data_packets_received')
        floors = dict(packet.floors)
        acked: set = self._ack_entry(packet.sender, packet.session)
        # One stream lookup per lane and packet, so a stale packet is counted once.
        streams: dict[int, InboundStream | None] = {}
        for lane, floor in packet.floors:
            stream = streams[lane] = self._inbound_stream(packet.sender, packet.session, lane,
                                                          floors, now_s)
            if stream is not None:
                self._advance(stream, packet.sender, lane, floor, acked)
        for wire in packet.messages:
            lane = int(wire.priority)
            if lane in streams:
                stream = streams[lane]
            else:
                stream = streams[lane] = self._inbound_stream(packet.sender, packet.session,
                                                              lane, floors, now_s)
            if stream is None:
                continue
            try:
                payload = decode_payload(wire.payload_bytes)
            except MessageFormatError as error:
                self.metrics.count('malformed_dropped')
                self.metrics.count('malformed.bad_payload')
                self._throttle.log(logging.WARNING, 'malformed:bad_payload',
                                   'dropped message from %s: %s', packet.sender, error)
                continue
            message = Message(sender=packet.sender, session=packet.session,
                              priority=wire.priority, seq=wire.seq, kind=wire.kind,
                              deadline_fleet_s=wire.deadline_fleet_s, payload=payload)
            status, ready = stream.accept(message)
            if status == Acceptance.DUPLICATE:
                self.metrics.count('duplicates_dropped')
                self._throttle.log(logging.INFO, 'duplicate:' + packet.sender,
                                   'dropped already delivered seq %d lane %d from %s',
                                   wire.seq, lane, packet.sender)
                acked.add((lane, wire.seq))
            elif status == Acceptance.OUT_OF_WINDOW:
                self.metrics.count('out_of_window_dropped')
            elif status == Acceptance.BUFFERED:
                self.metrics.count('buffered_out_of_order')
            self._deliver_all(ready, acked)

    def _advance(self, stream: InboundStream, sender: str, lane: int, floor: int,
                 acked: set) -> None:
        ready, skipped = stream.advance_floor(floor)
        if skipped:
            self.metrics.count('abandoned_skipped', skipped)
        self._deliver_all(ready, acked)

    def _deliver_all(self, messages: list[Message], acked: set) -> None:
        if not messages:
            return
        # One fleet-time reading per batch: it takes a lock and scans the clock samples.
        fleet_now_s = self.clock_sync.fleet_time()
        deliver = self._deliver
        late = 0
        for message in messages:
            try:
                deliver(message)
            except Exception:  # noqa: BLE001 - an application callback must not stop the loop
                self.metrics.count('handler_errors')
                self._throttle.log(logging.ERROR, 'handler', 'message handler raised on %s '
                                   'from %s', message.kind, message.sender, exc_info=True)
            if message.deadline_fleet_s < fleet_now_s:
                late += 1
            acked.add((int(message.priority), message.seq))
        self.metrics.count('messages_delivered', len(messages))
        if late:
            self.metrics.count('late_deliveries', late)

    def _ack_entry(self, sender: str, session: int) -> set:
        entry = self._acks.get(sender)
        if entry is None or entry[0] != session:
            entry = (session, set())
            self._acks[sender] = entry
        return entry[1]

    def _flush_acks(self, now_s: float) -> None:
        for sender, (session, seqs) in self._acks.items():
            through = []
            for lane in _LANE_NUMBERS:
                stream = self._inbound.get((sender, lane))
                if stream is not None and stream.session == session:
                    through.append((lane, stream.delivered_through))
            if not seqs and not through:
                continue
            packet = AckPacket(sender=self.config.node_id, session=session,
                               seqs=tuple(sorted(seqs)), through=tuple(through))
            self.transport.send(sender, encode_packet(packet), now_s)
            self._last_sent_s[sender] = now_s
            self.metrics.count('ack_packets_sent')
        self._acks = {}

    def _handle_ack(self, packet: AckPacket, now_s: float) -> None:
        if packet.session != self.session:
            self.metrics.count('stale_acks_dropped')
            return
        resolved: list[Pending] = []
        for lane, seq in packet.seqs:
            stream = self._outbound.get((packet.sender, lane))
            pending = None if stream is None else stream.acknowledge(seq)
            if pending is not None:
                resolved.append(pending)
        for lane, through in packet.through:
            stream = self._outbound.get((packet.sender, lane))
            if stream is not None:
                resolved.extend(stream.acknowledge_through(through))
        if not resolved:
            return
        self._last_ack_s[packet.sender] = now_s
        # The receiver acknowledges in order. When a retransmitted message is acknowledged,
        # the others in the same packet may have waited behind it at the receiver, so their
        # round trips include that wait and would inflate the timeout.
        sample = all(pending.attempts == 1 for pending in resolved)
        for pending in resolved:
            self._resolve(packet.sender, pending, now_s, sample=sample)
        breaker = self.breakers[packet.sender]
        if breaker.record_success():
            self.metrics.count('breaker_closed')
            _log.info('circuit breaker for peer %s closed', packet.sender)

    def _handle_heartbeat(self, packet: HeartbeatPacket, now_s: float) -> None:
        self.metrics.count('heartbeats_received')
        received_wall_s = self.clock_sync.clock()
        self._heartbeat_echo[packet.sender] = (packet.sent_s, received_wall_s)
        if packet.echo is not None and packet.sender == self.config.reference_id:
            self.clock_sync.add_exchange(t1_s=packet.echo[0], t2_s=packet.echo[1],
                                         t3_s=packet.sent_s, t4_s=received_wall_s)
        floors = dict(packet.floors)
        # Send an acknowledgement for a heartbeat only when its floors released buffered
        # messages to the application. An acknowledgement for every heartbeat doubled the
        # heartbeat traffic (11% of all packets in the mesh benchmark) without use to the
        # sender: an unacknowledged message is retransmitted as data, and its duplicate is
        # acknowledged then.
        acked: set = set()
        for lane, floor in packet.floors:
            stream = self._inbound.get((packet.sender, lane))
            if stream is not None and stream.session == packet.session:
                self._stream_heard_s[(packet.sender, lane)] = now_s
                self._advance(stream, packet.sender, lane, floor, acked)
            elif stream is None:
                self._inbound_stream(packet.sender, packet.session, lane, floors, now_s)
        if acked:
            self._ack_entry(packet.sender, packet.session).update(acked)

    def _send_heartbeats(self, now_s: float) -> None:
        # Any packet proves liveness to the receiver, so a peer that got data or acks within
        # the last interval gets no heartbeat. The gap between packets to it then stays below
        # two intervals, inside the dead-peer timeout when heartbeat_misses is 3 or more.
        # Heartbeats to and from the clock reference are never skipped, because only they
        # carry the timestamps for clock synchronization.
        self._last_heartbeat_s = now_s
        recent_s = now_s - self.config.heartbeat_interval_s
        reference_id = self.config.reference_id
        sent = 0
        for peer in self.peers:
            skippable = reference_id not in (peer, self.config.node_id)
            if skippable and self._last_sent_s.get(peer, -1.0) > recent_s:
                continue
            sent += 1
            packet = HeartbeatPacket(sender=self.config.node_id, session=self.session,
                                     sent_s=self.clock_sync.clock(),
                                     echo=self._heartbeat_echo.get(peer),
                                     floors=self._floors_for(peer))
            self.transport.send(peer, encode_packet(packet), now_s)
        self.metrics.count('heartbeats_sent', sent)
