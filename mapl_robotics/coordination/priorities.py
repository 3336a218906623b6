"""Merit-based turns between robots, decided from replicated ledger state.

The scheme follows DMA-RRT (Desaraju and How, "Decentralized path planning for multi-agent
teams in complex environments using rapidly-exploring random trees", ICRA 2011): the robot with
the most to gain gets the turn. Here a robot enters the waiting set when the ledger rejects its
proposal. Its merit is the time it has waited plus the potential improvement it reported, that
is, how many seconds sooner it would reach its goal with the rejected plan. The robot with the
highest merit holds the turn. Its rejected plan, the wish, then binds the others: the ledger
rejects their proposals that conflict with it, and the robots whose committed plans block it
are asked to replan around it. Two robots meeting in a corridor therefore do not both wait:
one of them holds the turn and the other moves out of its way, into a refuge clear of the wish
(:mod:`mapl_robotics.coordination.refuge`). Without any such refuge both still hold.

Every input is replicated state (fleet time, waiting times, reported improvements) and ties
break by robot id, so every replica computes the same turn.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from mapl_robotics.geometry.trajectory import Trajectory

__all__ = ['TurnRequest', 'merit_score', 'turn_holder']


@dataclasses.dataclass(frozen=True)
class TurnRequest:
    """A waiting robot's claim to the turn: its rejected plan and the robots blocking it."""

    robot_id: str
    waiting_since_s: float
    potential_improvement_s: float
    wish: Trajectory
    blocked_by: tuple[str, ...]
    updated_at_s: float


def merit_score(request: TurnRequest, *, fleet_time_s: float) -> float:
    """Return the merit of a waiting robot: seconds waited plus reported improvement."""
    return max(0.0, fleet_time_s - request.waiting_since_s) + request.potential_improvement_s


def turn_holder(waiting: Mapping[str, TurnRequest], *, fleet_time_s: float,
                wish_ttl_s: float) -> TurnRequest | None:
    """Return the waiting robot with the highest merit, or ``None``.

    A request whose wish was last renewed more than ``wish_ttl_s`` seconds of fleet time ago
    has expired, so a robot that stopped asking cannot keep the turn.
    """
    best: TurnRequest | None = None
    best_key = None
    for robot_id in sorted(waiting):
        request = waiting[robot_id]
        if fleet_time_s - request.updated_at_s > wish_ttl_s:
            continue
        key = (merit_score(request, fleet_time_s=fleet_time_s), robot_id)
        # Higher merit wins; among equal merits the smaller robot id wins.
        if best is None or key[0] > best_key[0] or (key[0] == best_key[0]
                                                    and robot_id < best_key[1]):
            best, best_key = request, key
    return best
