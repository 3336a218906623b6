"""Split votes: a candidate that meets another candidate retries soon, staggered by rank."""

from __future__ import annotations

import pytest
from pysyncobj.monotonic import monotonic as syncobj_monotonic

from mapl_robotics.coordination import LedgerSettings, free_ports
from mapl_robotics.coordination.ledger_node import LedgerNode

CANDIDATE = 1
FOLLOWER = 0


@pytest.fixture
def lone_node(tmp_path):
    """A node whose two peers never start, so it never campaigns on its own."""
    raft_ports = free_ports(3)
    addresses = [f'127.0.0.1:{port}' for port in raft_ports]
    nodes = []

    def build(rank: int) -> LedgerNode:
        peers = tuple(address for index, address in enumerate(addresses) if index != rank)
        node = LedgerNode(LedgerSettings(self_address=addresses[rank], peers=peers,
                                         client_address=f'127.0.0.1:{free_ports(1)[0]}',
                                         journal_dir=tmp_path / f'node{rank}'))
        nodes.append(node)
        return node

    yield build, sorted(addresses)
    for node in nodes:
        node.stop()


def _make_candidate(node: LedgerNode, term: int) -> None:
    syncobj = node.syncobj
    syncobj._SyncObj__raftCurrentTerm = term
    syncobj._SyncObj__votedForNodeId = syncobj.selfNode.id
    syncobj._SyncObj__raftState = CANDIDATE
    syncobj._SyncObj__raftElectionDeadline = syncobj_monotonic() + 100.0


def _vote_request(term: int) -> dict:
    return {'type': 'request_vote', 'term': term, 'last_log_index': 0, 'last_log_term': 0}


def _other(node: LedgerNode):
    return next(iter(node.syncobj.otherNodes))


@pytest.mark.parametrize('rank', [0, 1, 2])
def test_same_term_request_staggers_retry(lone_node, rank):
    build, addresses = lone_node
    node = build(rank)
    own_rank = addresses.index(node.settings.self_address)
    _make_candidate(node, term=7)
    before_s = syncobj_monotonic()
    node.syncobj._SyncObj__transport._onMessageReceived(_other(node), _vote_request(7))
    after_s = syncobj_monotonic()
    deadline_s = node.syncobj._SyncObj__raftElectionDeadline
    period_s = node.settings.append_entries_period_s
    assert deadline_s >= before_s + period_s * (1 + own_rank)
    assert deadline_s <= after_s + period_s * (1 + own_rank)
    assert node.status()['split_votes'] == 1
    assert node.syncobj._SyncObj__raftState == CANDIDATE


def test_higher_term_request_is_not_a_split(lone_node):
    build, _ = lone_node
    node = build(0)
    _make_candidate(node, term=7)
    node.syncobj._SyncObj__transport._onMessageReceived(_other(node), _vote_request(8))
    assert node.status()['split_votes'] == 0
    assert node.syncobj._SyncObj__raftState == FOLLOWER
    assert node.syncobj.raftCurrentTerm == 8


def test_follower_ignores_same_term_request(lone_node):
    build, _ = lone_node
    node = build(1)
    node.syncobj._SyncObj__raftCurrentTerm = 7
    node.syncobj._SyncObj__transport._onMessageReceived(_other(node), _vote_request(7))
    assert node.status()['split_votes'] == 0
