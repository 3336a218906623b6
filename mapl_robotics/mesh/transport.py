"""ZeroMQ sockets of a mesh node: one bound ROUTER for input, one ROUTER for output.

Inbound: a ROUTER socket bound to the node's endpoint. In secure mode it is a CURVE server
whose ZAP handler (see :mod:`mapl_robotics.mesh.security`) admits only fleet keys and stamps
each frame with the sender's node id as ``User-Id``. ``ROUTER_HANDOVER`` lets a restarted
peer take over its routing id at once instead of being ignored until the old connection
times out.

Outbound: a ROUTER socket connected to every peer. Each connection gets the peer's node id as
its routing id through ``ZMQ_CONNECT_ROUTING_ID``. The route therefore exists from the moment
of ``connect()``, with frames queued until the TCP and CURVE handshakes finish, and it does
not depend on an id that the remote side announces. In secure mode each connection is a
CURVE client pinned to that peer's public key, so only the holder of the matching secret key
can receive. ``ROUTER_MANDATORY`` makes a send to an id that has no connection raise
``EHOSTUNREACH`` instead of vanishing, and a send to a peer whose queue is at the high-water
mark raise ``EAGAIN``. Both are counted, and the message stays outstanding for a retry.

Every packet is fully encoded before :meth:`Transport.send` is called, and its frames go out
in one ``send_multipart`` call, so a packet is either queued whole or not at all.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Callable, Sequence

import zmq

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.faults import FaultInjector
from mapl_robotics.mesh.metrics import LogThrottle, MeshMetrics
from mapl_robotics.mesh.security import ZAP_DOMAIN, FleetAuthenticator, FleetKeyring, KeyPair

__all__ = ['Transport', 'SendStatus']

_log = logging.getLogger(__name__)
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK) | int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


# Messages queued per connection on the outbound socket's unread receive side.
_OUTBOUND_RECEIVE_HWM = 4


class SendStatus:
    SENT = 'sent'
    DELAYED = 'delayed'
    FAULT_DROPPED = 'fault_dropped'
    HWM_FULL = 'hwm_full'
    UNREACHABLE = 'unreachable'


class Transport:
    """Own the two sockets and the fault layer; used only from the mesh I/O thread."""

    def __init__(self, context: zmq.Context, *, node_id: str, bind_endpoint: str,
                 keypair: KeyPair | None, keyring: FleetKeyring | None, audit,
                 send_hwm: int, receive_hwm: int, max_message_bytes: int,
                 faults: FaultInjector | None, metrics: MeshMetrics) -> None:
        if (keypair is None) != (keyring is None):
            raise MeshConfigError('secure mode needs both a key pair and a fleet keyring')
        self.node_id = node_id
        self._context = context
        self._bind_endpoint = bind_endpoint
        self._keypair = keypair
        self._keyring = keyring
        self._audit = audit
        self._faults = faults
        self._metrics = metrics
        self._throttle = LogThrottle(_log)
        self._delayed: list[tuple[float, int, str, list[bytes]]] = []
        self._tiebreak = itertools.count()
        self._peers: dict[str, str] = {}
        self._routing_ids: dict[str, bytes] = {}
        self._authenticator: FleetAuthenticator | None = None
        self.endpoint = ''
        # Set by the engine: whether a peer has ever sent anything. A full queue to a peer
        # that never did means the peer is absent, not slow.
        self.ever_heard: Callable[[str], bool] = lambda peer_id: True
        self.is_alive: Callable[[str], bool] = lambda peer_id: True

        self.inbound = context.socket(zmq.ROUTER)
        self.outbound = context.socket(zmq.ROUTER)
        for sock in (self.inbound, self.outbound):
            sock.linger = 0
            sock.sndhwm = send_hwm
            sock.rcvhwm = receive_hwm
            # Reconnect fast after a peer restarts: the default 100 ms would spend the
            # whole latency budget before the first retry could get through.
            sock.setsockopt(zmq.RECONNECT_IVL, 10)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 200)
        self.inbound.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # A hard cap far above the protocol limit: libzmq drops the connection of a peer that
        # exceeds it, while packets between the two limits are counted as oversized.
        self.inbound.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
        self.outbound.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # Nothing legitimate arrives on the outbound socket (peers send acknowledgements from their
        # own outbound sockets), and the node never reads it. Without these caps a peer could
        # push data back over the connection until the queue held 1000 messages of any size.
        self.outbound.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
        self.outbound.rcvhwm = _OUTBOUND_RECEIVE_HWM

    @property
    def secure(self) -> bool:
        return self._keypair is not None

    def start(self) -> None:
        """Start the authenticator (secure mode) and bind the inbound socket."""
        if self._keypair is not None:
            self._authenticator = FleetAuthenticator(self._context, self._keyring,
                                                     audit=self._audit)
            self._authenticator.start()
            self.inbound.curve_server = True
            self.inbound.curve_publickey = self._keypair.public_key
            self.inbound.curve_secretkey = self._keypair.secret_key
            self.inbound.zap_domain = ZAP_DOMAIN.encode()
        try:
            self.inbound.bind(self._bind_endpoint)
        except zmq.ZMQError as error:
            raise MeshConfigError(f'cannot bind mesh node {self.node_id!r} to '
                                  f'{self._bind_endpoint}: {error}') from error
        self.endpoint = self.inbound.getsockopt_string(zmq.LAST_ENDPOINT)

    def add_peer(self, peer_id: str, endpoint: str) -> None:
        if peer_id in self._peers:
            self.remove_peer(peer_id)
        if self._keypair is not None:
            self.outbound.curve_publickey = self._keypair.public_key
            self.outbound.curve_secretkey = self._keypair.secret_key
            self.outbound.curve_serverkey = self._keyring.public_key(peer_id)
        self.outbound.setsockopt(zmq.CONNECT_ROUTING_ID, peer_id.encode('utf-8'))
        try:
            self.outbound.connect(endpoint)
        except zmq.ZMQError as error:
            raise MeshConfigError(f'cannot connect to peer {peer_id!r} at {endpoint}: '
                                  f'{error}') from error
        self._peers[peer_id] = endpoint

    def remove_peer(self, peer_id: str) -> None:
        endpoint = self._peers.pop(peer_id, None)
        if endpoint is not None:
            try:
                self.outbound.disconnect(endpoint)
            except zmq.ZMQError:
                pass

    def send(self, peer_id: str, frames: Sequence[bytes], now_s: float) -> str:
        """Send an encoded packet through the fault layer; return a :class:`SendStatus`."""
        if self._faults is None:
            return self._send_now(peer_id, frames)
        delays_s = self._faults.release_delays_s()
        if not delays_s:
            self._metrics.count('fault_dropped')
            return SendStatus.FAULT_DROPPED
        if len(delays_s) > 1:
            self._metrics.count('fault_duplicated')
        status = SendStatus.DELAYED
        for delay_s in delays_s:
            if delay_s <= 0.0:
                status = self._send_now(peer_id, frames)
            else:
                self._metrics.count('fault_delayed')
                heapq.heappush(self._delayed,
                               (now_s + delay_s, next(self._tiebreak), peer_id, list(frames)))
        return status

    def next_delayed_due_s(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def flush_delayed(self, now_s: float) -> None:
        while self._delayed and self._delayed[0][0] <= now_s:
            _, _, peer_id, frames = heapq.heappop(self._delayed)
            self._send_now(peer_id, frames)

    def _send_now(self, peer_id: str, frames: Sequence[bytes]) -> str:
        routing_id = self._routing_ids.get(peer_id)
        if routing_id is None:
            routing_id = self._routing_ids[peer_id] = peer_id.encode('utf-8')
        send = self.outbound.send
        try:
            # What send_multipart does, with plain int flags (the enum flags of pyzmq cost a
            # Python-level Flag.__or__ per frame). ROUTER checks the route and the high-water
            # mark on the first frame; once that is accepted, the rest of the message is too.
            send(routing_id, _NOBLOCK_MORE)
            last = len(frames) - 1
            for index, frame in enumerate(frames):
                send(frame, _NOBLOCK_MORE if index < last else _NOBLOCK)
        except zmq.Again:
            self._metrics.count('hwm_drops')
            if not self.ever_heard(peer_id):
                self._throttle.log(logging.WARNING, 'absent:' + peer_id,
                                   'peer %s at %s has sent nothing since this node started '
                                   '(not running, or unreachable); packets to it are dropped '
                                   'until it connects', peer_id, self._peers.get(peer_id))
            elif not self.is_alive(peer_id):
                # The engine has logged this peer as dead already. Its queue stays full until
                # it comes back, so a warning here would repeat for as long as it is away.
                self._throttle.log(logging.DEBUG, 'dead:' + peer_id,
                                   'send queue to dead peer %s is full; packet dropped',
                                   peer_id)
            else:
                self._throttle.log(logging.WARNING, 'hwm:' + peer_id,
                                   'send queue to %s is full (high-water mark); packet '
                                   'dropped, it will be retried', peer_id)
            return SendStatus.HWM_FULL
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            self._metrics.count('unreachable')
            self._throttle.log(logging.WARNING, 'unreachable:' + peer_id,
                               'no connection to peer %s (EHOSTUNREACH); packet dropped, '
                               'it will be retried', peer_id)
            return SendStatus.UNREACHABLE
        self._metrics.count('packets_sent')
        return SendStatus.SENT

    def receive(self, max_packets: int) -> list[tuple[str | None, list[bytes]]]:
        """Drain up to ``max_packets`` from the inbound socket without blocking.

        Returns ``(user_id, frames_after_routing_id)`` pairs; ``user_id`` is the
        authenticated node id in secure mode and None otherwise.
        """
        packets = []
        sock = self.inbound
        recv = sock.recv
        get = sock.get
        secure = self._keypair is not None
        for _ in range(max_packets):
            # Ask before receiving: ending the drain on zmq.Again would build an exception
            # (with its error string) on every wake-up, which usually carries one packet.
            if not get(_EVENTS) & _POLLIN:
                break
            try:
                routing = recv(_NOBLOCK, copy=False)
            except zmq.Again:
                break
            user_id = None
            if secure:
                try:
                    user_id = routing.get('User-Id')
                except zmq.ZMQError:
                    user_id = ''
            # The rest of a multipart message is already queued whole, so these never block;
            # copying small frames into bytes is cheaper than building Frame objects.
            frames = []
            while get(_RCVMORE):
                frames.append(recv(_NOBLOCK))
            packets.append((user_id, frames))
        return packets

    def close(self) -> None:
        self.inbound.close(linger=0)
        self.outbound.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
