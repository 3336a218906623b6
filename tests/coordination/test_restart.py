"""Durability on real clusters: full-cluster SIGKILL and restarts in the middle of elections."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
import pytest

from ledger_helpers import history_tokens, lane_plan, same_histories, wait_until
from mapl_robotics.coordination import audit_history
from mapl_robotics.errors import LedgerUnavailableError
from mapl_robotics.geometry import Trajectory


def _commit_legs(robots, fleet_clock, count, acknowledged):
    """Commit ``count`` plans round-robin over ``robots`` (lane i at y = 2 i)."""
    targets = {robot.robot_id: 2.0 for robot in robots}
    committed = 0
    for attempt in range(count * 20):
        robot = robots[attempt % len(robots)]
        lane = int(robot.robot_id[1:])
        try:
            view = robot.read()
            rows = lane_plan(view.robots[robot.robot_id].trajectory,
                             t0_s=fleet_clock() + 0.3, target_x_m=targets[robot.robot_id],
                             y_m=2.0 * lane)
            result = robot.propose(Trajectory.from_samples(rows), base_version=view.version,
                                   now_s=fleet_clock())
        except LedgerUnavailableError:
            continue
        if result.committed:
            acknowledged.append(tuple(result.token.to_list()))
            targets[robot.robot_id] = 2.0 - targets[robot.robot_id]
            committed += 1
            if committed == count:
                return
    raise AssertionError(f'only {committed} of {count} plans committed')


def _node_term(cluster, index):
    status = cluster.status(index, timeout_s=2.0)
    return None if status is None else status['term']


@pytest.mark.parametrize('lose_meta', [False, True], ids=['journal', 'meta-lost'])
def test_full_cluster_sigkill_keeps_commits(make_cluster, make_robot_client, fleet_clock,
                                           lose_meta):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    robots = []
    for lane in range(2):
        robot = make_robot_client(cluster.client_addresses, f'r{lane}', timeout_s=3.0)
        assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 2.0 * lane, 0.0),
                              now_s=fleet_clock()).committed
        robots.append(robot)
    acknowledged: list[tuple[int, int]] = []
    _commit_legs(robots, fleet_clock, 6, acknowledged)
    # Node `lagging` misses the next commits: the others keep going without it.
    leader = cluster.wait_for_leader()
    lagging = next(index for index in range(3) if index != leader)
    others = [index for index in range(3) if index != lagging]
    cluster.set_blocked(lagging, others)
    for index in others:
        cluster.set_blocked(index, [lagging])
    _commit_legs(robots, fleet_clock, 6, acknowledged)
    terms_before = {index: _node_term(cluster, index) for index in range(3)}
    lagging_history = history_tokens(cluster, lagging, timeout_s=10.0)
    assert lagging_history is not None
    lagging_tokens = {token for token, _, _ in lagging_history}
    assert not set(acknowledged[-6:]) & lagging_tokens

    for index in range(3):
        cluster.kill(index)
    if lose_meta:
        # What pysyncobj releases before 0.3.17 left behind: no stored term or vote.
        for index in range(3):
            (cluster.journal_dir(index) / 'raft.journal.meta').unlink(missing_ok=True)
    # Staggered restart, the most lagging node last, with commits in between.
    cluster.start(others[0])
    time.sleep(0.5)
    cluster.start(others[1])
    cluster.wait_for_leader()
    for index in others:
        assert _node_term(cluster, index) >= terms_before[index]
    after_restart: list[tuple[int, int]] = []
    _commit_legs(robots, fleet_clock, 4, after_restart)
    cluster.start(lagging)
    _commit_legs(robots, fleet_clock, 4, after_restart)
    expected = set(acknowledged) | set(after_restart)

    def converged():
        histories = same_histories(cluster, range(3))
        if histories is None:
            return None
        return histories if expected <= {token for token, _, _ in histories[0]} else None

    histories = wait_until(converged, timeout_s=60.0, period_s=0.2)
    assert histories, 'nodes did not converge on every acknowledged commit after the restart'
    tokens = [token for token, _, _ in histories[0]]
    assert len(tokens) == len(set(tokens))
    # Commit order is the log order, and no acknowledged commit was replaced.
    positions = [tokens.index(token) for token in acknowledged + after_restart]
    assert positions == sorted(positions)
    for index in range(3):
        records = cluster.client.history_records(cluster.client_addresses[index])
        assert audit_history(records, clearance_m=0.1) == []


def test_restart_mid_election_never_votes_twice(make_cluster, make_robot_client,
                                                fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    robot = make_robot_client(cluster.client_addresses, 'r0', timeout_s=3.0)
    assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=fleet_clock()).committed
    rng = np.random.default_rng(2024)
    leaders_by_term: dict[int, set[str]] = collections.defaultdict(set)
    stop = threading.Event()

    def watch_leaders():
        # At most one leader per term is what single votes per term guarantee.
        while not stop.is_set():
            for index in range(len(cluster.raft_addresses)):
                status = cluster.status(index, timeout_s=0.2)
                if status is not None and status['state'] == 'leader':
                    leaders_by_term[status['term']].add(status['self'])
            stop.wait(0.02)

    watcher = threading.Thread(target=watch_leaders)
    watcher.start()
    acknowledged: list[tuple[int, int]] = []
    try:
        for round_index in range(3):
            leader = cluster.wait_for_leader()
            cluster.kill(leader)
            time.sleep(float(rng.uniform(0.05, 0.25)))
            # Restart a voter while the others elect a new leader.
            voter = int(rng.choice([index for index in range(3) if index != leader]))
            cluster.kill(voter)
            if round_index % 2 == 1:
                (cluster.journal_dir(voter) / 'raft.journal.meta').unlink(missing_ok=True)
            cluster.start(voter)
            cluster.start(leader)
            cluster.wait_for_leader()
            _commit_legs([robot], fleet_clock, 1, acknowledged)
    finally:
        stop.set()
        watcher.join(timeout=10)
    for term, leaders in leaders_by_term.items():
        assert len(leaders) == 1, f'term {term} had leaders {sorted(leaders)}'
    for index in range(3):
        votes = collections.defaultdict(set)
        log_path = cluster.journal_dir(index) / 'votes.log'
        for line in log_path.read_text().splitlines() if log_path.exists() else []:
            term, candidate = line.split()
            votes[int(term)].add(candidate)
        double = {term: candidates for term, candidates in votes.items() if len(candidates) > 1}
        assert not double, f'node {index} voted twice: {double}'
    histories = wait_until(lambda: same_histories(cluster, range(3)), timeout_s=60.0)
    assert histories
    assert set(acknowledged) <= {token for token, _, _ in histories[0]}
