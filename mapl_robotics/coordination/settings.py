"""Settings of one ledger node and their mapping to pysyncobj's ``SyncObjConf``.

Latency choices, measured by ``bench/consensus.py`` (see docs/benchmarks.md):

* ``appendEntriesUseBatch=False``: the leader sends each new entry at once and wakes its event
  loop through a pipe. With batching, every commit waits for the next append-entries period
  (pysyncobj's default is 0.1 s), and a proposal through a follower waits twice.
* Election timeouts of 0.15 to 0.3 s, the range the Raft paper (Ongaro and Ousterhout, 2014,
  section 9.3) found to elect a new leader within about 300 ms, with heartbeats every 0.03 s.
  pysyncobj requires the minimum timeout to exceed three heartbeat periods.
* ``leaderFallbackTimeout`` of 1 s, so a leader cut off from a quorum steps down soon
  (pysyncobj's default is 30 s), but a follower reply delayed by CPU load does not make a
  healthy leader step down.
* ``connectionRetryTime`` of 0.1 s, so a restarted node is reconnected at once (default 5 s).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pysyncobj import SyncObjConf

from mapl_robotics.coordination.ledger_state import LedgerConfig
from mapl_robotics.errors import LedgerConfigError

if TYPE_CHECKING:
    from mapl_robotics.spec import ConsensusSpec

__all__ = ['LedgerSettings', 'client_address_for', 'parse_address']

_NEVER_S = 10.0 * 365 * 24 * 3600


def parse_address(address: str) -> tuple[str, int]:
    """Split ``'host:port'``; raise LedgerConfigError on anything else."""
    host, separator, port = str(address).rpartition(':')
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LedgerConfigError(f'address {address!r} must be host:port with a port in '
                                '1..65535, for example 127.0.0.1:47100')
    return host, int(port)


def client_address_for(raft_address: str, *, offset: int = 1000) -> str:
    """Return the default client address of a node: same host, Raft port plus ``offset``."""
    host, port = parse_address(raft_address)
    return f'{host}:{port + offset}'


@dataclasses.dataclass(frozen=True)
class LedgerSettings:
    """Configuration of one ledger node process."""

    self_address: str
    """Raft address ``host:port`` of this node; pysyncobj uses it as the node id."""
    peers: tuple[str, ...]
    """Raft addresses of the other voting nodes."""
    journal_dir: Path
    """Folder of the journal, its meta file and the vote record."""
    client_address: str | None = None
    """Address of the client request socket; default: Raft port + 1000."""
    node_name: str = ''
    """Human-readable name used in logs."""
    append_entries_period_s: float = 0.03
    election_timeout_min_s: float = 0.15
    election_timeout_max_s: float = 0.3
    tick_s: float = 0.005
    connection_timeout_s: float = 1.0
    connection_retry_s: float = 0.1
    startup_grace_s: float = 1.0
    """Delay before a freshly started node may start its first election. Without it, a restarted
    node often times out before the leader has reconnected to it, and its higher term makes a
    healthy leader step down."""
    leader_fallback_timeout_s: float = 1.0
    """A leader that has no reply from a quorum for this long steps down. Reads go through the
    log, so a cut-off leader serves no stale reads in the meantime either way."""
    ledger: LedgerConfig = LedgerConfig()
    fault_injection: bool = False
    """Accept ``fault`` requests that cut links (tests and benchmarks only)."""
    admin: bool = False
    """Accept ``add_node`` / ``remove_node`` membership requests from clients."""
    pysyncobj_defaults: bool = False
    """Use pysyncobj's own timing defaults (for the benchmark's comparison run)."""
    parent_pid: int | None = None
    """Stop the node when this process is no longer its parent (a crashed test or runner)."""

    def __post_init__(self) -> None:
        parse_address(self.self_address)
        for peer in self.peers:
            parse_address(peer)
        if self.self_address in self.peers:
            raise LedgerConfigError(f'peers must not contain this node\'s own address '
                                    f'{self.self_address}')
        object.__setattr__(self, 'peers', tuple(self.peers))
        object.__setattr__(self, 'journal_dir', Path(self.journal_dir))
        if self.client_address is None:
            object.__setattr__(self, 'client_address', client_address_for(self.self_address))
        parse_address(self.client_address)
        if not self.election_timeout_min_s < self.election_timeout_max_s:
            raise LedgerConfigError(
                f'election_timeout_min_s={self.election_timeout_min_s} must be less than '
                f'election_timeout_max_s={self.election_timeout_max_s}')
        if not self.election_timeout_min_s > 3.0 * self.append_entries_period_s:
            raise LedgerConfigError(
                f'election_timeout_min_s={self.election_timeout_min_s} must exceed three '
                f'append_entries_period_s={self.append_entries_period_s} (pysyncobj requires '
                'it); shorten the heartbeat period or lengthen the election timeout')
        if not 0.0 < self.tick_s <= self.append_entries_period_s:
            raise LedgerConfigError(f'tick_s={self.tick_s} must be positive and at most '
                                    f'append_entries_period_s={self.append_entries_period_s}')
        if self.startup_grace_s < 0.0:
            raise LedgerConfigError(f'startup_grace_s={self.startup_grace_s} must be >= 0')
        if not self.leader_fallback_timeout_s > self.append_entries_period_s:
            raise LedgerConfigError(
                f'leader_fallback_timeout_s={self.leader_fallback_timeout_s} must exceed '
                f'append_entries_period_s={self.append_entries_period_s}')
        if self.connection_timeout_s < self.election_timeout_max_s:
            raise LedgerConfigError(
                f'connection_timeout_s={self.connection_timeout_s} must be at least '
                f'election_timeout_max_s={self.election_timeout_max_s}')

    @classmethod
    def from_spec(cls, consensus: 'ConsensusSpec', *, self_address: str,
                  peers: Sequence[str], journal_dir: Path | str, **overrides) -> 'LedgerSettings':
        """Build settings from a fleet spec's ``consensus`` section.

        The spec's Raft timing always applies. Its defaults equal this class's defaults, and
        the spec validates the same heartbeat rule, so a valid spec gives valid settings.
        """
        timing = {name: getattr(consensus, name)
                  for name in ('append_entries_period_s', 'election_timeout_min_s',
                               'election_timeout_max_s', 'tick_s')}
        return cls(self_address=self_address, peers=tuple(peers), journal_dir=Path(journal_dir),
                   **{**timing, **overrides})

    def to_syncobj_conf(self, *, on_state_changed=None) -> SyncObjConf:
        """Return the pysyncobj configuration for this node."""
        journal = self.journal_dir / 'raft.journal'
        dump = self.journal_dir / 'raft.dump'
        # NOTE: log compaction stays off. pysyncobj rewrites the journal in place when it
        # compacts (FileJournal.deleteEntriesTo), and a crash during the rewrite loses entries
        # this node has acknowledged. The journal therefore grows by one entry per request.
        common = dict(journalFile=str(journal), fullDumpFile=str(dump),
                      dynamicMembershipChange=True, commandsWaitLeader=True,
                      logCompactionMinEntries=2 ** 62, logCompactionMinTime=_NEVER_S,
                      onStateChanged=on_state_changed)
        if self.pysyncobj_defaults:
            return SyncObjConf(**common)
        return SyncObjConf(
            appendEntriesPeriod=self.append_entries_period_s,
            raftMinTimeout=self.election_timeout_min_s,
            raftMaxTimeout=self.election_timeout_max_s,
            autoTickPeriod=self.tick_s,
            appendEntriesUseBatch=False,
            connectionTimeout=self.connection_timeout_s,
            connectionRetryTime=self.connection_retry_s,
            leaderFallbackTimeout=self.leader_fallback_timeout_s,
            **common)
