"""Build a node's :class:`~mapl_robotics.mesh.config.MeshConfig` from a fleet spec."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.delivery import RetryPolicy
from mapl_robotics.mesh.faults import FaultConfig
from mapl_robotics.mesh.schema import MESSAGE_OVERHEAD_BYTES
from mapl_robotics.mesh.security import FleetKeyring, load_keypair

__all__ = ['mesh_config_from_spec', 'fleet_reference_id']


def fleet_reference_id(spec) -> str:
    """Return the node whose clock is fleet time: the first ledger node, else the first robot.

    NOTE: the reference is a fixed node, not the current Raft leader. If it stops, the other
    nodes' error bounds grow with drift until they exceed the spec's max_clock_skew_s, and
    then the robots hold.
    """
    ledger_nodes = [node for node in spec.mesh_node_ids if node in spec.ledger_node_names]
    return ledger_nodes[0] if ledger_nodes else spec.mesh_node_ids[0]


def mesh_config_from_spec(spec, node_id: str, *, keys_dir: str | Path | None = None,
                          clock: Callable[[], float] = time.time,
                          audit_path: str | None = None) -> MeshConfig:
    """Return the mesh configuration of ``node_id`` in the fleet described by ``spec``.

    Endpoints, timing, limits and security come from the spec's ``mesh`` section. The default
    message deadline is the communication latency bound. Message-loss faults of the scenario
    feed the fault layer, seeded by ``scenario.seed``. ``keys_dir`` overrides
    ``mesh.keys_dir``, for a runner that generated the keys for its run.
    """
    endpoints = spec.mesh_endpoints()
    if node_id not in endpoints:
        raise MeshConfigError(f'node {node_id!r} is not a mesh node of this fleet; mesh nodes '
                              f'are {sorted(endpoints)}')
    mesh = spec.mesh
    keypair = keyring = None
    keys_dir = keys_dir if keys_dir is not None else mesh.keys_dir
    if mesh.curve:
        if keys_dir is None:
            raise MeshConfigError('mesh.curve is on but mesh.keys_dir is not set; run `mapl '
                                  'keys generate --out DIR --robots ...` and set keys_dir')
        keys_dir = Path(keys_dir)
        keypair = load_keypair(keys_dir / f'{node_id}.key_secret')
        keyring = FleetKeyring.from_directory(Path(mesh.authorized_keys_dir or keys_dir))
    drop_p = 0.0
    for fault in spec.scenario.faults:
        if getattr(fault, 'type', None) == 'message_loss':
            drop_p = max(drop_p, float(fault.rate))
    return MeshConfig(
        node_id=node_id, bind_endpoint=endpoints[node_id],
        peers=tuple(PeerConfig(other, endpoint) for other, endpoint in endpoints.items()
                    if other != node_id),
        security='curve' if mesh.curve else 'none', keypair=keypair, keyring=keyring,
        heartbeat_interval_s=mesh.heartbeat_period_s, heartbeat_misses=mesh.heartbeat_misses,
        default_deadline_s=spec.system.communication.latency_bound_s,
        retry=RetryPolicy(initial_s=mesh.retry_initial_s, multiplier=mesh.retry_backoff,
                          max_interval_s=mesh.retry_max_s),
        max_payload_bytes=mesh.max_payload_bytes,
        max_batch_bytes=max(128 * 1024, mesh.max_payload_bytes + MESSAGE_OVERHEAD_BYTES),
        send_hwm=mesh.send_hwm, receive_hwm=mesh.receive_hwm,
        breaker_failure_threshold=mesh.circuit_breaker_failures,
        breaker_cooldown_s=mesh.circuit_breaker_probe_s,
        reference_id=fleet_reference_id(spec), faults=FaultConfig(drop_p=drop_p),
        fault_seed=spec.scenario.seed, audit_path=audit_path, clock=clock)
