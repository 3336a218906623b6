"""Ask the plan ledger replicas for the leader and the Raft term (fleet node diagnostics).

Each ledger node replies to a ``{'op': 'status'}`` request on its client socket (its Raft port
plus 1000 unless configured otherwise) with its view of the leader and its current term. The
probe asks every replica at once and keeps the answer with the highest term that names a
leader, so a replica that has not yet heard of a new election does not hide it.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Sequence

import zmq

from mapl_robotics.errors import LedgerUnavailableError

__all__ = ['LedgerProbe']

_LOG = logging.getLogger(__name__)


class LedgerProbe:
    """Reads the ledger leader and term from the replicas whose Raft addresses are given.

    :param timeout_s: how long one :meth:`leader_and_term` call waits for replies.
    """

    def __init__(self, raft_addresses: Sequence[str], *, timeout_s: float = 0.3) -> None:
        from mapl_robotics.coordination.settings import client_address_for
        self.raft_addresses = list(raft_addresses)
        self.timeout_s = timeout_s
        self._context = zmq.Context.instance()
        self._sockets: list[zmq.Socket] = []
        self._request_ids = itertools.count()
        for address in self.raft_addresses:
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            # Keep at most one status request queued per replica while it is unreachable.
            socket.setsockopt(zmq.SNDHWM, 1)
            socket.connect(f'tcp://{client_address_for(address)}')
            self._sockets.append(socket)

    def leader_and_term(self) -> tuple[str, int]:
        """Return ``(leader Raft address, term)`` from the replicas that reply in time.

        :raises LedgerUnavailableError: when no replica names a leader within the timeout.
        """
        from mapl_robotics.coordination.protocol import decode, encode
        if not self._sockets:
            raise LedgerUnavailableError('no ledger addresses configured; set ledger.addresses')
        request_id = str(next(self._request_ids)).encode()
        payload = encode({'op': 'status'})
        poller = zmq.Poller()
        for socket in self._sockets:
            try:
                socket.send_multipart([request_id, payload], zmq.NOBLOCK)
            except zmq.Again:
                pass
            poller.register(socket, zmq.POLLIN)
        best: tuple[str, int] = ('', -1)
        answered = 0
        deadline_s = time.monotonic() + self.timeout_s
        while answered < len(self._sockets):
            remaining_ms = int(1000 * (deadline_s - time.monotonic()))
            if remaining_ms <= 0:
                break
            for socket, _ in poller.poll(remaining_ms):
                frames = socket.recv_multipart()
                if len(frames) != 2 or frames[0] != request_id:
                    continue  # a late answer to an earlier request
                answered += 1
                try:
                    reply = decode(frames[1])
                except Exception as error:  # noqa: BLE001 - a bad reply must not stop the node
                    _LOG.warning('ledger status reply could not be decoded: %s', error)
                    continue
                leader, term = reply.get('leader'), reply.get('term')
                if isinstance(leader, str) and leader and isinstance(term, int) \
                        and term >= best[1]:
                    best = (leader, term)
        if not best[0]:
            raise LedgerUnavailableError(
                f'no ledger replica of {self.raft_addresses} named a leader within '
                f'{self.timeout_s:.2f} s; check that the ledger nodes are running')
        return best

    def close(self) -> None:
        for socket in self._sockets:
            socket.close(0)
        self._sockets = []
