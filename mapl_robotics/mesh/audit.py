"""Append-only audit log of security events and plan commits (JSON lines)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from mapl_robotics.mesh.metrics import LogThrottle

__all__ = ['AuditLog', 'AUTH_REJECTED', 'SENDER_MISMATCH', 'PLAN_COMMITTED', 'PEER_CONNECTED',
           'NODE_STARTED', 'NODE_STOPPED']

_log = logging.getLogger(__name__)

AUTH_REJECTED = 'auth_rejected'
SENDER_MISMATCH = 'sender_mismatch'
PLAN_COMMITTED = 'plan_committed'
PEER_CONNECTED = 'peer_connected'
NODE_STARTED = 'node_started'
NODE_STOPPED = 'node_stopped'
_SECURITY_EVENTS = {AUTH_REJECTED, SENDER_MISMATCH}


class AuditLog:
    """Write one JSON object per line: ``{"time_s", "node", "event", ...fields}``.

    Every event is written (an audit log does not sample); only the warning that echoes a
    security event to the Python log is rate-limited. With ``path=None`` events go to the
    Python log only. Thread-safe, because the authenticator thread and the mesh I/O thread
    both record events.
    """

    def __init__(self, path: str | Path | None, *, node_id: str) -> None:
        self.path = None if path is None else Path(path)
        self.node_id = node_id
        self._lock = threading.Lock()
        self._file = None
        self._throttle = LogThrottle(_log)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, 'a', encoding='utf-8')

    def record(self, event: str, **fields) -> None:
        entry = {'time_s': round(time.time(), 6), 'node': self.node_id, 'event': event,
                 **fields}
        line = json.dumps(entry, sort_keys=True, default=str)
        if event in _SECURITY_EVENTS:
            self._throttle.log(logging.WARNING, event, 'security event on %s: %s',
                               self.node_id, line)
        with self._lock:
            if self._file is not None and not self._file.closed:
                self._file.write(line + '\n')
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()

    @staticmethod
    def read(path: str | Path) -> list[dict]:
        """Return the entries of an audit log file, oldest first."""
        with open(path, encoding='utf-8') as handle:
            return [json.loads(line) for line in handle if line.strip()]
