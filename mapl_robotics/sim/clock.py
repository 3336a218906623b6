"""The simulation clock: fleet time as the simulator advances it.

Agents read fleet time from the simulator instead of their own wall clock, so a run is the same
whether the simulator runs faster or slower than real time.

- :class:`SimClock` is the in-process clock: plain fixed steps, fully deterministic.
- :class:`SharedClock` publishes the same time through a small memory-mapped file, so agents in
  other OS processes read the simulator's fleet time with one ``mmap`` read and no messages.
- :class:`RealTimePacer` keeps the simulation from running ahead of the wall clock in
  multi-process mode, where agents plan against real time and real mesh deadlines.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import struct
import time
from pathlib import Path

from mapl_robotics.errors import SimulationError

__all__ = ['SimClock', 'SharedClock', 'RealTimePacer']

_LOG = logging.getLogger(__name__)

# Layout of the shared clock file: magic, sequence counter, fleet time in seconds. The writer
# bumps the sequence to odd before it writes and to even after, so a reader that sees an odd or
# changed sequence retries (a seqlock), and never returns a half-written time.
_MAGIC = 0x4D41504C  # 'MAPL'
_FORMAT = '<IQd'
_SIZE = struct.calcsize(_FORMAT)
_READ_TIMEOUT_S = 5.0


class SimClock:
    """Fleet time that advances in fixed steps of ``step_s`` seconds.

    Calling the clock returns the current time, so it can be passed wherever a zero-argument
    time function is expected.
    """

    def __init__(self, *, step_s: float = 1.0 / 60.0, t_start_s: float = 0.0) -> None:
        if not (math.isfinite(step_s) and step_s > 0.0):
            raise SimulationError(f'simulation step_s={step_s} must be a positive number of '
                                  'seconds, for example 1/60')
        if not math.isfinite(t_start_s):
            raise SimulationError(f'simulation t_start_s={t_start_s} must be finite')
        self.step_s = float(step_s)
        self._t_start_s = float(t_start_s)
        self._steps = 0

    @property
    def steps(self) -> int:
        """Number of steps taken so far."""
        return self._steps

    def now_s(self) -> float:
        """Return the current fleet time in seconds."""
        # Multiplying instead of summing keeps the time free of accumulated rounding error.
        return self._t_start_s + self._steps * self.step_s

    __call__ = now_s

    def advance(self) -> float:
        """Advance by one step and return the new time."""
        self._steps += 1
        return self.now_s()


class SharedClock:
    """Fleet time shared between processes through a memory-mapped file.

    The simulator creates the file with :meth:`create` and calls :meth:`publish` after each step.
    Agent processes attach with :meth:`attach` and call the instance (or :meth:`now_s`).
    """

    def __init__(self, path: Path, mapping: mmap.mmap, file_descriptor: int, *,
                 writer: bool) -> None:
        self.path = Path(path)
        self._mapping = mapping
        self._file_descriptor = file_descriptor
        self._writer = writer
        self._sequence = 0

    @classmethod
    def create(cls, path: str | os.PathLike, *, t_start_s: float = 0.0) -> 'SharedClock':
        """Create (or overwrite) the clock file and return the writing end."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(file_descriptor, struct.pack(_FORMAT, _MAGIC, 0, float(t_start_s)))
        mapping = mmap.mmap(file_descriptor, _SIZE)
        return cls(path, mapping, file_descriptor, writer=True)

    @classmethod
    def attach(cls, path: str | os.PathLike) -> 'SharedClock':
        """Open an existing clock file for reading."""
        path = Path(path)
        try:
            file_descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SimulationError(
                f'shared clock file {str(path)!r} does not exist; the simulator creates it '
                'before it starts the agents, so start the agents from the runner') from None
        try:
            mapping = mmap.mmap(file_descriptor, _SIZE, access=mmap.ACCESS_READ)
        except ValueError:
            os.close(file_descriptor)
            raise SimulationError(f'shared clock file {str(path)!r} is shorter than {_SIZE} '
                                  'bytes; it is not a clock file') from None
        magic, _, _ = struct.unpack_from(_FORMAT, mapping)
        if magic != _MAGIC:
            mapping.close()
            os.close(file_descriptor)
            raise SimulationError(f'file {str(path)!r} is not a mapl shared clock '
                                  f'(magic {magic:#x})')
        return cls(path, mapping, file_descriptor, writer=False)

    def publish(self, t_s: float) -> None:
        """Store a new fleet time (writer only)."""
        if not self._writer:
            raise SimulationError(f'shared clock {str(self.path)!r} was attached read-only; '
                                  'only the simulator publishes time')
        self._sequence += 1
        struct.pack_into('<Q', self._mapping, 4, 2 * self._sequence - 1)
        struct.pack_into('<d', self._mapping, 12, float(t_s))
        struct.pack_into('<Q', self._mapping, 4, 2 * self._sequence)

    def now_s(self) -> float:
        """Return the latest published fleet time in seconds."""
        deadline = None
        while True:
            for _ in range(100):
                _, before, t_s = struct.unpack_from(_FORMAT, self._mapping)
                after = struct.unpack_from('<Q', self._mapping, 4)[0]
                if before == after and before % 2 == 0:
                    return t_s
            # The writer was preempted halfway through a write; on a busy machine that can
            # last milliseconds, so back off instead of spinning.
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + _READ_TIMEOUT_S
            if now > deadline:
                raise SimulationError(
                    f'shared clock {str(self.path)!r} stayed mid-write for '
                    f'{_READ_TIMEOUT_S} s; the simulator process may have stopped during a write')
            time.sleep(0.0005)

    __call__ = now_s

    def close(self) -> None:
        """Release the mapping and the file descriptor; safe to call twice."""
        if self._file_descriptor < 0:
            return
        self._mapping.close()
        os.close(self._file_descriptor)
        self._file_descriptor = -1

    def __enter__(self) -> 'SharedClock':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class RealTimePacer:
    """Sleeps so that simulated time never runs ahead of ``rate`` times the wall clock.

    When the simulation falls behind, the pacer does not sleep and records the lag, so a run
    that cannot keep up with real time shows it in its metrics instead of hiding it.
    """

    def __init__(self, *, rate: float = 1.0, wall_clock=time.monotonic,
                 sleep=time.sleep) -> None:
        if not (math.isfinite(rate) and rate > 0.0):
            raise SimulationError(f'real-time rate={rate} must be a positive factor, '
                                  'for example 1.0 for real time')
        self.rate = float(rate)
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._wall_start_s: float | None = None
        self._sim_start_s = 0.0
        self.max_lag_s = 0.0

    def start(self, sim_time_s: float) -> None:
        """Anchor simulated time ``sim_time_s`` to the wall clock now."""
        self._wall_start_s = self._wall_clock()
        self._sim_start_s = sim_time_s

    def wait_for(self, sim_time_s: float) -> float:
        """Sleep until the wall clock reaches ``sim_time_s``; return the lag in seconds."""
        if self._wall_start_s is None:
            self.start(sim_time_s)
            return 0.0
        target_s = self._wall_start_s + (sim_time_s - self._sim_start_s) / self.rate
        remaining_s = target_s - self._wall_clock()
        if remaining_s > 0.0:
            self._sleep(remaining_s)
            return 0.0
        lag_s = -remaining_s
        if lag_s > self.max_lag_s:
            self.max_lag_s = lag_s
        return lag_s
