"""RobotAgent on a real 3-node ledger, stepped by a simulated clock."""

from __future__ import annotations

import numpy as np
from shapely.geometry import box

from mapl_robotics.coordination import AgentSettings, RobotAgent, audit_history
from mapl_robotics.geometry import ConstantVelocity, MovingObstacle, Trajectory, World
from mapl_robotics.planning import PlannerSettings, RobotModel

# A 1 m wide corridor from x = 2 m to x = 10 m with a passing bay above its middle.
CORRIDOR = World(bounds_m=(0.0, 0.0, 12.0, 4.0),
                 obstacles=[box(2.0, 0.0, 10.0, 1.5), box(2.0, 2.5, 5.5, 4.0),
                            box(6.5, 2.5, 10.0, 4.0), box(5.5, 3.5, 6.5, 4.0)])
# A 1 m wide corridor closed at both ends, with one passing bay above its middle
# (x = 4.5 to 6 m, 1.4 m deep): two robots that swap its ends can only pass at the bay.
DEAD_END_CORRIDOR = World(bounds_m=(0.0, 0.0, 10.0, 2.4),
                          obstacles=[box(0.0, 1.0, 4.5, 2.4), box(6.0, 1.0, 10.0, 2.4)])
ROBOT = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=1.0)
PLANNER = PlannerSettings(time_budget_s=0.5)


def _make_agents(cluster, make_robot_client, specs, *, settings=None, world=CORRIDOR):
    agents = []
    for index, (robot_id, start, goal) in enumerate(specs):
        client = make_robot_client(cluster.client_addresses, robot_id, timeout_s=2.0)
        agents.append(RobotAgent(robot_id, robot=ROBOT, world=world, start_pose=start,
                                 goal_xy_m=goal, client=client,
                                 rng=np.random.default_rng(100 + index),
                                 settings=settings or AgentSettings(),
                                 planner_settings=PLANNER))
    return agents


def _run_lockstep(agents, *, t_end_s, dt_s=0.1):
    """Step every agent on a shared simulated clock, waiting for each one's work."""
    now_s = 1.0
    steps = []
    while now_s < t_end_s:
        steps = [agent.step(now_s) for agent in agents]
        if all(step.status == 'parked' for step in steps):
            break
        for agent in agents:
            assert agent.wait_idle(30.0), f'agent {agent.robot_id} worker did not finish'
        now_s += dt_s
    return now_s, steps


def test_corridor_swap_both_arrive(make_cluster, make_robot_client):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    agents = _make_agents(cluster, make_robot_client,
                          [('a', (1.0, 2.0, 0.0), (11.0, 2.0)),
                           ('b', (11.0, 2.0, np.pi), (1.0, 2.0))])
    try:
        end_s, steps = _run_lockstep(agents, t_end_s=150.0)
    finally:
        for agent in agents:
            agent.close()
    assert [step.status for step in steps] == ['parked', 'parked'], \
        [(step.status, step.message) for step in steps]
    for agent, step in zip(agents, steps):
        assert np.allclose(step.trajectory.end_xy_m, agent.goal_xy_m, atol=0.05)
    records = cluster.client.history_records(cluster.client_addresses[0])
    assert audit_history(records, clearance_m=0.1) == []
    assert any(record.kind == 'park' for record in records)


def test_dead_end_swap_uses_passing_bay(make_cluster, make_robot_client):
    # Each goal is the other robot's start, so one robot must wait in the bay.
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    agents = _make_agents(cluster, make_robot_client,
                          [('a', (0.5, 0.5, 0.0), (9.5, 0.5)),
                           ('b', (9.5, 0.5, np.pi), (0.5, 0.5))],
                          world=DEAD_END_CORRIDOR)
    try:
        _, steps = _run_lockstep(agents, t_end_s=120.0)
    finally:
        for agent in agents:
            agent.close()
    assert [step.status for step in steps] == ['parked', 'parked'], \
        [(step.status, step.message) for step in steps]
    for agent, step in zip(agents, steps):
        assert np.allclose(step.trajectory.end_xy_m, agent.goal_xy_m, atol=0.05)
    records = cluster.client.history_records(cluster.client_addresses[0])
    assert audit_history(records, clearance_m=0.1) == []
    # The robot that yielded committed a move into the bay (centre above the corridor).
    bay_visits = {record.robot_id for record in records
                  if record.kind == 'propose' and record.trajectory.xy_m[:, 1].max() > 1.0}
    assert len(bay_visits) == 1, bay_visits


def test_obstacle_departure_triggers_replan(make_cluster, make_robot_client):
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    (agent,) = _make_agents(cluster, make_robot_client, [('a', (0.5, 0.5, 0.0), (1.5, 3.5))])
    try:
        now_s = 1.0
        for _ in range(50):
            step = agent.step(now_s)
            agent.wait_idle(30.0)
            if step.status == 'executing':
                break
            now_s += 0.1
        assert step.status == 'executing'
        replans = step.replans
        parked_far = MovingObstacle('cart', 0.3, ConstantVelocity(start_xy_m=(11.0, 3.5),
                                                                  velocity_mps=(0.0, 0.0),
                                                                  t0_s=0.0))
        assert agent.observe_obstacles([parked_far], now_s=now_s)
        assert not agent.observe_obstacles([parked_far], now_s=now_s + 0.1)
        moved = MovingObstacle('cart', 0.3, ConstantVelocity(start_xy_m=(11.0, 1.0),
                                                             velocity_mps=(0.0, 0.0),
                                                             t0_s=0.0))
        agent.wait_idle(30.0)
        agent.step(now_s + 0.2)
        agent.wait_idle(30.0)
        replans = agent.step(now_s + 0.3).replans
        assert agent.observe_obstacles([moved], now_s=now_s + 0.4)
        agent.step(now_s + 0.4)
        agent.wait_idle(30.0)
        step = agent.step(now_s + 0.5)
        assert step.replans == replans + 1
        assert agent.conflicts_with_obstacles(now_s=now_s + 0.5) == []
    finally:
        agent.close()


def test_prepare_builds_field_before_first_plan(make_cluster, make_robot_client, monkeypatch):
    world = World(bounds_m=(0.0, 0.0, 12.0, 4.0), obstacles=[box(5.0, 0.0, 6.0, 2.5)])
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    [agent] = _make_agents(cluster, make_robot_client, [('a', (1.0, 1.0, 0.0), (11.0, 1.0))],
                           world=world)
    try:
        agent.prepare()

        def build_again(_world):
            raise AssertionError('the first plan rebuilt the clearance field')

        monkeypatch.setattr(World, '_build_field', build_again)
        _, steps = _run_lockstep([agent], t_end_s=60.0)
    finally:
        agent.close()
    assert steps[0].status == 'parked'
    assert np.allclose(agent.trajectory.end_xy_m, (11.0, 1.0))


def test_next_rest_time_finds_turn_in_place():
    from mapl_robotics.coordination.agent import next_rest_time_s

    trajectory = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (2.0, 2.0, 0.0, 0.0),
                                          (3.0, 2.0, 0.0, 1.57), (5.0, 2.0, 2.0, 1.57)])
    assert next_rest_time_s(trajectory, 0.5, max_shift_s=5.0) == 2.0
    assert next_rest_time_s(trajectory, 2.5, max_shift_s=5.0) == 2.5
    assert next_rest_time_s(trajectory, 3.5, max_shift_s=5.0) == 5.0
    assert next_rest_time_s(trajectory, 0.5, max_shift_s=1.0) == 0.5
    assert next_rest_time_s(trajectory, 6.0, max_shift_s=5.0) == 6.0


def test_braking_rows_stop_within_decel_limit():
    from mapl_robotics.coordination.agent import braking_rows

    trajectory = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (10.0, 20.0, 0.0, 0.0)])
    rows = np.asarray(braking_rows(trajectory, 1.0, max_decel_mps2=1.0, horizon_s=5.0))
    assert rows[0].tolist() == [1.0, 2.0, 0.0, 0.0]
    assert np.isclose(rows[-1, 0], 3.0)
    assert np.isclose(rows[-1, 1], 4.0)
    assert np.all(rows[:, 2] == 0.0)
    speeds = np.diff(rows[:, 1]) / np.diff(rows[:, 0])
    assert np.all(np.abs(np.diff(speeds)) <= 1.0 * 0.1 + 1e-9)
    assert np.all(np.diff(speeds) < 0.0)
    assert braking_rows(trajectory, 12.0, max_decel_mps2=1.0, horizon_s=5.0) == []
