"""Unit and property tests of the pure ledger state machine (no Raft, no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger_helpers import StateDriver
from mapl_robotics.coordination.ledger_state import (FencingToken, LedgerConfig, LedgerState,
                                                     audit_history, splice)
from mapl_robotics.coordination.protocol import generate_key_pair, sign_request
from mapl_robotics.geometry.conflicts import find_conflict
from mapl_robotics.geometry.trajectory import Trajectory


def test_register_commits_stationary_hold():
    driver = StateDriver()
    result = driver.register('a', (1.0, 2.0), now_s=3.0)
    assert result['status'] == 'committed'
    assert result['trajectory'] == [[3.0, 1.0, 2.0, 0.0]]
    assert result['token'] == [1, 2]
    assert driver.state.version == 1


def test_register_inside_committed_occupancy_rejected():
    driver = StateDriver()
    driver.register('a', (1.0, 1.0))
    result = driver.register('b', (1.5, 1.0))
    assert result['status'] == 'rejected'
    assert result['conflicts'] == ['a']
    assert 'b' not in driver.state.robots


def test_clear_proposal_commits_and_splices():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    result = driver.propose('a', [(1.0, 0.0, 0.0, 0.0), (3.0, 2.0, 0.0, 0.0)], now_s=0.5)
    assert result['status'] == 'committed'
    assert result['trajectory'][0] == [0.0, 0.0, 0.0, 0.0]
    assert result['trajectory'][-1] == [3.0, 2.0, 0.0, 0.0]
    assert driver.state.robots['a'].token == FencingToken(term=1, index=3)


def test_conflicting_proposal_rejected_with_ids():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    driver.register('b', (4.0, 0.0))
    result = driver.propose('a', [(1.0, 0.0, 0.0, 0.0), (5.0, 3.8, 0.0, 0.0)], now_s=0.5)
    assert result['status'] == 'rejected'
    assert result['reason'] == 'conflict'
    assert result['conflicts'] == ['b']
    assert driver.state.robots['a'].trajectory.end_xy_m.tolist() == [0.0, 0.0]


@pytest.mark.parametrize('rows, reason', [
    ([(1.0, 0.5, 0.0, 0.0), (2.0, 1.0, 0.0, 0.0)], 'discontinuous'),
    ([(1.0, 0.0, 0.0, 0.0), (2.0, 3.0, 0.0, 0.0)], 'too_fast'),
    ([(0.2, 0.0, 0.0, 0.0), (2.0, 1.0, 0.0, 0.0)], 'stale_start'),
])
def test_invalid_proposal_rejected(rows, reason):
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    result = driver.propose('a', rows, now_s=0.5)
    assert result['status'] == 'rejected'
    assert result['reason'] == reason
    assert 'a' in result['message']


def test_signature_by_other_robot_rejected():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    driver.register('b', (5.0, 0.0))
    request = {'op': 'propose', 'robot_id': 'a', 'request_id': 99, 'now_s': 0.5,
               'trajectory': [[1.0, 0.0, 0.0, 0.0], [2.0, 0.5, 0.0, 0.0]], 'base_version': 0}
    result = driver.apply(request, key_of='b')
    assert result['status'] == 'error'
    assert result['reason'] == 'not_authorized'
    assert driver.state.robots['a'].trajectory.end_xy_m.tolist() == [0.0, 0.0]


def test_tampered_request_rejected():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    signed = sign_request({'op': 'propose', 'robot_id': 'a', 'request_id': 50, 'now_s': 0.5,
                           'trajectory': [[1.0, 0.0, 0.0, 0.0], [2.0, 0.5, 0.0, 0.0]],
                           'base_version': 0}, driver.keys['a'][0])
    signed['trajectory'] = [[1.0, 0.0, 0.0, 0.0], [2.0, 0.9, 0.0, 0.0]]
    result = driver.state.apply(signed, token=FencingToken(1, 50))
    assert result['reason'] == 'not_authorized'


def test_reregister_with_other_key_rejected():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    private_key, public_key = generate_key_pair()
    request = sign_request({'op': 'register', 'robot_id': 'a', 'request_id': 7, 'now_s': 1.0,
                            'radius_m': 0.3, 'max_speed_mps': 1.0, 'public_key': public_key,
                            'pose': [3.0, 3.0, 0.0]}, private_key)
    result = driver.state.apply(request, token=FencingToken(1, 40))
    assert result['reason'] == 'not_authorized'
    assert driver.state.robots['a'].trajectory.end_xy_m.tolist() == [0.0, 0.0]


def test_repeated_request_id_returns_stored_result():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    request = {'op': 'propose', 'robot_id': 'a', 'request_id': 10, 'now_s': 0.5,
               'trajectory': [[1.0, 0.0, 0.0, 0.0], [2.0, 0.5, 0.0, 0.0]], 'base_version': 0}
    first = driver.apply(request)
    second = driver.apply(request)
    assert first == second
    assert driver.state.version == 2
    older = driver.apply({**request, 'request_id': 9})
    assert older['reason'] == 'replayed_request'


@pytest.mark.parametrize('request_fields, field', [
    ({'op': 'launch'}, 'op'),
    ({'op': 'read', 'since_version': -1}, 'since_version'),
    ({'op': 'read', 'extra': 1}, 'extra'),
    ({'op': 'propose', 'robot_id': 'a', 'request_id': 1, 'now_s': 0.0, 'signature': b'x' * 64,
      'trajectory': [[1.0, math.nan, 0.0, 0.0]], 'base_version': 0}, 'trajectory'),
    ({'op': 'propose', 'robot_id': 'a', 'request_id': 1, 'now_s': 0.0, 'signature': b'x' * 64,
      'trajectory': [[2.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], 'base_version': 0},
     'strictly increase'),
    ({'op': 'propose', 'robot_id': 'a', 'request_id': 1, 'now_s': 0.0, 'signature': b'x' * 64,
      'trajectory': [[float(i), 0.0, 0.0, 0.0] for i in range(5000)], 'base_version': 0},
     'trajectory'),
    ({'op': 'park', 'robot_id': 'bad id!', 'request_id': 1, 'now_s': 0.0,
      'signature': b'x' * 64}, 'robot_id'),
])
def test_malformed_request_is_error(request_fields, field):
    state = LedgerState()
    result = state.apply(request_fields, token=FencingToken(1, 2))
    assert result['status'] == 'error'
    assert result['reason'] == 'malformed'
    assert field in result['message']


def test_park_only_after_trajectory_end():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    driver.propose('a', [(1.0, 0.0, 0.0, 0.0), (3.0, 1.0, 0.0, 0.0)], now_s=0.5)
    early = driver.apply({'op': 'park', 'robot_id': 'a', 'now_s': 2.0})
    assert early['reason'] == 'still_moving'
    parked = driver.apply({'op': 'park', 'robot_id': 'a', 'now_s': 3.5})
    assert parked['status'] == 'committed'
    assert driver.state.robots['a'].status == 'parked'


def test_deregister_releases_occupancy():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    assert driver.apply({'op': 'deregister', 'robot_id': 'a', 'now_s': 1.0})['status'] \
        == 'committed'
    assert driver.register('b', (0.1, 0.0), now_s=2.0)['status'] == 'committed'
    assert audit_history(driver.state.history, clearance_m=0.1) == []


def test_turn_holder_blocks_conflicting_proposals():
    driver = StateDriver()
    driver.register('a', (0.0, 0.0))
    driver.register('b', (4.0, 0.0))
    # a wants to pass through b's spot, so a waits and claims the turn.
    rejected = driver.propose('a', [(1.0, 0.0, 0.0, 0.0), (9.0, 8.0, 0.0, 0.0)], now_s=0.5,
                              improvement_s=20.0)
    assert rejected['reason'] == 'conflict'
    turn = driver.state.current_turn()
    assert turn.robot_id == 'a'
    assert turn.blocked_by == ('b',)
    # b may not move into a's wanted path, but it may move out of the way.
    into_path = driver.propose('b', [(2.0, 4.0, 0.0, 0.0), (4.5, 6.0, 0.3, 0.0)], now_s=1.0)
    assert into_path['reason'] == 'yield'
    assert into_path['conflicts'] == ['a']
    aside = driver.propose('b', [(2.0, 4.0, 0.0, 0.0), (4.0, 4.0, 2.0, 0.0)], now_s=1.0)
    assert aside['status'] == 'committed'
    retry = driver.propose('a', [(3.0, 0.0, 0.0, 0.0), (11.0, 8.0, 0.0, 0.0)], now_s=1.5)
    assert retry['status'] == 'committed'
    assert driver.state.current_turn() is None


def test_splice_keeps_motion_before_switch():
    old = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (4.0, 4.0, 0.0, 0.0)])
    new = Trajectory.from_samples([(2.0, 2.0, 0.0, 0.0), (3.0, 2.0, 1.0, 0.0)])
    spliced = splice(old, new, keep_from_s=-math.inf)
    times = np.linspace(0.0, 2.0, 9)
    assert np.allclose(spliced.position_at(times), old.position_at(times))
    assert np.allclose(spliced.position_at([2.5, 3.0, 5.0]), new.position_at([2.5, 3.0, 5.0]))


def test_apply_is_deterministic_across_replicas():
    first, second = StateDriver(), StateDriver()
    second.keys = first.keys
    for driver in (first, second):
        driver.keys.setdefault('a', generate_key_pair())
        driver.keys.setdefault('b', generate_key_pair())
    requests = []
    for robot_id, xy in (('a', (0.0, 0.0)), ('b', (3.0, 0.0))):
        requests.append(sign_request({'op': 'register', 'robot_id': robot_id, 'request_id': 1,
                                      'now_s': 0.0, 'radius_m': 0.3, 'max_speed_mps': 1.0,
                                      'public_key': first.keys[robot_id][1],
                                      'pose': [xy[0], xy[1], 0.0]}, first.keys[robot_id][0]))
    requests.append(sign_request({'op': 'propose', 'robot_id': 'a', 'request_id': 2,
                                  'now_s': 0.5, 'base_version': 2,
                                  'trajectory': [[1.0, 0.0, 0.0, 0.0], [3.0, 0.0, 2.0, 0.0]]},
                                 first.keys['a'][0]))
    results = [[driver.state.apply(request, token=FencingToken(1, index))
                for index, request in enumerate(requests)] for driver in (first, second)]
    assert results[0] == results[1]
    assert first.state.robots['a'].trajectory == second.state.robots['a'].trajectory


# -- property test ------------------------------------------------------------------------------

_ROBOTS = ('r0', 'r1', 'r2', 'r3')
_STARTS = {'r0': (0.0, 0.0), 'r1': (3.0, 0.0), 'r2': (0.0, 3.0), 'r3': (3.0, 3.0)}

_event = st.tuples(
    st.sampled_from(_ROBOTS),
    st.sampled_from(['snapshot', 'propose', 'propose', 'propose']),
    st.lists(st.tuples(st.floats(-1.0, 4.0), st.floats(-1.0, 4.0)), min_size=1, max_size=3),
    st.floats(0.0, 1.0),
)


def _check_current_state(state: LedgerState) -> None:
    records = list(state.robots.values())
    keep_from_s = state.fleet_time_s - state.config.history_keep_s
    for i, first in enumerate(records):
        for second in records[i + 1:]:
            start_s = max(first.registered_at_s, second.registered_at_s, keep_from_s)
            conflict = find_conflict(first.trajectory, first.radius_m, second.trajectory,
                                     second.radius_m, clearance_m=state.config.clearance_m,
                                     t_start_s=start_s)
            assert conflict is None, (first.robot_id, second.robot_id, conflict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_event, min_size=1, max_size=40))
def test_interleaved_proposals_never_conflict(events):
    driver = StateDriver(LedgerState(LedgerConfig(clearance_m=0.1)))
    for robot_id in _ROBOTS:
        assert driver.register(robot_id, _STARTS[robot_id])['status'] == 'committed'
    # Each agent plans from its own snapshot of its committed trajectory, which can be older
    # than other robots' commits: the interleaving the ledger must make safe.
    snapshots = {robot_id: driver.state.robots[robot_id].trajectory for robot_id in _ROBOTS}
    now_s = 0.0
    for robot_id, kind, waypoints, delay_s in events:
        now_s += delay_s
        if kind == 'snapshot':
            snapshots[robot_id] = driver.state.robots[robot_id].trajectory
            continue
        t0 = now_s + 0.5
        own = driver.state.robots[robot_id].trajectory
        rows = [(t0, *own.position_at(t0).tolist(), 0.0)]
        t_s = t0
        for x_m, y_m in waypoints:
            distance_m = math.dist(rows[-1][1:3], (x_m, y_m))
            t_s += max(distance_m / 0.9, 0.05)
            rows.append((t_s, x_m, y_m, 0.0))
        driver.propose(robot_id, rows, now_s=now_s)
        _check_current_state(driver.state)
    assert audit_history(driver.state.history, clearance_m=0.1) == []
