"""Spec sections for the software: planner, consensus ledger, mesh and scenario."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal, Optional, Union

from pathlib import Path

from pydantic import AfterValidator, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from mapl_robotics.spec.base import Identifier, Port, SpecModel
from mapl_robotics.spec.units import Duration

from mapl_robotics.planning.models import PlannerSettings

__all__ = ['PlannerSpec', 'ConsensusSpec', 'MeshSpec', 'KillLeaderFault', 'KillAgentFault',
           'MessageLossFault', 'PartitionFault', 'FaultSpec', 'ScenarioSpec']


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.split('.')
    if value and len(value) <= 253 and all(
            label and len(label) <= 63 and label.replace('-', '').isalnum() for label in labels):
        return value
    raise PydanticCustomError('host', 'not an IP address or host name; the default is the '
                              'loopback address 127.0.0.1')


Host = Annotated[str, AfterValidator(_check_host)]


def _check_address(value: str) -> str:
    host, separator, port = value.rpartition(':')
    if not separator or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PydanticCustomError('address', "an address is 'host:port' with a port from 1 to "
                                  "65535, for example '127.0.0.1:47100'")
    _check_host(host)
    return value


Address = Annotated[str, AfterValidator(_check_address)]


def _absolute(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the spec file's folder (the current folder for a
    mapping)."""
    base_dir = Path((info.context or {}).get('base_dir') or Path.cwd())
    path = value.expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _existing_folder(value: Path, info: ValidationInfo) -> Path:
    path = _absolute(value, info)
    if not path.is_dir():
        raise PydanticCustomError('folder_not_found', 'folder {path} does not exist; create it '
                                  'with mapl keys, or give the right path',
                                  {'path': str(path)})
    return path


# A folder that the run creates if needed, and one that must exist already.
FolderPath = Annotated[Path, Field(strict=False), AfterValidator(_absolute)]
ExistingFolderPath = Annotated[Path, Field(strict=False), AfterValidator(_existing_folder)]


# The planner section's defaults are the planning library's own, so the two cannot drift.
_PLANNER_DEFAULTS = PlannerSettings()


class PlannerSpec(SpecModel):
    """Settings of each robot's RRT-family planner."""

    algorithm: Literal['rrt', 'rrt_connect', 'rrt_star'] = _PLANNER_DEFAULTS.algorithm
    """Planner: rrt, rrt_connect (bidirectional, fastest to a first path) or rrt_star
    (asymptotically optimal, uses the whole time budget)."""

    step_size_m: float = Field(default=_PLANNER_DEFAULTS.step_size_m, gt=0.0, le=100.0)
    """Maximum length of the tree edge added by one extension, in metres."""

    goal_bias: float = Field(default=_PLANNER_DEFAULTS.goal_bias, ge=0.0, lt=1.0)
    """Probability of sampling the goal instead of a random point (RRT, RRT*)."""

    time_budget_s: Duration = Field(default=_PLANNER_DEFAULTS.time_budget_s, gt=0.0, le=3600.0)
    """Wall-clock budget of one geometric search, in seconds."""

    max_iterations: int = Field(default=_PLANNER_DEFAULTS.max_iterations, ge=1, le=10_000_000)
    """Iteration budget of one geometric search."""

    smoothing_iterations: int = Field(default=_PLANNER_DEFAULTS.smoothing_iterations, ge=0,
                                      le=100_000)
    """Rounds of random shortcut smoothing after the search."""

    corner_rule: Literal['stop', 'deflection'] = _PLANNER_DEFAULTS.corner_rule
    """Time parameterization at corners: stop (come to rest at every corner) or deflection
    (keep a corner speed that bounds the velocity change)."""

    horizon_s: Duration = Field(default=_PLANNER_DEFAULTS.horizon_s, gt=0.0, le=86_400.0)
    """How far ahead moving obstacles are predicted and checked, in seconds."""

    max_wait_s: Duration = Field(default=_PLANNER_DEFAULTS.max_wait_s, ge=0.0, le=86_400.0)
    """Maximum total wait the space-time planner inserts into one trajectory, in seconds."""

    static_margin_m: float = Field(default=_PLANNER_DEFAULTS.static_margin_m, ge=0.0, le=10.0)
    """Extra distance, in metres, that plans keep from the static map, so that tracking errors
    do not bring a robot into contact with a wall. When the start or the goal lies within the
    margin of a wall, or the margin closes every route, the whole plan uses the bare radius."""

    max_replans: int = Field(default=500, ge=1, le=100_000)
    """Proposals per goal (each one planned anew after a rejection) before the agent gives up
    and holds position with status failed."""

    clearance_m: float = Field(default=0.1, ge=0.0, le=10.0)
    """Safety margin between discs, in metres: two plans conflict when their centres come
    closer than the sum of the radii plus this margin."""

    seed: int = Field(default=0, ge=0)
    """Seed of the planners' random generators; robot i draws from
    numpy.random.default_rng([seed, i])."""

    def to_settings(self) -> PlannerSettings:
        """Return the planning layer's :class:`~mapl_robotics.planning.PlannerSettings`."""
        return PlannerSettings(algorithm=self.algorithm, step_size_m=self.step_size_m,
                               goal_bias=self.goal_bias, time_budget_s=self.time_budget_s,
                               max_iterations=self.max_iterations,
                               smoothing_iterations=self.smoothing_iterations,
                               corner_rule=self.corner_rule, horizon_s=self.horizon_s,
                               max_wait_s=self.max_wait_s,
                               static_margin_m=self.static_margin_m)


class ConsensusSpec(SpecModel):
    """Settings of the Raft plan ledger (pysyncobj)."""

    mode: Literal['replica_per_robot', 'cluster'] = 'replica_per_robot'
    """replica_per_robot: every robot agent runs a ledger replica (small fleets). cluster: a
    dedicated cluster of node_count ledger nodes, with robot agents as clients."""

    node_count: Optional[int] = Field(default=None, ge=1, le=9)
    """Ledger nodes in cluster mode (default 3); in replica_per_robot mode it is the number
    of robots. Odd counts tolerate the most failures per node."""

    addresses: Annotated[tuple[Address, ...], Field(strict=False, max_length=9)] = ()
    """Explicit 'host:port' of each ledger node, in place of node_count; empty: nodes listen on
    host at base_port, base_port + 1, ..."""

    host: Host = '127.0.0.1'
    """Address the generated ledger nodes listen on."""

    base_port: Port = 47100
    """First TCP port of the generated ledger node addresses."""

    # The timing defaults equal LedgerSettings' defaults, and a test keeps them equal.
    append_entries_period_s: Duration = Field(default=0.03, gt=0.0, le=10.0)
    """Period of the leader's append-entries (heartbeat) messages, in seconds; less than a
    third of election_timeout_min_s."""

    election_timeout_min_s: Duration = Field(default=0.15, gt=0.0, le=60.0)
    """Lower end of the randomized election timeout, in seconds."""

    election_timeout_max_s: Duration = Field(default=0.3, gt=0.0, le=60.0)
    """Upper end of the randomized election timeout, in seconds."""

    tick_s: Duration = Field(default=0.005, gt=0.0, le=1.0)
    """Period of each node's event loop tick, in seconds."""

    journal_dir: Optional[FolderPath] = None
    """Folder for the nodes' journal files (commits are acknowledged only once written there);
    null: the runner uses a fresh folder inside its output folder."""

    commit_timeout_s: Duration = Field(default=1.0, gt=0.0, le=600.0)
    """How long an agent waits for the ledger to answer a proposal or a read before it holds
    position and retries, in seconds."""

    @model_validator(mode='after')
    def _check(self) -> 'ConsensusSpec':
        if self.addresses and self.node_count is not None:
            raise PydanticCustomError('exclusive', 'give either node_count or addresses, not '
                                      'both')
        if len(set(self.addresses)) != len(self.addresses):
            raise PydanticCustomError('duplicate', 'addresses contains duplicates')
        if not self.election_timeout_min_s < self.election_timeout_max_s:
            raise PydanticCustomError(
                'timeout_order', 'election_timeout_min_s={low} must be less than '
                'election_timeout_max_s={high}',
                {'low': self.election_timeout_min_s, 'high': self.election_timeout_max_s})
        # pysyncobj 0.3.17 (SyncObjConf.validate) requires raftMinTimeout to exceed three
        # appendEntriesPeriod, so a follower hears several heartbeats before it may campaign.
        if not 3.0 * self.append_entries_period_s < self.election_timeout_min_s:
            raise PydanticCustomError(
                'heartbeat_too_slow', 'append_entries_period_s={period} must be less than a '
                'third of election_timeout_min_s={low}, or followers start elections while the '
                'leader is alive; shorten the heartbeat period or lengthen the election timeout',
                {'period': self.append_entries_period_s, 'low': self.election_timeout_min_s})
        if not self.tick_s <= self.append_entries_period_s:
            raise PydanticCustomError(
                'tick_too_slow', 'tick_s={tick} must not exceed append_entries_period_s={period}',
                {'tick': self.tick_s, 'period': self.append_entries_period_s})
        return self


class MeshSpec(SpecModel):
    """Settings of the ZeroMQ mesh."""

    host: Host = '127.0.0.1'
    """Address each mesh node binds its ROUTER socket on."""

    base_port: Port = 47500
    """TCP port of the first mesh node; node i listens on base_port + i."""

    heartbeat_period_s: Duration = Field(default=0.025, gt=0.0, le=60.0)
    """Period of heartbeats to each peer, in seconds."""

    heartbeat_misses: int = Field(default=3, ge=1, le=100)
    """Missed heartbeats after which a peer counts as dead."""

    retry_initial_s: Duration = Field(default=0.005, gt=0.0, le=60.0)
    """Delay before the first retry of an unacknowledged message, in seconds."""

    retry_backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    """Factor by which each further retry delay grows."""

    retry_max_s: Duration = Field(default=0.04, gt=0.0, le=60.0)
    """Upper limit of the retry delay, in seconds; retries stop at the message's deadline."""

    circuit_breaker_failures: int = Field(default=5, ge=1, le=1000)
    """Consecutive failed deliveries after which a peer goes behind the circuit breaker."""

    circuit_breaker_probe_s: Duration = Field(default=0.5, gt=0.0, le=600.0)
    """Period of probes to a peer behind the circuit breaker, in seconds."""

    send_hwm: int = Field(default=1000, ge=1, le=1_000_000)
    """ZeroMQ send high-water mark (messages queued per peer before drops are reported)."""

    receive_hwm: int = Field(default=1000, ge=1, le=1_000_000)
    """ZeroMQ receive high-water mark."""

    max_payload_bytes: int = Field(default=1_048_576, ge=1024, le=268_435_456)
    """Largest accepted payload; larger messages are rejected and counted."""

    curve: bool = True
    """Whether CurveZMQ authenticates peers against the allowed keys and encrypts traffic."""

    keys_dir: Optional[ExistingFolderPath] = None
    """Folder with each node's secret key file '<id>.key_secret' (as written by mapl keys);
    null with curve on: the runner generates key pairs for the run."""

    authorized_keys_dir: Optional[ExistingFolderPath] = None
    """Folder with the public key files '<id>.key' of every allowed peer; null: keys_dir."""

    max_clock_skew_s: Duration = Field(default=0.01, gt=0.0, le=10.0)
    """Largest accepted error bound of a node's clock-offset estimate, in seconds; above it, or
    while no estimate exists yet, the robot holds position."""

    @model_validator(mode='after')
    def _check(self) -> 'MeshSpec':
        if not self.retry_initial_s <= self.retry_max_s:
            raise PydanticCustomError(
                'retry_order', 'retry_initial_s={initial} must not exceed retry_max_s={max}',
                {'initial': self.retry_initial_s, 'max': self.retry_max_s})
        return self


class KillLeaderFault(SpecModel):
    """SIGKILL the ledger leader's process at at_s."""

    type: Literal['kill_leader']
    at_s: Duration
    """Fleet time of the kill, in seconds."""


class KillAgentFault(SpecModel):
    """SIGKILL one robot's agent at at_s; the robot stops and its last plan stays committed."""

    type: Literal['kill_agent']
    robot: Identifier
    """Id of the robot whose agent is killed."""

    at_s: Duration
    """Fleet time of the kill, in seconds."""


class MessageLossFault(SpecModel):
    """Drop each mesh message with probability rate (seeded by scenario.seed)."""

    type: Literal['message_loss']
    rate: float = Field(ge=0.0, lt=1.0)
    """Probability in [0, 1) that a message is dropped."""


class PartitionFault(SpecModel):
    """Cut nodes off from all other nodes during [at_s, at_s + duration_s]."""

    type: Literal['partition']
    at_s: Duration
    """Fleet time at which the partition starts, in seconds."""

    duration_s: Duration = Field(gt=0.0)
    """How long it lasts, in seconds."""

    nodes: Annotated[tuple[Identifier, ...], Field(strict=False, min_length=1)]
    """Robot ids, or ledger node names ledger_0, ledger_1, ... in cluster mode, on the cut-off
    side."""


FaultSpec = Annotated[Union[KillLeaderFault, KillAgentFault, MessageLossFault, PartitionFault],
                      Field(discriminator='type')]


class ScenarioSpec(SpecModel):
    """How a simulated run goes: seed, duration, step and injected faults."""

    seed: int = Field(default=0, ge=0)
    """Seed of the simulator and of the fault layer's random generators."""

    time_limit_s: Duration = Field(default=120.0, gt=0.0, le=86_400.0)
    """Simulated time after which robots that have not arrived count as failed, in seconds."""

    step_s: Duration = Field(default=1.0 / 60.0, gt=0.0, le=1.0)
    """Simulation step, in seconds."""

    faults: Annotated[tuple[FaultSpec, ...], Field(strict=False, max_length=1000)] = ()
    """Faults to inject, each selected by its key type."""
