"""Tests of the vote record and the fsync hooks, on files in a temporary folder."""

from __future__ import annotations

from pysyncobj import pickle as syncobj_pickle

from mapl_robotics.coordination.durability import DurableRaftState


def test_vote_grant_recorded_before_send(tmp_path):
    durable = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    assert durable.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 5})
    assert (tmp_path / 'votes.log').read_text() == '5 127.0.0.1:2\n'
    assert durable.votes.term == 5


def test_restarted_node_never_votes_twice_in_term(tmp_path):
    first = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    assert first.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 5})
    first.close()
    restarted = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    assert not restarted.before_send('127.0.0.1:3', {'type': 'response_vote', 'term': 5})
    assert not restarted.before_send('127.0.0.1:3', {'type': 'request_vote', 'term': 5})
    assert restarted.dropped_votes == 2
    # The same candidate may get its grant again, and a later term is a new election.
    assert restarted.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 5})
    assert restarted.before_send('127.0.0.1:3', {'type': 'response_vote', 'term': 6})
    assert not restarted.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 4})


def test_own_candidacy_counts_as_vote(tmp_path):
    durable = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    assert durable.before_send('127.0.0.1:2', {'type': 'request_vote', 'term': 3})
    assert durable.before_send('127.0.0.1:3', {'type': 'request_vote', 'term': 3})
    assert not durable.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 3})


def test_reconcile_raises_stale_meta_term(tmp_path):
    durable = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    durable.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 9})
    (tmp_path / 'raft.journal.meta').write_bytes(
        syncobj_pickle.dumps({'currentTerm': 2, 'votedForNodeId': None, 'raftCommitIndex': 4}))
    DurableRaftState(tmp_path, self_id='127.0.0.1:1').reconcile_meta()
    meta = syncobj_pickle.loads((tmp_path / 'raft.journal.meta').read_bytes())
    assert meta['currentTerm'] == 9
    assert meta['votedForNodeId'] == '127.0.0.1:2'
    assert meta['raftCommitIndex'] == 4


def test_reconcile_rebuilds_missing_meta(tmp_path):
    durable = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    durable.before_send('127.0.0.1:2', {'type': 'response_vote', 'term': 4})
    DurableRaftState(tmp_path, self_id='127.0.0.1:1').reconcile_meta()
    meta = syncobj_pickle.loads((tmp_path / 'raft.journal.meta').read_bytes())
    assert meta['currentTerm'] == 4


def test_heartbeat_does_not_sync(tmp_path):
    durable = DurableRaftState(tmp_path, self_id='127.0.0.1:1')
    (tmp_path / 'raft.journal').write_bytes(bytes(64))
    assert durable.before_send('127.0.0.1:2', {'type': 'append_entries', 'term': 1})
    assert durable.syncs == 0
    assert durable.before_send('127.0.0.1:2', {'type': 'next_node_idx'})
    assert durable.syncs == 1
