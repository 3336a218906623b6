"""Start and stop a ledger cluster of node processes on one host (tests, benchmarks, sim).

Each node is its own OS process (``mapl ledger node``) talking TCP on the given host, with its
journal in its own folder, so nodes can be SIGKILLed and restarted from their journals.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from mapl_robotics.coordination.client import LedgerClient
from mapl_robotics.errors import LedgerError, LedgerUnavailableError
from mapl_robotics.runtime import python_module_command

__all__ = ['LocalCluster', 'free_ports']

logger = logging.getLogger(__name__)


def free_ports(count: int, *, host: str = '127.0.0.1') -> list[int]:
    """Return ``count`` distinct TCP ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalCluster:
    """A ledger cluster of ``size`` node processes on ``host``; use as a context manager.

    Node ``i`` keeps its journal in ``base_dir/node<i>``. Its output goes to
    ``log_dir/ledger_<i>.log``, or to ``node.log`` in its journal folder without ``log_dir``.
    """

    def __init__(self, size: int, base_dir: Path | str, *, host: str = '127.0.0.1',
                 extra_args: Sequence[str] = (), fault_injection: bool = True,
                 admin: bool = True, log_level: str = 'warning',
                 log_dir: Path | str | None = None) -> None:
        if size < 1:
            raise LedgerError(f'cluster size {size} must be at least 1')
        self.base_dir = Path(base_dir)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.host = host
        self.extra_args = list(extra_args)
        self.fault_injection = fault_injection
        self.admin = admin
        self.log_level = log_level
        ports = free_ports(2 * size, host=host)
        self.raft_addresses = [f'{host}:{port}' for port in ports[:size]]
        self.client_addresses = [f'{host}:{port}' for port in ports[size:]]
        self.members = list(range(size))
        self.processes: dict[int, subprocess.Popen] = {}
        # One client per thread, because a LedgerClient's sockets are not thread-safe.
        self._local = threading.local()
        self._clients: list[LedgerClient] = []
        self._clients_lock = threading.Lock()

    def __enter__(self) -> 'LocalCluster':
        self.start_all()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- nodes ----------------------------------------------------------------------------------

    def journal_dir(self, index: int) -> Path:
        return self.base_dir / f'node{index}'

    def log_path(self, index: int) -> Path:
        """Return the file that receives node ``index``'s standard output and error."""
        if self.log_dir is None:
            return self.journal_dir(index) / 'node.log'
        return self.log_dir / f'ledger_{index}.log'

    def add_slot(self) -> int:
        """Reserve addresses for one more node and return its index (not yet a member)."""
        raft_port, client_port = free_ports(2, host=self.host)
        self.raft_addresses.append(f'{self.host}:{raft_port}')
        self.client_addresses.append(f'{self.host}:{client_port}')
        return len(self.raft_addresses) - 1

    def start(self, index: int, *, peers: Sequence[int] | None = None) -> None:
        """Start node ``index`` (again) from its journal folder."""
        if index in self.processes and self.processes[index].poll() is None:
            raise LedgerError(f'ledger node {index} is already running')
        peers = self.members if peers is None else peers
        peer_addresses = [self.raft_addresses[i] for i in peers if i != index]
        command = [*python_module_command('mapl_robotics.cli'),
                   '--log-level', self.log_level, 'ledger', 'node', '--id', f'node{index}',
                   '--self', self.raft_addresses[index], '--peers', ','.join(peer_addresses),
                   '--client', self.client_addresses[index],
                   '--journal-dir', str(self.journal_dir(index)),
                   # Nodes stop on their own if this process dies without closing the cluster.
                   '--parent-pid', str(os.getpid()), *self.extra_args]
        if self.fault_injection:
            command.append('--fault-injection')
        if self.admin:
            command.append('--admin')
        self.journal_dir(index).mkdir(parents=True, exist_ok=True)
        self.log_path(index).parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(index), 'ab')
        try:
            self.processes[index] = subprocess.Popen(command, stdout=log, stderr=log,
                                                     stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def start_all(self) -> None:
        for index in self.members:
            self.start(index)

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` and wait for it to exit."""
        process = self.processes.get(index)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def terminate(self, index: int, *, timeout_s: float = 10.0) -> None:
        """SIGTERM node ``index``; SIGKILL it if it has not exited after ``timeout_s``."""
        process = self.processes.get(index)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning('ledger node %s ignored SIGTERM; killing it', index)
            self.kill(index)

    def is_running(self, index: int) -> bool:
        process = self.processes.get(index)
        return process is not None and process.poll() is None

    def close(self) -> None:
        """Stop every node and close the cluster's clients."""
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()
        for index in list(self.processes):
            self.terminate(index, timeout_s=5.0)
        self.processes.clear()

    # -- queries --------------------------------------------------------------------------------

    @property
    def client(self) -> LedgerClient:
        """This thread's client without robot identity, for status, reads and faults."""
        client = getattr(self._local, 'client', None)
        if client is None or client.addresses != self.client_addresses:
            client = LedgerClient(list(self.client_addresses), timeout_s=2.0)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def status(self, index: int, *, timeout_s: float = 0.5) -> dict | None:
        """Return node ``index``'s status, or None if it does not reply."""
        if not self.is_running(index):
            return None
        try:
            return self.client.status(self.client_addresses[index], timeout_s=timeout_s)
        except LedgerUnavailableError:
            return None

    def leader_index(self) -> int | None:
        """Return the index of a running node that reports itself leader, or None."""
        for index in list(self.processes):
            status = self.status(index, timeout_s=0.3)
            if status is not None and status['state'] == 'leader':
                return index
        return None

    def wait_for_leader(self, *, timeout_s: float = 60.0,
                        exclude: Sequence[int] = ()) -> int:
        """Poll until a running node outside ``exclude`` is leader and return its index."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = self.leader_index()
            if leader is not None and leader not in exclude:
                return leader
            time.sleep(0.02)
        running = sum(process.poll() is None for process in self.processes.values())
        raise LedgerUnavailableError(f'no ledger leader within {timeout_s} s, with {running} of '
                                     f'{len(self.processes)} nodes running; see the node logs '
                                     f'under {self.log_dir or self.base_dir}')

    def set_blocked(self, index: int, blocked: Sequence[int]) -> None:
        """Make node ``index`` drop Raft traffic to and from the nodes ``blocked``."""
        reply = self.client.request({'op': 'fault',
                                     'blocked': [self.raft_addresses[i] for i in blocked]},
                                    address=self.client_addresses[index], timeout_s=2.0)
        if reply.get('status') != 'ok':
            raise LedgerError(f'fault request to node {index} failed: {reply}')

    def pids(self) -> dict[int, int]:
        return {index: process.pid for index, process in self.processes.items()
                if process.poll() is None}

