"""ZeroMQ mesh: acknowledged, de-duplicated, ordered and authenticated delivery.

Low layer (one concern per module): :mod:`~.schema` (wire format and codec),
:mod:`~.transport` (sockets), :mod:`~.faults` (seeded fault injection), :mod:`~.delivery`
(acknowledgements, retries, de-duplication), :mod:`~.heartbeat`, :mod:`~.breaker`,
:mod:`~.clock` (time synchronization), :mod:`~.security` (CurveZMQ keys and ZAP),
:mod:`~.audit`, :mod:`~.metrics`. High layer: :class:`MeshNode` and :class:`MeshConfig`, plus
the adapters that connect the mesh to the coordination layer.
"""

from mapl_robotics.mesh.breaker import BreakerState, CircuitBreaker
from mapl_robotics.mesh.clock import ClockSync
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.delivery import DeliveryReport, RetryPolicy
from mapl_robotics.mesh.faults import FaultConfig
from mapl_robotics.mesh.node import MeshNode
from mapl_robotics.mesh.schema import Message, Priority
from mapl_robotics.mesh.security import (FleetKeyring, KeyPair, generate_keypair, load_keypair,
                                         load_public_key, write_keypair)

__all__ = [
    'BreakerState',
    'CircuitBreaker',
    'ClockSync',
    'DeliveryReport',
    'FaultConfig',
    'FleetKeyring',
    'KeyPair',
    'MeshConfig',
    'MeshNode',
    'Message',
    'PeerConfig',
    'Priority',
    'RetryPolicy',
    'generate_keypair',
    'load_keypair',
    'load_public_key',
    'write_keypair',
]
