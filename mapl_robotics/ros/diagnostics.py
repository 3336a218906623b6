"""Robot and ledger status as ``diagnostic_msgs``: building statuses and reading them back.

Each agent node publishes one ``DiagnosticStatus`` named ``mapl_robotics/<robot>`` on its
namespaced ``diagnostics`` topic. The fleet node gathers them, adds one status named
``mapl_robotics/ledger`` and publishes the set on ``/diagnostics``, where ``rqt_runtime_monitor``
and the diagnostic aggregator read it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

__all__ = [
    'LEDGER_STATUS_NAME',
    'find_status',
    'RobotReport',
    'ledger_status',
    'robot_status',
    'status_values',
]

LEDGER_STATUS_NAME = 'mapl_robotics/ledger'


@dataclasses.dataclass(frozen=True)
class RobotReport:
    """An agent's report about itself: state, ledger view, latencies in ms, counters."""

    robot: str
    state: str
    ledger_leader: str = ''
    ledger_term: int = -1
    commit_ms_p50: float = float('nan')
    commit_ms_p99: float = float('nan')
    mesh_ms_p99: float = float('nan')
    deadline_misses: int = 0
    plan_version: int = -1
    replans: int = 0
    rejected_messages: int = 0
    message: str = ''

    @property
    def level(self) -> bytes:
        if self.state in ('error', 'failed'):
            return DiagnosticStatus.ERROR
        if self.state in ('holding', 'stale') or self.deadline_misses > 0:
            return DiagnosticStatus.WARN
        return DiagnosticStatus.OK


def _value(key: str, value) -> KeyValue:
    if isinstance(value, float):
        text = 'nan' if value != value else f'{value:.3f}'
    else:
        text = str(value)
    return KeyValue(key=key, value=text)


def robot_status(report: RobotReport) -> DiagnosticStatus:
    """Build the ``DiagnosticStatus`` of one robot."""
    status = DiagnosticStatus(level=report.level, name=f'mapl_robotics/{report.robot}',
                              hardware_id=report.robot,
                              message=report.message or report.state)
    status.values = [
        _value('state', report.state),
        _value('ledger_leader', report.ledger_leader),
        _value('ledger_term', report.ledger_term),
        _value('commit_ms_p50', report.commit_ms_p50),
        _value('commit_ms_p99', report.commit_ms_p99),
        _value('mesh_ms_p99', report.mesh_ms_p99),
        _value('deadline_misses', report.deadline_misses),
        _value('plan_version', report.plan_version),
        _value('replans', report.replans),
        _value('rejected_messages', report.rejected_messages),
    ]
    return status


def ledger_status(*, leader: str, term: int, replicas: int, source: str) -> DiagnosticStatus:
    """Build the ledger's ``DiagnosticStatus``; ERROR when no leader is known."""
    level = DiagnosticStatus.OK if leader else DiagnosticStatus.ERROR
    message = f'leader {leader}, term {term}' if leader else 'no ledger leader known'
    status = DiagnosticStatus(level=level, name=LEDGER_STATUS_NAME, hardware_id='ledger',
                              message=message)
    status.values = [_value('leader', leader), _value('term', term),
                     _value('replicas', replicas), _value('source', source)]
    return status


def status_values(status: DiagnosticStatus) -> Mapping[str, str]:
    """Return a status's key/value pairs as a dict."""
    return {pair.key: pair.value for pair in status.values}


def find_status(array: DiagnosticArray, name: str) -> DiagnosticStatus | None:
    """Return the status called ``name`` in ``array``, if present."""
    for status in array.status:
        if status.name == name:
            return status
    return None
