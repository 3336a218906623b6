"""Helpers for ledger tests: signed requests against a pure state, and robot clients."""

from __future__ import annotations

import itertools

from mapl_robotics.coordination.ledger_state import FencingToken, LedgerState
from mapl_robotics.coordination.protocol import generate_key_pair, sign_request

__all__ = ['StateDriver', 'lane_plan', 'wait_until', 'history_tokens', 'same_histories']


class StateDriver:
    """Applies signed requests to a :class:`LedgerState` as consecutive log entries."""

    def __init__(self, state: LedgerState | None = None, *, term: int = 1) -> None:
        self.state = state or LedgerState()
        self.term = term
        self.keys: dict[str, tuple[bytes, bytes]] = {}
        self._index = itertools.count(2)
        self._request_ids = itertools.count(1)

    def apply(self, request: dict, *, key_of: str | None = None) -> dict:
        robot_id = key_of or request.get('robot_id')
        if robot_id is not None and 'request_id' not in request:
            request = {**request, 'request_id': next(self._request_ids)}
        if robot_id is not None:
            request = sign_request(request, self.keys[robot_id][0])
        token = FencingToken(term=self.term, index=next(self._index))
        return self.state.apply(request, token=token)

    def register(self, robot_id: str, xy_m, *, now_s: float = 0.0, radius_m: float = 0.3,
                 max_speed_mps: float = 1.0) -> dict:
        self.keys.setdefault(robot_id, generate_key_pair())
        return self.apply({'op': 'register', 'robot_id': robot_id, 'now_s': now_s,
                           'radius_m': radius_m, 'max_speed_mps': max_speed_mps,
                           'public_key': self.keys[robot_id][1],
                           'pose': [float(xy_m[0]), float(xy_m[1]), 0.0]})

    def propose(self, robot_id: str, rows, *, now_s: float, base_version: int = 0,
                improvement_s: float = 0.0) -> dict:
        return self.apply({'op': 'propose', 'robot_id': robot_id, 'now_s': now_s,
                           'trajectory': [list(map(float, row)) for row in rows],
                           'base_version': base_version,
                           'potential_improvement_s': improvement_s})


def lane_plan(client_view_trajectory, *, t0_s: float, target_x_m: float, y_m: float,
              speed_mps: float = 0.8):
    """Return rows of a straight move along a lane from the committed position at ``t0_s``."""
    start = client_view_trajectory.position_at(t0_s)
    duration_s = max(abs(target_x_m - float(start[0])) / speed_mps, 0.05)
    return [(t0_s, float(start[0]), float(start[1]), 0.0),
            (t0_s + duration_s, target_x_m, y_m, 0.0)]


def wait_until(predicate, *, timeout_s: float, period_s: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout_s`` passes."""
    import time
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(period_s)


def history_tokens(cluster, index: int, *, timeout_s: float = 2.0):
    """Return node ``index``'s commit history as a list of (token, robot_id, kind) tuples,
    or None while the node does not reply (for example, while it starts)."""
    from mapl_robotics.errors import LedgerUnavailableError
    try:
        records = cluster.client.history_records(cluster.client_addresses[index],
                                                 timeout_s=timeout_s)
    except LedgerUnavailableError:
        return None
    return [(tuple(record.token.to_list()), record.robot_id, record.kind) for record in records]


def same_histories(cluster, indices):
    """Return the nodes' histories if every node replied and all are equal, else None."""
    histories = [history_tokens(cluster, index) for index in indices]
    if any(history is None for history in histories):
        return None
    return histories if all(history == histories[0] for history in histories) else None
