"""Ledger tests on real 3-node clusters: each node its own process on loopback TCP."""

from __future__ import annotations

import threading

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger_helpers import lane_plan, same_histories, wait_until
from mapl_robotics.coordination import audit_history
from mapl_robotics.coordination.protocol import MAX_REQUEST_BYTES, encode
from mapl_robotics.errors import LedgerRequestError, NotAuthorizedError
from mapl_robotics.geometry import Trajectory


def test_commit_replicates_to_every_node(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    robot = make_robot_client(cluster.client_addresses, 'r1')
    now_s = fleet_clock()
    assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=now_s).committed
    view = robot.read()
    rows = lane_plan(view.robots['r1'].trajectory, t0_s=fleet_clock() + 0.3, target_x_m=2.0,
                     y_m=0.0)
    result = robot.propose(Trajectory.from_samples(rows), base_version=view.version,
                           now_s=fleet_clock())
    assert result.committed
    assert result.token.index > view.token.index
    assert robot.read().robots['r1'].token == result.token
    histories = wait_until(lambda: same_histories(cluster, range(3)), timeout_s=30.0)
    assert histories, 'replicas did not converge on the same commits'
    assert [kind for _, _, kind in histories[0]] == ['register', 'propose']


def test_follower_forwards_to_leader(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    leader = cluster.wait_for_leader()
    follower = next(index for index in range(3) if index != leader)
    robot = make_robot_client([cluster.client_addresses[follower]], 'r1')
    assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=fleet_clock()).committed
    view = robot.read()
    assert 'r1' in view.robots
    status = cluster.status(follower)
    assert status['state'] == 'follower'


def test_robot_cannot_act_for_other_id(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    owner = make_robot_client(cluster.client_addresses, 'r1')
    assert owner.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=fleet_clock()).committed
    impostor = make_robot_client(cluster.client_addresses, 'r1')
    view = owner.read()
    rows = lane_plan(view.robots['r1'].trajectory, t0_s=fleet_clock() + 0.3, target_x_m=1.0,
                     y_m=0.0)
    with pytest.raises(NotAuthorizedError, match='r1'):
        impostor.propose(Trajectory.from_samples(rows), base_version=0, now_s=fleet_clock())
    with pytest.raises(NotAuthorizedError):
        impostor.park(now_s=fleet_clock())
    assert owner.read(full=True).robots['r1'].token == view.robots['r1'].token


def test_malformed_and_oversized_requests_rejected(make_cluster, make_robot_client,
                                                  fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    address = cluster.client_addresses[0]
    context = zmq.Context.instance()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(f'tcp://{address}')
    try:
        replies = []
        for rid, payload in ((b'1', b'\xc1not msgpack'), (b'2', b'\x00' * (MAX_REQUEST_BYTES + 8)),
                             (b'3', encode({'op': 'propose', 'robot_id': 'r1'})),
                             (b'4', msgpack.packb(['a', 'list']))):
            raw.send_multipart([rid, payload])
            assert raw.poll(5000), f'no reply to malformed request {rid!r}'
            replies.append(msgpack.unpackb(raw.recv_multipart()[1]))
        raw.send_multipart([b'only one frame'])
    finally:
        raw.close(0)
    assert [reply['reason'] for reply in replies] == ['malformed'] * 4
    assert 'exceeds the limit' in replies[1]['message']
    assert 'request_id' in replies[2]['message']
    robot = make_robot_client(cluster.client_addresses, 'r1')
    with pytest.raises(LedgerRequestError, match='radius_m'):
        robot.register(radius_m=-1.0, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                       now_s=fleet_clock())
    # The cluster keeps serving after all of that.
    assert robot.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=fleet_clock()).committed
    for index in range(3):
        assert cluster.is_running(index)


def test_concurrent_proposals_never_conflict(make_cluster, make_robot_client, fleet_clock):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    examples = iter(range(1000))

    # One cluster serves every example; each example adds three robots in a fresh region.
    @settings(max_examples=5, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(plans=st.lists(st.lists(st.tuples(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0)),
                                   min_size=2, max_size=4), min_size=3, max_size=3))
    def run_example(plans):
        example = next(examples)
        offset_m = 20.0 * example
        robots = [make_robot_client([cluster.client_addresses[i % 3]], f'e{example}r{i}',
                                    timeout_s=5.0) for i in range(3)]
        starts = [(-1.5, -1.5), (1.5, -1.5), (0.0, 1.5)]
        for robot, start in zip(robots, starts):
            assert robot.register(radius_m=0.3, max_speed_mps=1.0,
                                  pose=(start[0] + offset_m, start[1], 0.0),
                                  now_s=fleet_clock()).committed
        outcomes: list[str] = []
        lock = threading.Lock()

        def drive(robot, waypoints):
            # Each robot proposes its waypoints one leg at a time; the reads of the three
            # threads interleave with the other robots' commits.
            for x_m, y_m in waypoints:
                view = robot.read()
                own = view.robots[robot.robot_id].trajectory
                t0_s = fleet_clock() + 0.4
                start = own.position_at(t0_s)
                target = (x_m + offset_m, y_m)
                distance_m = float(((start[0] - target[0]) ** 2
                                    + (start[1] - target[1]) ** 2) ** 0.5)
                rows = [(t0_s, float(start[0]), float(start[1]), 0.0),
                        (t0_s + max(distance_m / 0.9, 0.05), *target, 0.0)]
                result = robot.propose(Trajectory.from_samples(rows),
                                       base_version=view.version, now_s=fleet_clock())
                with lock:
                    outcomes.append(result.status)

        threads = [threading.Thread(target=drive, args=(robot, waypoints))
                   for robot, waypoints in zip(robots, plans)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert len(outcomes) == sum(len(waypoints) for waypoints in plans)

    run_example()
    for index in range(3):
        records = cluster.client.history_records(cluster.client_addresses[index])
        assert audit_history(records, clearance_m=0.1) == []
