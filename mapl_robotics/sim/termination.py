"""SIGTERM handling for simulation runs, so that ``kill``, ``timeout`` and CI limits clean up.

Python's default action for SIGTERM ends the process at once, without ``finally`` blocks, so
the agent and ledger node processes of a run would keep running. :class:`SigtermGuard` turns
SIGTERM into :class:`SimulationTerminated`, which unwinds through the same clean-up as Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

__all__ = ['SimulationTerminated', 'SigtermGuard']

_LOG = logging.getLogger(__name__)


class SimulationTerminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM during a run.

    It derives from :class:`KeyboardInterrupt` rather than :class:`Exception`, so that handlers
    such as ``except Exception`` in the simulation loop do not swallow it and every clean-up
    that runs on Ctrl-C also runs on SIGTERM.
    """

    def __init__(self, signal_number: int = signal.SIGTERM) -> None:
        super().__init__(f'received {signal.Signals(signal_number).name}')
        self.signal_number = int(signal_number)


class SigtermGuard:
    """Context manager that raises :class:`SimulationTerminated` on SIGTERM while it is active.

    The previous SIGTERM handler is restored on exit. Outside the main thread Python cannot set
    signal handlers, so there the guard does nothing. While :meth:`deferred` is active, a
    SIGTERM is only recorded, and it is raised when that block ends, so clean-up code is not
    cut short. A second SIGTERM is logged and ignored, because clean-up is already running.
    """

    def __init__(self) -> None:
        self.received = False
        self._raised = False
        self._defer_depth = 0
        self._previous = None
        self._installed = False

    def __enter__(self) -> SigtermGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _handle(self, signal_number: int, frame) -> None:
        if self.received:
            _LOG.warning('received signal %d again while stopping; still cleaning up',
                         signal_number)
            return
        self.received = True
        _LOG.warning('received signal %d; stopping the run', signal_number)
        if self._defer_depth == 0:
            self._raised = True
            raise SimulationTerminated(signal_number)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold back a SIGTERM until the block ends, then raise it if no error is pending."""
        self._defer_depth += 1
        try:
            yield
        finally:
            self._defer_depth -= 1
        if self._defer_depth == 0 and self.received and not self._raised:
            self._raised = True
            raise SimulationTerminated()
