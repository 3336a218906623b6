"""Configuration of a mesh node: identity, peers, keys, timing and limits."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.delivery import RetryPolicy
from mapl_robotics.mesh.faults import FaultConfig
from mapl_robotics.mesh.schema import (MESSAGE_OVERHEAD_BYTES, PACKET_OVERHEAD_BYTES,
                                       validate_node_id)
from mapl_robotics.mesh.security import FleetKeyring, KeyPair

__all__ = ['PeerConfig', 'MeshConfig']

_MAX_TCP_PORT = 65535


def _check_tcp_port(endpoint: str, *, label: str, bind: bool) -> None:
    """Raise MeshConfigError unless a ``tcp://`` endpoint ends in a port within range.

    libzmq 4.3 keeps only the low 16 bits of the port number, so port 99999 would silently
    bind 34463 and -5 would bind 65531. A bind may also name port 0 or ``*``, which libzmq
    replaces with a free ephemeral port. Other transports (ipc, inproc) have no port.
    """
    if not endpoint.startswith('tcp://'):
        return
    # A connect endpoint may name a source address first: tcp://SOURCE:PORT;HOST:PORT.
    address = endpoint[len('tcp://'):].rpartition(';')[2]
    host, separator, port = address.rpartition(':')
    lowest = 0 if bind else 1
    valid_range = f'{lowest}-{_MAX_TCP_PORT}' + (' or *' if bind else '')
    if not separator or not host:
        raise MeshConfigError(f'{label} {endpoint!r} has no port. Use tcp://HOST:PORT with a '
                              f'port in {valid_range}, for example tcp://127.0.0.1:7001')
    if bind and port == '*':
        return
    if not (port.isascii() and port.isdigit() and lowest <= int(port) <= _MAX_TCP_PORT):
        raise MeshConfigError(f'{label} {endpoint!r} has invalid port {port!r}. The port must '
                              f'be in {valid_range}, for example tcp://127.0.0.1:7001')


@dataclasses.dataclass(frozen=True)
class PeerConfig:
    """A peer: its node id and the TCP endpoint its inbound socket is bound to."""

    node_id: str
    endpoint: str

    def __post_init__(self) -> None:
        validate_node_id(self.node_id)
        if not self.endpoint.startswith(('tcp://', 'ipc://', 'inproc://')):
            raise MeshConfigError(f'peer {self.node_id!r} endpoint {self.endpoint!r} must be '
                                  'a ZeroMQ endpoint such as tcp://127.0.0.1:7001')
        _check_tcp_port(self.endpoint, label=f'peer {self.node_id!r} endpoint', bind=False)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Everything a :class:`~mapl_robotics.mesh.node.MeshNode` needs.

    Security is on by default (``security='curve'``): pass ``keypair`` (this node's) and
    ``keyring`` (the fleet's allowed public keys). ``security='none'`` turns authentication
    and encryption off and trusts the sender id inside each packet; use it only on a trusted
    loopback test.

    Timing: heartbeats every ``heartbeat_interval_s`` and a peer is dead after
    ``heartbeat_misses`` silent intervals; a message without an explicit deadline gets
    ``default_deadline_s``. ``reference_id`` names the node whose clock is fleet time (None:
    this node has no reference and its clock error bound stays unknown). ``clock`` is the
    wall clock (``time.time``); tests inject a skewed one.

    High-water marks count packets per connection. The outbound queue to a peer that is down
    fills with retransmissions, which are stale duplicates by the time it returns, so
    ``send_hwm`` is kept small (1000 packets, a few seconds of fleet traffic to one peer);
    packets over it are counted as ``hwm_drops`` and retried like lost ones.
    """

    node_id: str
    bind_endpoint: str = 'tcp://127.0.0.1:0'
    peers: tuple[PeerConfig, ...] = ()
    security: str = 'curve'
    keypair: KeyPair | None = None
    keyring: FleetKeyring | None = None
    heartbeat_interval_s: float = 0.025
    heartbeat_misses: int = 3
    default_deadline_s: float = 0.1
    retry: RetryPolicy = RetryPolicy()
    window: int = 1024
    max_payload_bytes: int = 64 * 1024
    max_batch_bytes: int = 128 * 1024
    send_hwm: int = 1000
    receive_hwm: int = 1000
    max_outstanding: int = 50_000
    state_batch_window_s: float = 0.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_s: float = 0.5
    reference_id: str | None = None
    faults: FaultConfig = FaultConfig()
    fault_seed: int = 0
    audit_path: str | None = None
    clock: Callable[[], float] = dataclasses.field(default=time.time, compare=False)

    def __post_init__(self) -> None:
        validate_node_id(self.node_id)
        if self.reference_id is not None:
            validate_node_id(self.reference_id)
        _check_tcp_port(self.bind_endpoint, label=f'node {self.node_id!r} bind endpoint',
                        bind=True)
        object.__setattr__(self, 'peers', tuple(self.peers))
        ids = [peer.node_id for peer in self.peers]
        if self.node_id in ids:
            raise MeshConfigError(f'node {self.node_id!r} lists itself as a peer; remove it')
        if len(set(ids)) != len(ids):
            raise MeshConfigError(f'peer ids must be unique, got {ids}')
        if self.security not in ('curve', 'none'):
            raise MeshConfigError(f"security must be 'curve' or 'none', got {self.security!r}")
        if self.security == 'curve':
            if self.keypair is None or self.keyring is None:
                raise MeshConfigError(
                    f'node {self.node_id!r}: CurveZMQ security needs keypair and keyring; '
                    "generate keys with `mapl keys generate`, or set security='none' for a "
                    'trusted loopback test')
            for peer_id in ids:
                self.keyring.public_key(peer_id)
            listed_as = self.keyring.node_for_key(self.keypair.public_key)
            if listed_as is None:
                raise MeshConfigError(
                    f'the keyring does not list the public key of {self.node_id!r}: put '
                    f'{self.node_id}.key, written by `mapl keys generate` next to '
                    f'{self.node_id}.key_secret, into the folder of allowed keys')
            if listed_as != self.node_id:
                raise MeshConfigError(
                    f'the public key of {self.node_id!r} is listed in the keyring as '
                    f'{listed_as!r}; each node needs its own key pair')
        for name in ('heartbeat_interval_s', 'default_deadline_s', 'breaker_cooldown_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise MeshConfigError(f'{name} must be a positive number of seconds, '
                                      f'got {value!r}')
        if not (math.isfinite(self.state_batch_window_s) and self.state_batch_window_s >= 0):
            raise MeshConfigError('state_batch_window_s must be >= 0 seconds, '
                                  f'got {self.state_batch_window_s!r}')
        for name in ('heartbeat_misses', 'window', 'max_payload_bytes', 'send_hwm',
                     'receive_hwm', 'max_outstanding', 'breaker_failure_threshold'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MeshConfigError(f'{name} must be a positive integer, got {value!r}')
        if self.max_batch_bytes < self.max_payload_bytes + MESSAGE_OVERHEAD_BYTES:
            raise MeshConfigError(
                f'max_batch_bytes ({self.max_batch_bytes}) must hold at least one maximal '
                f'payload ({self.max_payload_bytes} bytes plus {MESSAGE_OVERHEAD_BYTES})')

    @property
    def secure(self) -> bool:
        return self.security == 'curve'

    @property
    def max_packet_bytes(self) -> int:
        """Largest packet body a node accepts; larger input is dropped as oversized."""
        return self.max_batch_bytes + PACKET_OVERHEAD_BYTES
