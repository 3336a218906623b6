"""Ledger requests over the mesh, for robots that are not ledger members.

Client side: :class:`MeshLedgerTransport` implements the ledger client's
:class:`~mapl_robotics.coordination.client.ClientTransport`, so a
``LedgerClient(addresses=['ledger_0', 'ledger_1', 'ledger_2'], transport=...)`` sends each
request as a mesh message to the named ledger node's gateway. The addresses are mesh node ids.

Server side: :class:`LedgerGateway` runs next to a ledger node, as a mesh node of its own
(for example ``ledger_0``). It forwards each request to the ledger node's client port over a
local DEALER socket and sends the reply back over the mesh to the robot that asked.

The mesh authenticates the robot (CurveZMQ) and the ledger checks each request's signature,
so a robot can act only for itself at both layers. Requests and replies travel on the plan
lane with acknowledgement. The ledger client's own per-attempt timeout and failover to the
next node still apply on top. The ledger returns the stored result for a repeated request
id, so a retried request commits at most once.
"""

from __future__ import annotations

import logging
import queue
import threading

import zmq

from mapl_robotics.coordination.protocol import READ_OPS, ROBOT_OPS, decode, encode
from mapl_robotics.errors import DeliveryFailedError, LedgerRequestError, MeshError
from mapl_robotics.mesh.metrics import LogThrottle
from mapl_robotics.mesh.node import MeshNode
from mapl_robotics.mesh.schema import Message, Priority

__all__ = ['MeshLedgerTransport', 'LedgerGateway', 'LEDGER_REQUEST', 'LEDGER_REPLY',
           'GATEWAY_OPS']

_log = logging.getLogger(__name__)

LEDGER_REQUEST = 'ledger.request'
LEDGER_REPLY = 'ledger.reply'
GATEWAY_OPS = ROBOT_OPS | READ_OPS | {'status'}
"""Ledger operations a gateway forwards; administrative ones (fault injection, membership
changes) are not reachable from the mesh."""


def _valid_body(message: Message) -> tuple[bytes, bytes] | None:
    body = message.payload
    if not isinstance(body, dict):
        return None
    request_id, payload = body.get('rid'), body.get('payload')
    if not isinstance(request_id, bytes) or not isinstance(payload, bytes):
        return None
    return request_id, payload


class MeshLedgerTransport:
    """A ledger client transport whose node addresses are mesh peer ids.

    It subscribes to ``node`` and keeps ledger replies in a queue for :meth:`receive`;
    other message kinds are left to the node's other handlers. ``deadline_s`` bounds the
    mesh delivery of one request attempt.
    """

    def __init__(self, node: MeshNode, *, deadline_s: float = 0.25) -> None:
        self._node = node
        self._deadline_s = deadline_s
        self._replies: queue.Queue[tuple[str, bytes, bytes]] = queue.Queue()
        self._closed = False
        self._throttle = LogThrottle(_log)
        node.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        if message.kind != LEDGER_REPLY or self._closed:
            return
        body = _valid_body(message)
        if body is None:
            self._throttle.log(logging.WARNING, 'bad-reply', 'dropped malformed ledger reply '
                               'from %s', message.sender)
            return
        self._replies.put((message.sender, body[0], body[1]))

    def send(self, address: str, request_id: bytes, payload: bytes) -> None:
        try:
            self._node.send(address, LEDGER_REQUEST, {'rid': request_id, 'payload': payload},
                            priority=Priority.PLAN, deadline_s=self._deadline_s)
        except MeshError as error:
            # The ledger client treats a lost request like a silent node and fails over.
            self._throttle.log(logging.WARNING, 'send:' + address,
                               'ledger request to %s not sent: %s', address, error)

    def receive(self, timeout_s: float) -> tuple[str, bytes, bytes] | None:
        try:
            return self._replies.get(timeout=max(timeout_s, 0.0)) if timeout_s > 0 \
                else self._replies.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        # The mesh node belongs to the caller, so it stays open.
        self._closed = True


class LedgerGateway:
    """Relay ledger requests between mesh peers and one ledger node's client port.

    ``ledger_address`` is the ledger node's client address ``host:port``. Call
    :meth:`start` and :meth:`stop`, or use it as a context manager.
    """

    def __init__(self, node: MeshNode, ledger_address: str, *,
                 reply_deadline_s: float = 0.25, max_in_flight: int = 10_000) -> None:
        self._node = node
        self._ledger_address = ledger_address
        self._reply_deadline_s = reply_deadline_s
        self._max_in_flight = max_in_flight
        self._requests: queue.Queue[tuple[str, bytes, bytes]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = zmq.Context()
        self._wake_endpoint = f'inproc://ledger-gateway-{id(self)}'
        self._wake_sockets = threading.local()
        self._throttle = LogThrottle(_log)
        self.forwarded = 0
        self.replied = 0
        node.subscribe(self._on_message)

    def __enter__(self) -> 'LedgerGateway':
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> 'LedgerGateway':
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f'ledger-gateway-{self._node.node_id}')
        self._thread.start()
        ready.wait(5.0)
        return self

    def stop(self, *, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
        for sock in getattr(self, '_all_wake_sockets', []):
            sock.close(linger=0)
        self._context.term()

    def _wake(self) -> None:
        sock = getattr(self._wake_sockets, 'sock', None)
        if sock is None:
            sock = self._context.socket(zmq.PUSH)
            sock.linger = 0
            sock.connect(self._wake_endpoint)
            self._wake_sockets.sock = sock
            self.__dict__.setdefault('_all_wake_sockets', []).append(sock)
        try:
            sock.send(b'', zmq.NOBLOCK)
        except zmq.Again:
            pass  # a wake-up is already queued

    def _on_message(self, message: Message) -> None:
        if message.kind != LEDGER_REQUEST or self._stop.is_set():
            return
        body = _valid_body(message)
        if body is None:
            self._throttle.log(logging.WARNING, 'bad-request', 'dropped malformed ledger '
                               'request from %s', message.sender)
            return
        problem = self._check_request(message.sender, body[1])
        if problem is not None:
            self._throttle.log(logging.WARNING, 'rejected:' + message.sender,
                               'rejected ledger request from %s: %s', message.sender, problem)
            self._node.send(message.sender, LEDGER_REPLY, {'rid': body[0], 'payload': encode(
                {'status': 'error', 'reason': 'not_authorized', 'message': problem})},
                priority=Priority.PLAN, deadline_s=self._reply_deadline_s)
            return
        if self._requests.qsize() >= self._max_in_flight:
            self._throttle.log(logging.WARNING, 'full', 'ledger gateway queue full; dropped '
                               'request from %s (the client retries)', message.sender)
            return
        self._requests.put((message.sender, body[0], body[1]))
        self._wake()

    @staticmethod
    def _check_request(sender: str, payload: bytes) -> str | None:
        """Return why the gateway must not forward this request, or None if it may."""
        try:
            request = decode(payload)
        except LedgerRequestError as error:
            return f'malformed request: {error}'
        op = request.get('op')
        if op not in GATEWAY_OPS:
            return (f'operation {op!r} is not available through the mesh; allowed: '
                    f'{sorted(GATEWAY_OPS)}')
        if op in ROBOT_OPS and request.get('robot_id') != sender:
            return (f'mesh peer {sender!r} may act only for itself, not for robot '
                    f'{request.get("robot_id")!r}')
        return None

    def _run(self, ready: threading.Event) -> None:
        wake = self._context.socket(zmq.PULL)
        wake.linger = 0
        wake.bind(self._wake_endpoint)
        dealer = self._context.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(f'tcp://{self._ledger_address}')
        poller = zmq.Poller()
        poller.register(wake, zmq.POLLIN)
        poller.register(dealer, zmq.POLLIN)
        # Request ids are unique per client, not across clients, so replies are matched by
        # (robot, request id).
        waiting: dict[tuple[str, bytes], int] = {}
        ready.set()
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if wake in events:
                    while True:
                        try:
                            wake.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                self._forward(dealer, waiting)
                if dealer in events:
                    self._relay_replies(dealer, waiting)
        finally:
            wake.close()
            dealer.close()

    def _forward(self, dealer: zmq.Socket, waiting: dict) -> None:
        while True:
            try:
                sender, request_id, payload = self._requests.get_nowait()
            except queue.Empty:
                return
            # The ledger gets a gateway-unique id, so two robots' equal ids cannot collide.
            gateway_id = f'{sender}\0'.encode() + request_id
            if len(waiting) >= self._max_in_flight:
                # Forget the oldest unanswered request; its client has long failed over.
                waiting.pop(next(iter(waiting)))
            waiting[(sender, request_id)] = waiting.get((sender, request_id), 0) + 1
            try:
                dealer.send_multipart([gateway_id, payload], zmq.NOBLOCK)
                self.forwarded += 1
            except zmq.Again:
                self._throttle.log(logging.WARNING, 'ledger-full', 'ledger node %s is not '
                                   'accepting requests; dropped one from %s',
                                   self._ledger_address, sender)

    def _relay_replies(self, dealer: zmq.Socket, waiting: dict) -> None:
        while True:
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2 or b'\0' not in frames[0]:
                continue
            sender_bytes, _, request_id = frames[0].partition(b'\0')
            sender = sender_bytes.decode('utf-8', 'replace')
            if waiting.pop((sender, request_id), None) is None:
                continue  # a second reply to a request that already got one
            future = self._node.send(sender, LEDGER_REPLY,
                                     {'rid': request_id, 'payload': frames[1]},
                                     priority=Priority.PLAN,
                                     deadline_s=self._reply_deadline_s)
            future.add_done_callback(self._count_reply)

    def _count_reply(self, future) -> None:
        try:
            future.result()
            self.replied += 1
        except DeliveryFailedError as error:
            self._throttle.log(logging.WARNING, 'reply-failed', 'ledger reply not delivered: '
                               '%s', error)
