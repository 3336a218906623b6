"""The ``roboticSystem`` block: coordination, path planning and communication.

Each field selects behaviour elsewhere in the product; docs/spec.md lists the effect of each
value. Values that the product does not implement are rejected with the reason, so that no
document silently requests something the fleet does not do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from mapl_robotics.spec.base import SpecModel
from mapl_robotics.spec.units import DurationWithUnit

__all__ = ['Coordination', 'PathPlanningConstraints', 'PathPlanning', 'Communication',
           'RoboticSystem']


def _required_true(reason: str):
    def check(value: bool) -> bool:
        if value is not True:
            raise PydanticCustomError('required_true', 'must be true: {reason}',
                                      {'reason': reason})
        return value
    return AfterValidator(check)


class Coordination(SpecModel):
    """How robots agree on plans and on time."""

    protocol: Literal['consensus_based']
    """consensus_based: every plan is proposed to the Raft plan ledger, which commits it only
    when it is clear of every committed plan. A robot moves only along a committed plan."""

    synchronization: Literal['time_bounded']
    """time_bounded: each node estimates its clock offset to the fleet reference with an error
    bound, widens its clearance by bound x speed, and holds position while the bound is unknown
    or above mesh.max_clock_skew_s."""


class PathPlanningConstraints(SpecModel):
    """Constraints every plan must satisfy."""

    collision_avoidance: Annotated[bool, _required_true(
        'the plan ledger commits only plans that are clear of every committed plan, static '
        'obstacle and predicted moving obstacle, and the fleet never runs without that check')]
    """true: static obstacles are checked when planning, and the ledger rejects any plan that
    comes closer to a committed plan than the sum of the radii plus planner.clearance_m."""

    dynamic_obstacles: bool
    """true: moving obstacles are predicted from their motion models and planned against.
    false: planners ignore them (the simulator still moves them and counts collisions with
    them), which is useful only as a baseline in experiments."""


class PathPlanning(SpecModel):
    """Who plans, and with which algorithm family."""

    algorithm: Literal['distributed_rrt']
    """distributed_rrt: each robot's agent plans its own path locally with the RRT family
    (planner.algorithm picks RRT, RRT-Connect or RRT*) against the committed plans of the
    others."""

    constraints: PathPlanningConstraints


class Communication(SpecModel):
    """How agents exchange messages, and how fast."""

    mesh_network: Annotated[bool, _required_true(
        'agents exchange plan announcements, states, heartbeats and emergency stops only over '
        'the ZeroMQ mesh, and the fleet has no other transport for them')]
    """true: agents exchange plans, states, heartbeats, clock samples and emergency stops over
    the ZeroMQ mesh (ROUTER sockets, settings under mesh)."""

    latency_bound_s: DurationWithUnit = Field(alias='latency_bound', gt=0.0, le=60.0)
    """Bound on send-to-acknowledged delivery (written with a unit, e.g. "100ms"). It is each
    mesh message's deadline, and a robot that cannot confirm its commit or hear the ledger
    within it holds position."""

    reliability: Literal['guaranteed_delivery', 'best_effort']
    """guaranteed_delivery: every message is acknowledged, retried with backoff until its
    deadline and de-duplicated; the sender learns whether it was delivered. best_effort: each
    message is sent once without acknowledgement or retries; plans still commit only through
    the ledger, so safety does not depend on it."""

    @property
    def acknowledged(self) -> bool:
        """Whether mesh messages are acknowledged and retried until their deadline."""
        return self.reliability == 'guaranteed_delivery'


class RoboticSystem(SpecModel):
    """The ``roboticSystem`` block."""

    coordination: Coordination
    path_planning: PathPlanning = Field(alias='pathPlanning')
    communication: Communication
