"""Coordination: the Raft plan ledger (pysyncobj) and the per-robot agent loop.

The ledger commits a robot's trajectory only if it is clear of every other committed
trajectory, so no two committed plans ever conflict. See the Coordination section of
docs/architecture.md.
"""

from mapl_robotics.coordination.agent import AgentSettings, AgentStep, RobotAgent
from mapl_robotics.coordination.client import (ClientTransport, CommitResult, LedgerClient,
                                               LedgerView, RobotView, TurnView,
                                               ZmqClientTransport)
from mapl_robotics.coordination.cluster import LocalCluster, free_ports
from mapl_robotics.coordination.ledger_state import (CommitRecord, FencingToken, LedgerConfig,
                                                     LedgerSnapshot, LedgerState,
                                                     audit_history, splice)
from mapl_robotics.coordination.protocol import generate_key_pair, public_key_of
from mapl_robotics.coordination.settings import LedgerSettings

__all__ = [
    'AgentSettings',
    'AgentStep',
    'ClientTransport',
    'CommitRecord',
    'CommitResult',
    'FencingToken',
    'LedgerClient',
    'LedgerConfig',
    'LedgerSettings',
    'LedgerSnapshot',
    'LedgerState',
    'LedgerView',
    'LocalCluster',
    'RobotAgent',
    'RobotView',
    'TurnView',
    'ZmqClientTransport',
    'audit_history',
    'free_ports',
    'generate_key_pair',
    'public_key_of',
    'splice',
]
