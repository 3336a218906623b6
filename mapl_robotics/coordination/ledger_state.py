"""The plan ledger's replicated state machine, free of Raft and networking.

:class:`LedgerState` contains the robot registry, each robot's committed trajectory, the fleet-wide
version, the fleet time base and the waiting set that decides turns. :meth:`LedgerState.apply`
executes one request at one Raft log position. It is deterministic: it reads no clock and no
random source, and every input is either in the request or in the state, so every replica that
applies the same log reaches the same state. It never raises; every failure becomes a
``status: 'error'`` or ``'rejected'`` result, because an exception would stop the replica's
apply loop.

Safety invariant: at every version, no two committed trajectories conflict, that is, their
discs keep at least ``r_a + r_b + clearance_m`` apart from the time both robots are registered.
A proposal is checked against every other committed trajectory from its own start time on; the
part of the robot's trajectory before that time was checked when it was committed.
:func:`audit_history` re-checks the invariant over the full commit history.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Mapping

import numpy as np

from mapl_robotics.coordination.priorities import TurnRequest, turn_holder
from mapl_robotics.coordination.protocol import validate_request, verify_request
from mapl_robotics.errors import LedgerRequestError, TrajectoryError
from mapl_robotics.geometry.conflicts import conflicting_ids, find_conflict
from mapl_robotics.geometry.trajectory import Trajectory

__all__ = ['FencingToken', 'LedgerConfig', 'RobotRecord', 'CommitRecord', 'LedgerSnapshot',
           'LedgerState', 'splice', 'audit_history']

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, order=True)
class FencingToken:
    """Raft term and log index of the entry that committed a plan."""

    term: int
    index: int

    def to_list(self) -> list[int]:
        return [self.term, self.index]

    @classmethod
    def from_list(cls, values) -> 'FencingToken':
        return cls(term=int(values[0]), index=int(values[1]))


@dataclasses.dataclass(frozen=True)
class LedgerConfig:
    """Parameters of the apply step. Every replica of one ledger must use the same values."""

    clearance_m: float = 0.1
    """Extra gap between two robots' discs on top of the sum of their radii."""
    position_tolerance_m: float = 1e-3
    """Largest distance between a proposal's first sample and the committed position then."""
    speed_tolerance: float = 1.05
    """Factor on a robot's registered max speed that a proposal may reach."""
    history_keep_s: float = 30.0
    """Seconds of fleet time before the current time kept in each committed trajectory."""
    wish_ttl_s: float = 5.0
    """Seconds of fleet time after which an unrenewed turn request expires."""
    max_time_jump_s: float = 3600.0
    """Largest step of the fleet time base that one request may cause."""
    max_history_records: int = 1_000_000
    """Commit records kept for :func:`audit_history`; the oldest are dropped beyond this."""


@dataclasses.dataclass(frozen=True)
class RobotRecord:
    """A registered robot and its committed trajectory."""

    robot_id: str
    radius_m: float
    max_speed_mps: float
    public_key: bytes
    trajectory: Trajectory
    token: FencingToken
    version: int
    status: str
    registered_at_s: float


@dataclasses.dataclass(frozen=True)
class CommitRecord:
    """One committed change, in log order. ``trajectory`` is the robot's motion from
    ``t_from_s`` on (``None`` for a deregistration, which ends the robot's occupancy)."""

    token: FencingToken
    version: int
    robot_id: str
    kind: str
    t_from_s: float
    radius_m: float
    trajectory: Trajectory | None


@dataclasses.dataclass(frozen=True)
class LedgerSnapshot:
    """State read at one log position through the Raft log (a linearizable read)."""

    token: FencingToken
    version: int
    fleet_time_s: float
    clearance_m: float
    robots: tuple[RobotRecord, ...]
    robot_ids: tuple[str, ...]
    turn: TurnRequest | None

    def to_message(self) -> dict:
        """Return the snapshot as plain msgpack-able values."""
        turn = None
        if self.turn is not None:
            turn = {'holder': self.turn.robot_id, 'wish': self.turn.wish.to_list(),
                    'must_yield': list(self.turn.blocked_by)}
        return {
            'status': 'ok', 'op': 'read', 'token': self.token.to_list(), 'version': self.version,
            'fleet_time_s': self.fleet_time_s, 'clearance_m': self.clearance_m,
            'robot_ids': list(self.robot_ids), 'turn': turn,
            'robots': {record.robot_id: {
                'radius_m': record.radius_m, 'max_speed_mps': record.max_speed_mps,
                'status': record.status, 'version': record.version,
                'token': record.token.to_list(), 'trajectory': record.trajectory.to_list()}
                for record in self.robots},
        }


def splice(old: Trajectory, new: Trajectory, *, keep_from_s: float) -> Trajectory:
    """Return ``old`` up to ``new``'s start time followed by ``new``.

    Samples of ``old`` before ``keep_from_s`` are dropped. ``new`` must start where ``old`` is
    at that time, so the result moves exactly like ``old`` before the switch.
    """
    t0 = new.start_time_s
    start_s = max(keep_from_s, old.start_time_s)
    rows: list[list[float]] = []
    if start_s < t0:
        rows = [row for row in old.clipped(start_s, t0).to_list() if row[0] < t0]
    rows.extend(new.to_list())
    return Trajectory.from_samples(rows)


def _error(op: str, reason: str, message: str, **extra: Any) -> dict:
    return {'status': 'error', 'op': op, 'reason': reason, 'message': message, **extra}


class LedgerState:
    """Replicated state of the plan ledger; see the module docstring for the contract."""

    def __init__(self, config: LedgerConfig | None = None) -> None:
        self.config = config or LedgerConfig()
        self.version = 0
        self.fleet_time_s = 0.0
        self.robots: dict[str, RobotRecord] = {}
        self.waiting: dict[str, TurnRequest] = {}
        self.history: list[CommitRecord] = []
        self.last_requests: dict[str, tuple[int, dict]] = {}

    # -- entry point ----------------------------------------------------------------------------

    def apply(self, request: Mapping[str, Any], *, token: FencingToken) -> dict | LedgerSnapshot:
        """Execute one request at log position ``token``; never raises."""
        op = request.get('op') if isinstance(request, Mapping) else None
        try:
            clean = validate_request(request)
        except LedgerRequestError as error:
            return _error(str(op), 'malformed', str(error))
        try:
            if clean['op'] == 'read':
                return self._read(clean, token)
            return self._apply_robot_op(clean, request, token)
        except (TrajectoryError, LedgerRequestError) as error:
            return _error(clean['op'], 'malformed', str(error))
        except Exception as error:  # noqa: BLE001 - an exception would stall the apply loop
            logger.exception('ledger apply failed for %s at %s', clean['op'], token)
            return _error(clean['op'], 'internal', f'{type(error).__name__}: {error}')

    # -- robot operations -----------------------------------------------------------------------

    def _apply_robot_op(self, request: dict, raw: Mapping[str, Any],
                        token: FencingToken) -> dict:
        op, robot_id = request['op'], request['robot_id']
        record = self.robots.get(robot_id)
        public_key = request['public_key'] if op == 'register' and record is None else (
            record.public_key if record is not None else None)
        if public_key is None:
            return _error(op, 'unknown_robot', f'robot {robot_id!r} is not registered; '
                          'register it before sending ' + op)
        # The signature covers the request as sent, before normalization.
        if not verify_request(raw, public_key):
            return _error(op, 'not_authorized', f'{op} request for robot {robot_id!r} has no '
                          'valid signature by the key registered for that robot')
        last = self.last_requests.get(robot_id)
        if last is not None:
            if request['request_id'] == last[0]:
                return last[1]
            if request['request_id'] < last[0]:
                return _error(op, 'replayed_request', f'request_id {request["request_id"]} of '
                              f'robot {robot_id!r} is older than its last request {last[0]}; '
                              'use a larger request_id for every new request')
        if self.fleet_time_s > 0.0 and (request['now_s'] - self.fleet_time_s
                                        > self.config.max_time_jump_s):
            return _error(op, 'bad_clock', f'now_s={request["now_s"]} is more than '
                          f'{self.config.max_time_jump_s} s after the fleet time '
                          f'{self.fleet_time_s}; check the robot clock')
        self.fleet_time_s = max(self.fleet_time_s, request['now_s'])
        handler = {'register': self._register, 'propose': self._propose,
                   'park': self._park, 'deregister': self._deregister}[op]
        result = handler(request, record, token)
        result.setdefault('fleet_time_s', self.fleet_time_s)
        self.last_requests[robot_id] = (request['request_id'], result)
        return result

    def _others(self, robot_id: str) -> dict[str, tuple[Trajectory, float]]:
        return {other_id: (other.trajectory, other.radius_m)
                for other_id, other in self.robots.items() if other_id != robot_id}

    def _commit(self, record: RobotRecord, kind: str, t_from_s: float, token: FencingToken,
                trajectory: Trajectory | None) -> None:
        self.version += 1
        self.history.append(CommitRecord(token=token, version=self.version,
                                         robot_id=record.robot_id, kind=kind, t_from_s=t_from_s,
                                         radius_m=record.radius_m, trajectory=trajectory))
        excess = len(self.history) - self.config.max_history_records
        if excess > 0:
            del self.history[:excess]

    def _committed_result(self, op: str, record: RobotRecord, **extra: Any) -> dict:
        return {'status': 'committed', 'op': op, 'robot_id': record.robot_id,
                'version': self.version, 'token': record.token.to_list(),
                'trajectory': record.trajectory.to_list(), **extra}

    def _register(self, request: dict, record: RobotRecord | None, token: FencingToken) -> dict:
        robot_id = request['robot_id']
        if record is not None:
            # A restarted agent registers again with its own key: it gets its committed plan.
            return {**self._committed_result('register', record), 'status': 'ok',
                    'reason': 'already_registered'}
        x_m, y_m, yaw_rad = request['pose']
        hold = Trajectory.stationary((x_m, y_m), t_start_s=request['now_s'],
                                     t_end_s=request['now_s'], yaw_rad=yaw_rad)
        conflicts = conflicting_ids(hold, request['radius_m'], self._others(robot_id),
                                    clearance_m=self.config.clearance_m,
                                    t_start_s=request['now_s'])
        if conflicts:
            return {'status': 'rejected', 'op': 'register', 'robot_id': robot_id,
                    'reason': 'conflict', 'conflicts': conflicts, 'version': self.version,
                    'message': f'start pose of robot {robot_id!r} is within the committed '
                               f'occupancy of {conflicts}; register at a free pose'}
        record = RobotRecord(robot_id=robot_id, radius_m=request['radius_m'],
                             max_speed_mps=request['max_speed_mps'],
                             public_key=request['public_key'], trajectory=hold, token=token,
                             version=self.version + 1, status='holding',
                             registered_at_s=request['now_s'])
        self.robots[robot_id] = record
        self._commit(record, 'register', request['now_s'], token, hold)
        return self._committed_result('register', record)

    def _reject_proposal(self, request: dict, record: RobotRecord, reason: str,
                         conflicts: list[str], message: str,
                         wish: Trajectory | None = None) -> dict:
        if wish is not None:
            previous = self.waiting.get(record.robot_id)
            self.waiting[record.robot_id] = TurnRequest(
                robot_id=record.robot_id,
                waiting_since_s=previous.waiting_since_s if previous else self.fleet_time_s,
                potential_improvement_s=request['potential_improvement_s'], wish=wish,
                blocked_by=tuple(conflicts), updated_at_s=self.fleet_time_s)
        return {'status': 'rejected', 'op': 'propose', 'robot_id': record.robot_id,
                'reason': reason, 'conflicts': conflicts, 'version': self.version,
                'message': message}

    def _propose(self, request: dict, record: RobotRecord, token: FencingToken) -> dict:
        robot_id = record.robot_id
        proposal = Trajectory.from_samples(request['trajectory'])
        t0 = proposal.start_time_s
        if t0 < self.fleet_time_s:
            return self._reject_proposal(
                request, record, 'stale_start', [],
                f'proposal starts at t_s={t0}, before the ledger fleet time '
                f'{self.fleet_time_s}; replan from a later start time')
        committed_xy = record.trajectory.position_at(t0)
        offset_m = float(np.linalg.norm(proposal.start_xy_m - committed_xy))
        if offset_m > self.config.position_tolerance_m:
            return self._reject_proposal(
                request, record, 'discontinuous', [],
                f'proposal starts at {proposal.start_xy_m.tolist()} but robot {robot_id!r} is '
                f'committed to be at {committed_xy.tolist()} at t_s={t0}; start the plan at the '
                'committed position')
        # Snap the start onto the committed motion so the spliced trajectory is exact.
        rows = proposal.to_list()
        rows[0][1:3] = committed_xy.tolist()
        proposal = Trajectory.from_samples(rows)
        speed_limit = record.max_speed_mps * self.config.speed_tolerance
        if proposal.max_speed_mps > speed_limit:
            return self._reject_proposal(
                request, record, 'too_fast', [],
                f'proposal reaches {proposal.max_speed_mps:.3f} m/s, above the registered '
                f'max speed {record.max_speed_mps} m/s of robot {robot_id!r}')
        conflicts = conflicting_ids(proposal, record.radius_m, self._others(robot_id),
                                    clearance_m=self.config.clearance_m, t_start_s=t0)
        if conflicts:
            return self._reject_proposal(
                request, record, 'conflict', conflicts,
                f'proposal of robot {robot_id!r} conflicts with the committed plans of '
                f'{conflicts}; replan around them', wish=proposal)
        holder = self.current_turn()
        if holder is not None and holder.robot_id != robot_id \
                and holder.robot_id in self.robots:
            holder_radius_m = self.robots[holder.robot_id].radius_m
            if find_conflict(proposal, record.radius_m, holder.wish, holder_radius_m,
                             clearance_m=self.config.clearance_m, t_start_s=t0) is not None:
                return self._reject_proposal(
                    request, record, 'yield', [holder.robot_id],
                    f'proposal of robot {robot_id!r} crosses the plan wanted by '
                    f'{holder.robot_id!r}, which holds the turn; replan around that plan',
                    wish=proposal)
        keep_from_s = self.fleet_time_s - self.config.history_keep_s
        trajectory = splice(record.trajectory, proposal, keep_from_s=keep_from_s)
        record = dataclasses.replace(record, trajectory=trajectory, token=token,
                                     version=self.version + 1, status='moving')
        self.robots[robot_id] = record
        self.waiting.pop(robot_id, None)
        self._commit(record, 'propose', t0, token, proposal)
        return self._committed_result('propose', record, base_version=request['base_version'])

    def _park(self, request: dict, record: RobotRecord, token: FencingToken) -> dict:
        end_s = record.trajectory.end_time_s
        if end_s > request['now_s']:
            return _error('park', 'still_moving', f'robot {record.robot_id!r} is committed to '
                          f'move until t_s={end_s}; park at or after that time')
        record = dataclasses.replace(record, token=token, version=self.version + 1,
                                     status='parked')
        self.robots[record.robot_id] = record
        self.waiting.pop(record.robot_id, None)
        self._commit(record, 'park', request['now_s'], token, record.trajectory)
        return self._committed_result('park', record)

    def _deregister(self, request: dict, record: RobotRecord, token: FencingToken) -> dict:
        end_s = record.trajectory.end_time_s
        if end_s > request['now_s']:
            return _error('deregister', 'still_moving', f'robot {record.robot_id!r} is '
                          f'committed to move until t_s={end_s}; deregister once it stands')
        del self.robots[record.robot_id]
        self.waiting.pop(record.robot_id, None)
        self._commit(record, 'deregister', request['now_s'], token, None)
        return {'status': 'committed', 'op': 'deregister', 'robot_id': record.robot_id,
                'version': self.version, 'token': token.to_list()}

    # -- reads ----------------------------------------------------------------------------------

    def current_turn(self) -> TurnRequest | None:
        """Return the turn request that currently holds the turn, or ``None``."""
        waiting = {robot_id: request for robot_id, request in self.waiting.items()
                   if robot_id in self.robots}
        return turn_holder(waiting, fleet_time_s=self.fleet_time_s,
                           wish_ttl_s=self.config.wish_ttl_s)

    def _read(self, request: dict, token: FencingToken) -> LedgerSnapshot:
        since = request['since_version']
        changed = tuple(record for record in self.robots.values() if record.version > since)
        return LedgerSnapshot(token=token, version=self.version, fleet_time_s=self.fleet_time_s,
                              clearance_m=self.config.clearance_m, robots=changed,
                              robot_ids=tuple(sorted(self.robots)), turn=self.current_turn())


def audit_history(records: list[CommitRecord], *, clearance_m: float) -> list[dict]:
    """Re-check the no-conflict invariant over a commit history; return every violation.

    Each robot's effective motion is rebuilt by splicing its commits in log order. Two robots
    are compared over the time both were registered. An empty list means no two committed
    trajectories ever conflicted.
    """
    lives: list[dict] = []
    current: dict[str, dict] = {}
    for record in records:
        life = current.get(record.robot_id)
        if record.kind == 'register' or life is None:
            life = {'robot_id': record.robot_id, 'radius_m': record.radius_m,
                    'start_s': record.t_from_s, 'end_s': math.inf,
                    'trajectory': record.trajectory}
            current[record.robot_id] = life
            lives.append(life)
        elif record.kind == 'deregister':
            life['end_s'] = record.t_from_s
            del current[record.robot_id]
        elif record.kind == 'propose':
            life['trajectory'] = splice(life['trajectory'], record.trajectory,
                                        keep_from_s=-math.inf)
    violations = []
    for i, first in enumerate(lives):
        for second in lives[i + 1:]:
            if first['robot_id'] == second['robot_id']:
                continue
            start_s = max(first['start_s'], second['start_s'])
            end_s = min(first['end_s'], second['end_s'])
            if end_s <= start_s and end_s != math.inf:
                continue
            conflict = find_conflict(first['trajectory'], first['radius_m'],
                                     second['trajectory'], second['radius_m'],
                                     clearance_m=clearance_m, t_start_s=start_s,
                                     t_end_s=None if end_s == math.inf else end_s)
            if conflict is not None and conflict.penetration_m > 1e-9:
                violations.append({'robots': (first['robot_id'], second['robot_id']),
                                   'time_s': conflict.time_s,
                                   'distance_m': conflict.distance_m,
                                   'required_m': conflict.required_m})
    return violations
