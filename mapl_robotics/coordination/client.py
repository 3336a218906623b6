"""Client of the plan ledger: signed robot requests, quorum reads, node failover.

A :class:`LedgerClient` sends each request to one node and, when no final reply arrives within
``attempt_timeout_s``, sends the identical request to the next node as well, until
``timeout_s``. Resending is safe because robot requests carry a ``request_id`` and the ledger
returns the stored result for a repeated one, so a request commits at most once however often
it is sent. The transport sits behind :class:`ClientTransport` (ZeroMQ DEALER sockets by
default), so another transport, such as the mesh, can carry the same messages.

A client is not thread-safe: use it from one thread at a time. A call made while another
thread's request is in progress raises :class:`ClientBusyError` instead of sharing the sockets.
A call after :meth:`LedgerClient.close` raises :class:`ClientClosedError`.

The constructor and every call raise :class:`LedgerConfigError` for invalid settings. Timeouts
must be finite numbers of seconds greater than 0. With the ZeroMQ transport, every node address
must be ``HOST:PORT`` with a port in 1-65535.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import numbers
import os
import re
import threading
import time
from typing import Protocol, Sequence

import zmq

from mapl_robotics.coordination.ledger_state import CommitRecord, FencingToken
from mapl_robotics.coordination.protocol import (MAX_REPLY_BYTES, decode, encode,
                                                 public_key_of, sign_request)
from mapl_robotics.errors import (ClientBusyError, ClientClosedError, LedgerConfigError,
                                  LedgerError, LedgerRequestError, LedgerUnavailableError,
                                  NotAuthorizedError)
from mapl_robotics.geometry.trajectory import Trajectory

__all__ = ['ClientTransport', 'ZmqClientTransport', 'LedgerClient', 'CommitResult',
           'RobotView', 'TurnView', 'LedgerView']

logger = logging.getLogger(__name__)


class ClientTransport(Protocol):
    """Carries request and reply frames between a client and ledger nodes."""

    def send(self, address: str, request_id: bytes, payload: bytes) -> bool:
        """Queue one request to the node at ``address`` without waiting for the network.

        Returns False if the request could not be queued, for example because there is no
        connection to that node.
        """

    def receive(self, timeout_s: float) -> tuple[str, bytes, bytes] | None:
        """Return ``(address, request_id, payload)`` of the next reply, or None on timeout."""

    def close(self) -> None:
        """Close every socket."""


class ZmqClientTransport:
    """One ZeroMQ DEALER socket per node address."""

    def __init__(self, *, context: zmq.Context | None = None) -> None:
        self._context = context or zmq.Context.instance()
        self._sockets: dict[str, zmq.Socket] = {}
        self._addresses: dict[zmq.Socket, str] = {}
        self._poller = zmq.Poller()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError('this ledger transport is closed; create a new '
                                    'ZmqClientTransport to reach the ledger again')

    def _socket(self, address: str) -> zmq.Socket:
        self._check_open()
        socket = self._sockets.get(address)
        if socket is None:
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.SNDHWM, 1000)
            socket.setsockopt(zmq.IMMEDIATE, 1)
            socket.connect(f'tcp://{address}')
            self._sockets[address] = socket
            self._addresses[socket] = address
            self._poller.register(socket, zmq.POLLIN)
        return socket

    def send(self, address: str, request_id: bytes, payload: bytes) -> bool:
        try:
            self._socket(address).send_multipart([request_id, payload], zmq.NOBLOCK)
        except zmq.Again:
            # With IMMEDIATE set, a node without a live connection does not queue messages.
            return False
        return True

    def receive(self, timeout_s: float) -> tuple[str, bytes, bytes] | None:
        self._check_open()
        events = self._poller.poll(max(0, int(timeout_s * 1000)))
        for socket, _ in events:
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            if len(frames) == 2:
                return self._addresses[socket], frames[0], frames[1]
        return None

    def close(self) -> None:
        self._closed = True
        for socket in self._sockets.values():
            self._poller.unregister(socket)
            socket.close(0)
        self._sockets.clear()
        self._addresses.clear()


@dataclasses.dataclass(frozen=True)
class CommitResult:
    """Outcome of a robot request: committed, rejected (with conflicts) or ok (no change)."""

    status: str
    op: str
    robot_id: str
    version: int
    token: FencingToken | None
    trajectory: Trajectory | None
    conflicts: tuple[str, ...]
    reason: str
    message: str

    @property
    def committed(self) -> bool:
        return self.status in ('committed', 'ok')


@dataclasses.dataclass(frozen=True)
class RobotView:
    """A robot as a quorum read saw it."""

    robot_id: str
    radius_m: float
    max_speed_mps: float
    status: str
    version: int
    token: FencingToken
    trajectory: Trajectory


@dataclasses.dataclass(frozen=True)
class TurnView:
    """The robot holding the turn, the plan it waits for, and who must clear the way."""

    holder: str
    wish: Trajectory
    must_yield: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class LedgerView:
    """Committed state at one log position, from a read that went through the Raft log."""

    token: FencingToken
    version: int
    fleet_time_s: float
    clearance_m: float
    robots: dict[str, RobotView]
    turn: TurnView | None

    def committed(self, *, exclude: str | None = None) -> dict[str, tuple[Trajectory, float]]:
        """Return ``{robot_id: (trajectory, radius_m)}`` for the planner and conflict checks."""
        return {robot_id: (view.trajectory, view.radius_m)
                for robot_id, view in self.robots.items() if robot_id != exclude}


_ERRORS = {'not_authorized': NotAuthorizedError, 'malformed': LedgerRequestError}

# A host name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r'[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]')
_ADDRESS_EXAMPLE = 'for example 127.0.0.1:47100'


def _check_timeout(name: str, value) -> float:
    """Return ``value`` as float seconds, or raise LedgerConfigError unless finite and > 0."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise LedgerConfigError(f'{name}={value!r} is invalid: give a finite number of seconds '
                                f'greater than 0, for example {name}=1.0')
    return float(value)


def _check_address(address, *, host_port: bool = True) -> str:
    """Return ``address`` if it is a usable node address, or raise LedgerConfigError.

    With ``host_port`` the address must be ``HOST:PORT`` with a port in 1-65535, as the ZeroMQ
    transport needs. Without it any non-empty string passes, for transports with their own
    naming, such as mesh node ids.
    """
    if not isinstance(address, str) or not address.strip():
        raise LedgerConfigError(f'ledger node address {address!r} is invalid: give it as '
                                f'HOST:PORT, {_ADDRESS_EXAMPLE}')
    if not host_port:
        return address
    scheme, separator, rest = address.partition('://')
    if separator:
        raise LedgerConfigError(f'ledger node address {address!r} starts with {scheme}://, '
                                f'which the client adds itself: drop it and give {rest!r}')
    host, separator, port = address.rpartition(':')
    if not separator or not _HOST.fullmatch(host):
        raise LedgerConfigError(f'ledger node address {address!r} is not HOST:PORT: write it '
                                f'like 127.0.0.1:47100, or [::1]:47100 for an IPv6 host')
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise LedgerConfigError(f'ledger node address {address!r} has port {port!r}: give a '
                                f'port in 1-65535 as HOST:PORT, {_ADDRESS_EXAMPLE}')
    return address


def _check_addresses(addresses, *, host_port: bool) -> list[str]:
    if isinstance(addresses, (str, bytes)):
        raise LedgerConfigError(f'ledger node addresses must be a list of HOST:PORT strings, '
                                f'not the single string {addresses!r}: pass [{addresses!r}]')
    if not isinstance(addresses, Sequence):
        raise LedgerConfigError(f'ledger node addresses must be a list of HOST:PORT strings, '
                                f'not {addresses!r}: pass for example [\'127.0.0.1:47100\']')
    if not addresses:
        raise LedgerConfigError('ledger node addresses are empty: a ledger client needs at '
                                f'least one node address HOST:PORT, {_ADDRESS_EXAMPLE}')
    return [_check_address(address, host_port=host_port) for address in addresses]


def _raise_for(reply: dict) -> None:
    if reply.get('status') == 'error':
        error_class = _ERRORS.get(reply.get('reason'), LedgerError)
        raise error_class(reply.get('message') or f'ledger error {reply.get("reason")}')


class LedgerClient:
    """Client of a ledger cluster, optionally acting for one robot (see the module doc)."""

    def __init__(self, addresses: Sequence[str], *, robot_id: str | None = None,
                 private_key: bytes | None = None, timeout_s: float = 1.0,
                 attempt_timeout_s: float = 0.3, transport: ClientTransport | None = None,
                 first_request_id: int | None = None) -> None:
        # Other transports name nodes their own way (mesh node ids, an in-process name).
        self._host_port = transport is None or isinstance(transport, ZmqClientTransport)
        self.addresses = _check_addresses(addresses, host_port=self._host_port)
        self.timeout_s = _check_timeout('timeout_s', timeout_s)
        self.attempt_timeout_s = _check_timeout('attempt_timeout_s', attempt_timeout_s)
        self.robot_id = robot_id
        self._private_key = private_key
        self.public_key = public_key_of(private_key) if private_key is not None else None
        self._transport = transport or ZmqClientTransport()
        self._closed = False
        # Request ids grow across restarts of the agent, because the ledger rejects a request
        # id below the last one it saw from the robot.
        self._next_request_id = (first_request_id if first_request_id is not None
                                 else time.time_ns() // 1000)
        self._rids = (f'{os.getpid()}-{id(self)}-{n}'.encode() for n in itertools.count())
        self._preferred = 0
        self._view: LedgerView | None = None
        self._in_use = threading.Lock()

    def __enter__(self) -> 'LedgerClient':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run; every later call raises ClientClosedError."""
        return self._closed

    def close(self) -> None:
        """Close the transport. A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()

    # -- raw requests ---------------------------------------------------------------------------

    def request(self, message: dict, *, timeout_s: float | None = None,
                address: str | None = None) -> dict:
        """Send ``message`` and return the first final reply; fail over between nodes.

        A reply ``unavailable`` (no leader, leader changed) moves on to the next node. Raises
        :class:`LedgerUnavailableError` when no final reply arrives within ``timeout_s``,
        :class:`LedgerConfigError` for an invalid ``timeout_s`` or ``address`` and
        :class:`ClientClosedError` after :meth:`close`.
        """
        if self._closed:
            raise ClientClosedError(
                f'ledger client of {self.robot_id or "an operator"} got {message.get("op")!r} '
                'after close(). Create a new LedgerClient to send more requests')
        if timeout_s is not None:
            timeout_s = _check_timeout('timeout_s', timeout_s)
        if address is not None:
            _check_address(address, host_port=self._host_port)
        if not self._in_use.acquire(blocking=False):
            raise ClientBusyError(
                f'ledger client of {self.robot_id or "an operator"} got {message.get("op")!r} '
                'while another thread\'s request was in progress; a client serves one thread '
                'at a time, so give each thread its own LedgerClient')
        try:
            return self._request(message, timeout_s=timeout_s, address=address)
        finally:
            self._in_use.release()

    def _request(self, message: dict, *, timeout_s: float | None,
                 address: str | None) -> dict:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        payload = encode(message)
        rid = next(self._rids)
        order = [address] if address is not None else (
            self.addresses[self._preferred:] + self.addresses[:self._preferred])
        attempt = 0
        last_reason = 'no reply'
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise LedgerUnavailableError(
                    f'no ledger node replied to {message.get("op")!r} within {timeout_s} s '
                    f'({last_reason}); tried {order}. Check that a quorum of nodes runs')
            if now >= next_send:
                target = order[attempt % len(order)]
                # Transports written before send returned a bool return None: count it as queued.
                queued = self._transport.send(target, rid, payload) is not False
                attempt += 1
                # A node that cannot take the request is skipped at once, but a full round
                # of unreachable nodes waits a little before the next round.
                skip_s = 0.01 if attempt % len(order) == 0 else 0.0
                next_send = now + (self.attempt_timeout_s if queued else skip_s)
            received = self._transport.receive(min(next_send, deadline) - time.monotonic())
            if received is None:
                continue
            source, reply_rid, reply_payload = received
            if reply_rid != rid:
                continue  # a late reply to an earlier request
            try:
                reply = decode(reply_payload, max_bytes=MAX_REPLY_BYTES)
            except LedgerRequestError as error:
                last_reason = f'undecodable reply from {source}: {error}'
                continue
            if reply.get('status') == 'error' and reply.get('reason') == 'unavailable':
                last_reason = reply.get('message', 'unavailable')
                next_send = min(next_send, time.monotonic() + 0.02)
                continue
            if source in self.addresses and address is None:
                self._preferred = self.addresses.index(source)
            return reply

    def status(self, address: str, *, timeout_s: float | None = None) -> dict:
        """Return the Raft status of the node whose client address is ``address``."""
        return self.request({'op': 'status'}, address=address, timeout_s=timeout_s)

    # -- robot operations -----------------------------------------------------------------------

    def _signed(self, op: str, now_s: float, **fields) -> dict:
        if self.robot_id is None or self._private_key is None:
            raise NotAuthorizedError(f'{op} needs a client created with robot_id and '
                                     'private_key')
        self._next_request_id += 1
        request = {'op': op, 'robot_id': self.robot_id, 'request_id': self._next_request_id,
                   'now_s': float(now_s), **fields}
        return sign_request(request, self._private_key)

    @staticmethod
    def _result(reply: dict) -> CommitResult:
        _raise_for(reply)
        token = reply.get('token')
        rows = reply.get('trajectory')
        return CommitResult(status=reply['status'], op=reply.get('op', ''),
                            robot_id=reply.get('robot_id', ''),
                            version=int(reply.get('version', 0)),
                            token=FencingToken.from_list(token) if token else None,
                            trajectory=Trajectory.from_list(rows) if rows else None,
                            conflicts=tuple(reply.get('conflicts') or ()),
                            reason=reply.get('reason', ''), message=reply.get('message', ''))

    def register(self, *, radius_m: float, max_speed_mps: float,
                 pose: tuple[float, float, float], now_s: float,
                 timeout_s: float | None = None) -> CommitResult:
        """Register this robot with a stationary hold at ``pose`` (x_m, y_m, yaw_rad)."""
        request = self._signed('register', now_s, radius_m=float(radius_m),
                               max_speed_mps=float(max_speed_mps), public_key=self.public_key,
                               pose=[float(value) for value in pose])
        return self._result(self.request(request, timeout_s=timeout_s))

    def propose(self, trajectory: Trajectory, *, base_version: int, now_s: float,
                potential_improvement_s: float = 0.0,
                timeout_s: float | None = None) -> CommitResult:
        """Propose a trajectory that starts at the robot's committed position at its start."""
        request = self._signed('propose', now_s, trajectory=trajectory.to_list(),
                               base_version=int(base_version),
                               potential_improvement_s=float(potential_improvement_s))
        return self._result(self.request(request, timeout_s=timeout_s))

    def park(self, *, now_s: float, timeout_s: float | None = None) -> CommitResult:
        """Mark this robot parked at the end of its committed trajectory."""
        return self._result(self.request(self._signed('park', now_s), timeout_s=timeout_s))

    def deregister(self, *, now_s: float, timeout_s: float | None = None) -> CommitResult:
        """Remove this robot and its occupancy; the ledger accepts it only once the robot's
        committed trajectory has ended."""
        return self._result(self.request(self._signed('deregister', now_s),
                                         timeout_s=timeout_s))

    # -- reads ----------------------------------------------------------------------------------

    def read(self, *, timeout_s: float | None = None, full: bool = False) -> LedgerView:
        """Return the committed state through a Raft log entry (a linearizable read).

        Only robots changed since the previous read are transferred; ``full`` fetches all.
        """
        since = 0 if full or self._view is None else self._view.version
        reply = self.request({'op': 'read', 'since_version': since}, timeout_s=timeout_s)
        _raise_for(reply)
        robots = {} if since == 0 else dict(self._view.robots)
        for robot_id, data in reply['robots'].items():
            robots[robot_id] = RobotView(
                robot_id=robot_id, radius_m=data['radius_m'],
                max_speed_mps=data['max_speed_mps'], status=data['status'],
                version=data['version'], token=FencingToken.from_list(data['token']),
                trajectory=Trajectory.from_list(data['trajectory']))
        present = set(reply['robot_ids'])
        robots = {robot_id: view for robot_id, view in robots.items() if robot_id in present}
        turn = None
        if reply.get('turn'):
            turn = TurnView(holder=reply['turn']['holder'],
                            wish=Trajectory.from_list(reply['turn']['wish']),
                            must_yield=tuple(reply['turn']['must_yield']))
        self._view = LedgerView(token=FencingToken.from_list(reply['token']),
                                version=reply['version'], fleet_time_s=reply['fleet_time_s'],
                                clearance_m=reply['clearance_m'], robots=robots, turn=turn)
        return self._view

    def history(self, address: str, *, timeout_s: float | None = None) -> dict:
        """Return one node's local commit history message (for audits; not a quorum read)."""
        reply = self.request({'op': 'history'}, address=address, timeout_s=timeout_s)
        _raise_for(reply)
        return reply

    def history_records(self, address: str, *,
                        timeout_s: float | None = None) -> list[CommitRecord]:
        """Return one node's commit history as records for :func:`audit_history`."""
        return [CommitRecord(token=FencingToken.from_list(item['token']),
                             version=item['version'], robot_id=item['robot_id'],
                             kind=item['kind'], t_from_s=item['t_from_s'],
                             radius_m=item['radius_m'],
                             trajectory=None if item['trajectory'] is None
                             else Trajectory.from_list(item['trajectory']))
                for item in self.history(address, timeout_s=timeout_s)['records']]
