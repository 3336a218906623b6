"""Durable Raft state for a ledger node: fsync of the journal and a fsync'ed vote record.

pysyncobj 0.3.17 writes log entries into an mmap of its journal file and never syncs it. It
stores ``currentTerm`` and ``votedFor`` in a ``.meta`` file with a plain write and rename,
without fsync. Older releases did not store them at all, so a full-cluster restart could let a
lagging node win an election and overwrite committed entries (reported upstream in
bakwc/PySyncObj issues 84 and 201). Raft needs all three on stable storage before a node sends
any message that reflects them.

:class:`DurableRaftState` closes that gap from outside pysyncobj:

* :meth:`before_send` runs in the node's transport before every Raft message leaves. Before an
  entry acknowledgement (``next_node_idx``) or an ``append_entries`` that carries entries, it
  fsyncs the journal and the meta file, so a commit is acknowledged only once a quorum has it
  on disk. Before a vote request or vote grant it checks and updates its own vote record,
  written with write, fsync, rename and directory fsync: a grant for a term in which the node
  already voted for another candidate, or for a term older than the newest term it voted in,
  is dropped. A node therefore never grants two votes in one term, whatever pysyncobj's
  in-memory state says after a restart.
* :meth:`reconcile_meta` runs before pysyncobj starts and raises pysyncobj's stored term to the
  vote record's term, so a node never restarts into an older term than it voted in.
* :meth:`sync_if_changed` runs on every tick and covers a single-node cluster, whose leader
  commits without sending anything.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path

import msgpack
from pysyncobj import pickle as syncobj_pickle

__all__ = ['DurableRaftState', 'VoteRecord']

logger = logging.getLogger(__name__)

# pysyncobj FileJournal header: name (24 bytes), version (8), format (4), last record offset (4).
_LAST_RECORD_OFFSET_POSITION = 24 + 8 + 4


class VoteRecord:
    """Highest term this node voted in and the candidate it voted for, kept on disk.

    Every vote is also appended to ``votes.log`` next to the record (one ``term candidate``
    line each), an audit trail that the tests read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log_path = path.with_name('votes.log')
        self.term = 0
        self.voted_for: str | None = None
        if path.exists():
            data = msgpack.unpackb(path.read_bytes(), raw=False)
            self.term = int(data['term'])
            self.voted_for = data['voted_for']

    def store(self, term: int, voted_for: str) -> None:
        """Write the record with write, fsync, rename and directory fsync."""
        temporary = self.path.with_suffix('.tmp')
        with open(temporary, 'wb') as handle:
            handle.write(msgpack.packb({'term': term, 'voted_for': voted_for}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        _fsync_dir(self.path.parent)
        self.term, self.voted_for = term, voted_for
        with open(self.log_path, 'a', encoding='utf-8') as log:
            log.write(f'{term} {voted_for}\n')
            log.flush()
            os.fsync(log.fileno())


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DurableRaftState:
    """fsync and vote-guard hooks around one node's pysyncobj journal; see the module doc."""

    def __init__(self, journal_dir: Path, *, self_id: str) -> None:
        self.journal_dir = Path(journal_dir)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.self_id = self_id
        self.journal_path = self.journal_dir / 'raft.journal'
        self.meta_path = self.journal_dir / 'raft.journal.meta'
        self.dump_path = self.journal_dir / 'raft.dump'
        self.votes = VoteRecord(self.journal_dir / 'vote.record')
        self._lock = threading.Lock()
        self._journal_fd: int | None = None
        self._synced_offset = -1
        self._synced_meta: tuple[int, int] | None = None
        self.dropped_votes = 0
        self.syncs = 0

    # -- startup --------------------------------------------------------------------------------

    def reconcile_meta(self) -> None:
        """Raise pysyncobj's stored term and vote to this node's vote record, if behind."""
        meta: dict = {}
        if self.meta_path.exists():
            try:
                meta = syncobj_pickle.loads(self.meta_path.read_bytes())
            except Exception:  # noqa: BLE001 - pysyncobj itself treats a bad meta file as empty
                logger.warning('journal meta file %s is unreadable; rebuilding it from the '
                               'vote record', self.meta_path)
                meta = {}
        if meta.get('currentTerm', 0) >= self.votes.term:
            return
        logger.warning('journal meta term %s is behind the vote record term %s; raising it',
                       meta.get('currentTerm', 0), self.votes.term)
        meta['currentTerm'] = self.votes.term
        meta['votedForNodeId'] = self.votes.voted_for
        temporary = self.meta_path.with_suffix('.reconcile')
        with open(temporary, 'wb') as handle:
            handle.write(syncobj_pickle.dumps(meta))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.meta_path)
        _fsync_dir(self.journal_dir)

    # -- fsync ----------------------------------------------------------------------------------

    def _journal_offset(self) -> int:
        if self._journal_fd is None:
            if not self.journal_path.exists():
                return -1
            self._journal_fd = os.open(self.journal_path, os.O_RDONLY)
        data = os.pread(self._journal_fd, 4, _LAST_RECORD_OFFSET_POSITION)
        return struct.unpack('<I', data)[0] if len(data) == 4 else -1

    def sync_if_changed(self) -> None:
        """fsync the journal and the meta file if either changed since the last sync."""
        with self._lock:
            offset = self._journal_offset()
            if offset != self._synced_offset and self._journal_fd is not None:
                os.fsync(self._journal_fd)
                self._synced_offset = offset
                self.syncs += 1
            try:
                stat = self.meta_path.stat()
            except FileNotFoundError:
                return
            meta_key = (stat.st_ino, stat.st_mtime_ns)
            if meta_key != self._synced_meta:
                descriptor = os.open(self.meta_path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                _fsync_dir(self.journal_dir)
                self._synced_meta = meta_key

    # -- transport hook -------------------------------------------------------------------------

    def before_send(self, node_id: str, message: object) -> bool:
        """Make the state a message reflects durable; return False to drop the message."""
        if not isinstance(message, dict):
            return True
        kind = message.get('type')
        if kind == 'next_node_idx' or (kind == 'append_entries' and (
                message.get('entries') or 'transmission' in message)):
            self.sync_if_changed()
            return True
        if kind == 'request_vote':
            return self._record_vote(int(message['term']), self.self_id, kind)
        if kind == 'response_vote':
            return self._record_vote(int(message['term']), node_id, kind)
        return True

    def _record_vote(self, term: int, candidate: str, kind: str) -> bool:
        with self._lock:
            if term < self.votes.term or (term == self.votes.term
                                          and self.votes.voted_for != candidate):
                self.dropped_votes += 1
                logger.warning('dropped %s for %s in term %s: this node already voted for %s '
                               'in term %s', kind, candidate, term, self.votes.voted_for,
                               self.votes.term)
                return False
            if term != self.votes.term:
                self.votes.store(term, candidate)
        # The vote message may also acknowledge a term change stored in the meta file.
        self.sync_if_changed()
        return True

    def close(self) -> None:
        with self._lock:
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None
