"""The mesh carrying ledger requests and agent traffic, against a real ledger cluster."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from mapl_robotics.coordination import (AgentSettings, LedgerClient, LocalCluster, RobotAgent,
                                        audit_history, generate_key_pair)
from mapl_robotics.coordination.ledger_state import splice
from mapl_robotics.errors import NotAuthorizedError
from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.mesh.agent_link import AgentLink
from mapl_robotics.mesh.ledger_proxy import LedgerGateway, MeshLedgerTransport
from mapl_robotics.planning import RobotModel

LEDGERS = ['ledger_0', 'ledger_1', 'ledger_2']
# The ledger accepts fleet times up to 1e9 s, so every node's clock counts from this origin.
ORIGIN_S = time.time() - 1.0


def fleet_wall_clock() -> float:
    return time.time() - ORIGIN_S


@pytest.fixture
def ledger_fleet(tmp_path, mesh_nodes):
    """A 3-node ledger cluster, a mesh gateway per ledger node, and mesh nodes for robots."""
    cluster = LocalCluster(3, tmp_path / 'cluster')
    gateways = []
    try:
        cluster.start_all()
        cluster.wait_for_leader()

        def build(robot_ids, **overrides):
            nodes = mesh_nodes(LEDGERS + list(robot_ids), reference_id='ledger_0',
                               clock=fleet_wall_clock, **overrides)
            for index, ledger_id in enumerate(LEDGERS):
                gateways.append(LedgerGateway(nodes[ledger_id],
                                              cluster.client_addresses[index]).start())
            return nodes

        yield cluster, build
    finally:
        for gateway in gateways:
            gateway.stop()
        cluster.close()


def robot_client(node, robot_id, **kwargs) -> LedgerClient:
    private_key, _ = generate_key_pair()
    return LedgerClient(LEDGERS, robot_id=robot_id, private_key=private_key,
                        transport=MeshLedgerTransport(node), **kwargs)


def test_robot_commits_through_mesh_gateway(ledger_fleet):
    cluster, build = ledger_fleet
    nodes = build(['r1'])
    assert nodes['r1'].wait_for_peers(timeout_s=20)
    client = robot_client(nodes['r1'], 'r1', timeout_s=5.0)
    now_s = fleet_wall_clock()
    result = client.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                             now_s=now_s)
    assert result.committed
    view = client.read()
    plan = Trajectory.from_samples([(now_s + 1.0, 0.0, 0.0, 0.0),
                                    (now_s + 3.0, 2.0, 0.0, 0.0)])
    result = client.propose(plan, base_version=view.version, now_s=fleet_wall_clock())
    assert result.committed, result.message
    view = client.read()
    assert view.robots['r1'].token == result.token
    assert sum(gateway_id.startswith('ledger') for gateway_id in nodes) == 3


def test_gateway_rejects_acting_for_another_robot(ledger_fleet):
    _, build = ledger_fleet
    nodes = build(['r1', 'r2'])
    assert nodes['r2'].wait_for_peers(timeout_s=20)
    # r2's mesh node sends a request signed for robot r1.
    impostor = robot_client(nodes['r2'], 'r1', timeout_s=2.0)
    with pytest.raises(NotAuthorizedError, match='only for itself'):
        impostor.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 0.0, 0.0),
                          now_s=fleet_wall_clock())


def test_skewed_clock_agent_keeps_fleet_safe(ledger_fleet):
    """Robot 'skewed' runs its wall clock 250 ms ahead; the crossing still stays safe.

    Both agents run on fleet time from the mesh clock sync. The committed history must be
    conflict-free, and the robots' real motion (each following its plan on its own fleet-time
    estimate) must keep them apart by more than their radii.
    """
    cluster, build = ledger_fleet
    skew_s = 0.25
    nodes = build(['steady', 'skewed'],
                  per_node={'skewed': {'clock': lambda: fleet_wall_clock() + skew_s}})
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)
    world = World(bounds_m=(-5.0, -5.0, 10.0, 10.0))
    routes = {'steady': ((0.0, 0.0, 0.0), (6.0, 0.0)),
              'skewed': ((3.0, -3.0, math.pi / 2), (3.0, 3.0))}
    links, agents, records = {}, {}, {name: [] for name in routes}
    for index, (name, (start, goal)) in enumerate(routes.items()):
        agents[name] = RobotAgent(
            name, robot=robot, world=world, start_pose=start, goal_xy_m=goal,
            client=robot_client(nodes[name], name, timeout_s=2.0),
            rng=np.random.default_rng(40 + index),
            settings=AgentSettings(ledger_timeout_s=2.0, commit_lead_s=1.0))
        links[name] = AgentLink(nodes[name], agents[name], max_clock_error_s=0.05,
                                base_clearance_m=0.1)

    def drive(name):
        link = links[name]

        def record(step):
            records[name].append((fleet_wall_clock(), link.fleet_time(),
                                  link.node.clock.error_bound_s))
        link.run(period_s=0.02, max_duration_s=60.0, on_step=record)

    threads = [threading.Thread(target=drive, args=(name,)) for name in routes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    finally:
        for agent in agents.values():
            agent.close()
    for name, agent in agents.items():
        assert agent.status == 'parked', (name, agent.status, agent._message)

    # The skewed node's fleet time tracked the reference within its bound at every step.
    errors_s = {}
    for name, samples in records.items():
        stepped = [(true_s, fleet_s, bound_s) for true_s, fleet_s, bound_s in samples
                   if bound_s is not None]
        assert stepped
        # fleet_s was read after true_s, so it may run ahead by the read gap (under 50 ms).
        errors_s[name] = max(abs(fleet_s - true_s) for true_s, fleet_s, _ in stepped)
        assert all(abs(fleet_s - true_s) <= bound_s + 0.05
                   for true_s, fleet_s, bound_s in stepped), name
    assert errors_s['skewed'] < 0.1

    history = cluster.client.history_records(cluster.client_addresses[0])
    assert {record.robot_id for record in history} == set(routes)
    clearance_m = cluster.client.read().clearance_m
    assert audit_history(history, clearance_m=clearance_m) == []

    # Real motion: robot i is at plan_i(t + e_i) at true time t, |e_i| <= errors_s[i].
    plans = {}
    for record in history:
        if record.kind == 'register':
            plans[record.robot_id] = record.trajectory
        elif record.kind == 'propose':
            plans[record.robot_id] = splice(plans[record.robot_id], record.trajectory,
                                            keep_from_s=-math.inf)
    start_s = min(plan.start_time_s for plan in plans.values())
    end_s = max(plan.end_time_s for plan in plans.values())
    times_s = np.arange(start_s, end_s, 0.005)
    for shift_steady in (-errors_s['steady'], errors_s['steady']):
        for shift_skewed in (-errors_s['skewed'], errors_s['skewed']):
            steady = np.array([plans['steady'].position_at(t + shift_steady) for t in times_s])
            skewed = np.array([plans['skewed'].position_at(t + shift_skewed) for t in times_s])
            gap_m = np.linalg.norm(steady - skewed, axis=1).min()
            assert gap_m > 2 * robot.radius_m
    # Plans were announced over the mesh and recorded in the audit trail.
    assert links['steady'].peer_plans['skewed'].robot_id == 'skewed'
    assert links['skewed'].announced >= 1
