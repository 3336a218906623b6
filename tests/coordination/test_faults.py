"""Leader kill, partition and membership change on real 3-node ledger clusters."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ledger_helpers import history_tokens, lane_plan, same_histories, wait_until
from mapl_robotics.coordination import AgentSettings, RobotAgent, audit_history
from mapl_robotics.errors import LedgerUnavailableError
from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.planning import RobotModel

# Generous bound for tests on a loaded 2-core machine; bench/consensus.py measures failover.
FAILOVER_BOUND_S = 5.0


def _register_lanes(cluster, make_robot_client, fleet_clock, count, *, addresses=None):
    robots = []
    for index in range(count):
        robot = make_robot_client(addresses or cluster.client_addresses, f'r{index}',
                                  timeout_s=3.0)
        assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 2.0 * index, 0.0),
                              now_s=fleet_clock()).committed
        robots.append(robot)
    return robots


def _propose_leg(robot, fleet_clock, lane_index, target_x_m):
    view = robot.read()
    rows = lane_plan(view.robots[robot.robot_id].trajectory, t0_s=fleet_clock() + 0.3,
                     target_x_m=target_x_m, y_m=2.0 * lane_index)
    return robot.propose(Trajectory.from_samples(rows), base_version=view.version,
                         now_s=fleet_clock())


def test_leader_kill_during_burst_loses_nothing(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    robots = _register_lanes(cluster, make_robot_client, fleet_clock, 3)
    acknowledged: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def burst(lane_index, robot):
        target = 3.0
        for _ in range(400):
            if stop.is_set():
                return
            try:
                result = _propose_leg(robot, fleet_clock, lane_index, target)
            except LedgerUnavailableError:
                continue
            if result.committed:
                with lock:
                    acknowledged.append(tuple(result.token.to_list()))
                target = 3.0 - target

    threads = [threading.Thread(target=burst, args=(index, robot))
               for index, robot in enumerate(robots)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: len(acknowledged) >= 15, timeout_s=60.0)
    old_leader = cluster.leader_index()
    assert old_leader is not None
    before_kill = len(acknowledged)
    cluster.kill(old_leader)
    killed_at = time.monotonic()
    new_leader = cluster.wait_for_leader(timeout_s=30.0, exclude=[old_leader])
    failover_s = time.monotonic() - killed_at
    assert wait_until(lambda: len(acknowledged) >= before_kill + 10, timeout_s=60.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failover_s < FAILOVER_BOUND_S
    survivors = [index for index in range(3) if index != old_leader]
    committed = {}
    for index in survivors:
        wait_until(lambda: set(acknowledged) <= {
            token for token, _, _ in history_tokens(cluster, index) or []}, timeout_s=30.0)
        tokens = history_tokens(cluster, index, timeout_s=10.0)
        committed[index] = tokens
        missing = set(acknowledged) - {token for token, _, _ in tokens}
        assert not missing, f'node {index} lost acknowledged commits {sorted(missing)[:5]}'
        records = cluster.client.history_records(cluster.client_addresses[index])
        assert audit_history(records, clearance_m=0.1) == []
    assert committed[survivors[0]] == committed[survivors[1]]
    assert new_leader in survivors


def test_partition_minority_cannot_commit(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    minority = 2
    (majority_robot,) = _register_lanes(cluster, make_robot_client, fleet_clock, 1)
    # The agent of robot a1 reaches the ledger only through node 2.
    agent_client = make_robot_client([cluster.client_addresses[minority]], 'a1', timeout_s=0.5)
    world = World(bounds_m=(-5.0, -5.0, 10.0, 10.0))
    agent = RobotAgent('a1', robot=RobotModel(radius_m=0.3, max_speed_mps=1.0,
                                              max_accel_mps2=1.0),
                       world=world, start_pose=(0.0, 6.0, 0.0), goal_xy_m=(3.0, 6.0),
                       client=agent_client, rng=np.random.default_rng(7),
                       settings=AgentSettings(ledger_timeout_s=0.5, commit_lead_s=1.0))
    try:
        step = agent.step(fleet_clock())
        deadline = time.monotonic() + 60.0
        while step.status != 'executing' and time.monotonic() < deadline:
            agent.wait_idle(10.0)
            time.sleep(0.05)
            step = agent.step(fleet_clock())
        assert step.status == 'executing', step.message
        committed_plan, committed_token = step.trajectory, step.token
        # Cut node 2 off from nodes 0 and 1, in both directions.
        cluster.set_blocked(minority, [0, 1])
        cluster.set_blocked(0, [minority])
        cluster.set_blocked(1, [minority])
        assert wait_until(lambda: cluster.leader_index() not in (None, minority),
                          timeout_s=30.0)
        # The agent's worker thread owns its client, so the test reads with its own client.
        probe = make_robot_client([cluster.client_addresses[minority]], 'probe', timeout_s=0.5)
        with pytest.raises(LedgerUnavailableError):
            probe.read()
        # New goal: the agent must replan, but cannot commit, so it keeps its committed plan.
        agent.set_goal((0.0, 6.0))
        for _ in range(4):
            step = agent.step(fleet_clock())
            agent.wait_idle(10.0)
        step = agent.step(fleet_clock())
        assert step.trajectory == committed_plan
        assert step.token == committed_token
        assert step.status == 'holding'
        # The majority keeps committing.
        assert _propose_leg(majority_robot, fleet_clock, 0, 2.0).committed
    finally:
        agent.close()
    cluster.set_blocked(minority, [])
    cluster.set_blocked(0, [])
    cluster.set_blocked(1, [])
    assert _propose_leg(majority_robot, fleet_clock, 0, 0.5).committed
    histories = wait_until(lambda: same_histories(cluster, range(3)), timeout_s=30.0)
    assert histories, 'replicas disagree after the partition healed'
    assert [kind for _, robot_id, kind in histories[0] if robot_id == 'r0'] == \
        ['register', 'propose', 'propose']


def _change_membership(cluster, op, index, *, expect_member):
    """Send add_node or remove_node to the leader until the leader's partners reflect it.

    pysyncobj denies a change while a new leader's first entry or an earlier change is not
    yet committed, so a denial is retried.
    """
    address = cluster.raft_addresses[index]

    def attempt():
        leader = cluster.wait_for_leader()
        partners = cluster.status(leader, timeout_s=5.0)['partners']
        if (address in partners) == expect_member:
            return True
        reply = cluster.client.request({'op': op, 'address': address},
                                       address=cluster.client_addresses[leader], timeout_s=10.0)
        return reply['status'] == 'ok'

    return wait_until(attempt, timeout_s=60.0, period_s=0.2)


def test_membership_change_keeps_committing(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    (robot,) = _register_lanes(cluster, make_robot_client, fleet_clock, 1)
    new_index = cluster.add_slot()
    cluster.start(new_index, peers=[0, 1, 2, new_index])
    assert _change_membership(cluster, 'add_node', new_index, expect_member=True)
    cluster.members.append(new_index)
    assert _propose_leg(robot, fleet_clock, 0, 2.0).committed
    assert wait_until(lambda: same_histories(cluster, [0, new_index]), timeout_s=60.0)
    status = cluster.status(new_index, timeout_s=5.0)
    assert len(status['partners']) == 3

    # Remove a follower that is not the new node; the remaining three keep committing.
    leader = cluster.wait_for_leader()
    removed = next(index for index in range(3) if index != leader)
    assert _change_membership(cluster, 'remove_node', removed, expect_member=False)
    cluster.terminate(removed)
    assert _propose_leg(robot, fleet_clock, 0, 0.5).committed
    remaining = [index for index in cluster.members if index != removed]

    def two_partners_each():
        statuses = [cluster.status(index, timeout_s=5.0) for index in remaining]
        return all(status is not None and len(status['partners']) == 2 for status in statuses)

    assert wait_until(two_partners_each, timeout_s=30.0)


def test_membership_requests_need_admin(make_cluster):
    cluster = make_cluster(3, admin=False)
    leader = cluster.wait_for_leader()
    reply = cluster.client.request({'op': 'add_node', 'address': '127.0.0.1:1'},
                                   address=cluster.client_addresses[leader], timeout_s=5.0)
    assert reply['status'] == 'error'
    assert reply['reason'] == 'not_authorized'
