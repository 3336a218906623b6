"""AgentLink without a ledger: emergency stops, hold reasons and the widened clearance."""

from __future__ import annotations

import numpy as np
import pytest

from mapl_robotics.coordination import LedgerClient, RobotAgent
from mapl_robotics.errors import DeliveryFailedError
from mapl_robotics.geometry import World
from mapl_robotics.mesh import Priority
from mapl_robotics.mesh.agent_link import AgentLink
from mapl_robotics.planning import RobotModel


@pytest.fixture
def linked(mesh_nodes):
    """Nodes a (clock reference) and b, each with an agent whose ledger is never contacted."""
    nodes = mesh_nodes(['a', 'b'], reference_id='a')
    robot = RobotModel(radius_m=0.3, max_speed_mps=2.0, max_accel_mps2=1.0)
    links, agents, clients = {}, {}, []
    for index, name in enumerate(nodes):
        # Port 9 (discard) on loopback: the agent is never stepped in these tests.
        client = LedgerClient(['127.0.0.1:9'], timeout_s=0.1)
        clients.append(client)
        agents[name] = RobotAgent(name, robot=robot, world=World(bounds_m=(0, 0, 10, 10)),
                                  start_pose=(1.0, 1.0 + index, 0.0), goal_xy_m=(5.0, 5.0),
                                  client=client, rng=np.random.default_rng(index))
        links[name] = AgentLink(nodes[name], agents[name], max_clock_error_s=0.05,
                                base_clearance_m=0.1)
    yield nodes, links
    for agent in agents.values():
        agent.close()
    for client in clients:
        client.close()


def test_emergency_stop_holds_peer(linked, poll):
    nodes, links = linked
    assert nodes['a'].wait_for_peers(timeout_s=10)
    stopped = []
    links['b'].on_emergency_stop(lambda sender, reason: stopped.append((sender, reason)))
    futures = links['a'].emergency_stop('person in aisle 3')
    assert futures['b'].result(timeout=10).priority == Priority.EMERGENCY
    assert links['a'].emergency_stopped
    assert links['b'].emergency_stopped
    assert stopped == [('a', 'person in aisle 3')]
    step = links['b'].step()
    assert step.status == 'holding'
    assert 'emergency stop from a' in step.message
    links['a'].release_emergency_stop()['b'].result(timeout=10)
    assert not links['a'].emergency_stopped
    assert poll(lambda: not links['b'].emergency_stopped, timeout_s=5)


def test_clearance_widened_by_clock_bound(linked, poll):
    nodes, links = linked
    assert links['a'].clearance_m() == pytest.approx(0.1)
    assert poll(lambda: nodes['b'].clock.error_bound_s is not None, timeout_s=10)
    bound_s = nodes['b'].clock.error_bound_s
    widened_m = links['b'].clearance_m()
    # Bound times the 2 m/s top speed; the bound drifts by microseconds between the reads.
    assert widened_m > 0.1
    assert widened_m == pytest.approx(0.1 + bound_s * 2.0, abs=1e-5)


def test_unknown_clock_bound_holds(mesh_nodes):
    nodes = mesh_nodes(['a', 'b'], secure=False, reference_id=None)
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)
    client = LedgerClient(['127.0.0.1:9'], timeout_s=0.1)
    agent = RobotAgent('a', robot=robot, world=World(bounds_m=(0, 0, 10, 10)),
                       start_pose=(1.0, 1.0, 0.0), goal_xy_m=(5.0, 5.0), client=client,
                       rng=np.random.default_rng(0))
    try:
        link = AgentLink(nodes['a'], agent)
        step = link.step()
        assert step.status == 'holding'
        assert 'not known' in step.message
        assert link.clearance_m() is None
    finally:
        agent.close()
        client.close()


def test_missed_plan_deadline_holds(linked):
    nodes, links = linked
    assert nodes['a'].wait_for_peers(timeout_s=10)
    nodes['b'].close()
    with pytest.raises(DeliveryFailedError):
        nodes['a'].send('b', 'agent.plan', {}, priority=Priority.PLAN,
                        deadline_s=0.05).result(timeout=5)
    assert links['a'].deadline_misses == 1
    assert 'missed its mesh deadline' in links['a'].hold_reason()
