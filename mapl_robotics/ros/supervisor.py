"""Run a fleet's node descriptions as subprocesses, without the ``ros2`` command.

:class:`FleetSupervisor` starts one process per :class:`NodeDescription`, restarts the ones
marked ``respawn`` (a bounded number of times), and stops them all in order: SIGINT first so
rclpy shuts down cleanly, SIGTERM after a grace period, SIGKILL as the last resort.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import time
from typing import IO, Mapping, Sequence

from mapl_robotics.ros.launch_description import NodeDescription
from mapl_robotics.runtime import PARENT_PID_ENV

__all__ = ['FleetSupervisor', 'ManagedProcess', 'loopback_environment']

_LOG = logging.getLogger(__name__)

MAX_RESPAWNS = 10


def loopback_environment(base: Mapping[str, str] | None = None, *,
                         domain_id: int | None = None) -> dict[str, str]:
    """Return an environment whose DDS discovery stays on this host.

    ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` is the setting since ROS 2 Iron; an existing
    value in ``base`` is kept, so a user who wants a subnet-wide fleet sets it explicitly.
    """
    environment = dict(os.environ if base is None else base)
    environment.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    environment.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    environment.setdefault('PYTHONUNBUFFERED', '1')
    if domain_id is not None:
        environment['ROS_DOMAIN_ID'] = str(int(domain_id))
    return environment


@dataclasses.dataclass
class ManagedProcess:
    """One supervised process and its restart bookkeeping."""

    description: NodeDescription
    command: list[str]
    process: subprocess.Popen | None = None
    respawns: int = 0
    exited_at_s: float | None = None


class FleetSupervisor:
    """Start, watch and stop the processes of a fleet.

    :param stdout: where children write; ``None`` inherits this process's streams.
    """

    def __init__(self, descriptions: Sequence[NodeDescription], *,
                 environment: Mapping[str, str] | None = None,
                 python: str | None = None, stdout: IO | None = None) -> None:
        self.environment = dict(environment if environment is not None
                                else loopback_environment())
        self.stdout = stdout
        self.processes = [ManagedProcess(d, d.command(python=python))
                          for d in descriptions]

    def start(self) -> None:
        """Start every process, each in its own process group."""
        for managed in self.processes:
            self._spawn(managed)

    def _spawn(self, managed: ManagedProcess) -> None:
        # The child stops on its own if this process dies without stopping it (SIGKILL).
        environment = {**self.environment, PARENT_PID_ENV: str(os.getpid())}
        managed.process = subprocess.Popen(
            managed.command, env=environment, stdout=self.stdout,
            stderr=subprocess.STDOUT if self.stdout is not None else None,
            stdin=subprocess.DEVNULL, start_new_session=True)
        managed.exited_at_s = None
        _LOG.info('started %s (pid %d)', managed.description.fully_qualified_name,
                  managed.process.pid)

    def poll(self) -> list[ManagedProcess]:
        """Restart exited processes that may respawn; return the ones that exited for good."""
        finished = []
        now_s = time.monotonic()
        for managed in self.processes:
            process = managed.process
            if process is None or process.poll() is None:
                continue
            description = managed.description
            if managed.exited_at_s is None:
                managed.exited_at_s = now_s
                _LOG.warning('%s exited with status %s', description.fully_qualified_name,
                             process.returncode)
            if description.respawn and managed.respawns < MAX_RESPAWNS:
                if now_s - managed.exited_at_s >= description.respawn_delay_s:
                    managed.respawns += 1
                    _LOG.info('respawning %s (%d of at most %d)',
                              description.fully_qualified_name, managed.respawns, MAX_RESPAWNS)
                    self._spawn(managed)
            else:
                finished.append(managed)
        return finished

    def running(self) -> bool:
        return any(m.process is not None and m.process.poll() is None for m in self.processes)

    def stop(self, *, grace_s: float = 10.0) -> dict[str, int | None]:
        """Stop every process: SIGINT, then SIGTERM after ``grace_s``, then SIGKILL.

        :returns: each node's exit status by fully qualified name.
        """
        for signal_number, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, grace_s / 2),
                                      (signal.SIGKILL, grace_s / 2)):
            alive = [m for m in self.processes if m.process and m.process.poll() is None]
            if not alive:
                break
            for managed in alive:
                try:
                    os.killpg(managed.process.pid, signal_number)
                except ProcessLookupError:
                    pass
            deadline_s = time.monotonic() + wait_s
            for managed in alive:
                try:
                    managed.process.wait(timeout=max(0.0, deadline_s - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _LOG.warning('%s did not exit within %.1f s of signal %s',
                                 managed.description.fully_qualified_name, wait_s,
                                 signal.Signals(signal_number).name)
        return {m.description.fully_qualified_name: (m.process.returncode if m.process else None)
                for m in self.processes}
