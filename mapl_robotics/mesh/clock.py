"""Clock offset to the fleet reference, estimated from timestamped heartbeats (NTP style).

Each heartbeat exchange with the reference node gives four wall-clock readings: ``t1`` when
this node sent, ``t2`` when the reference received, ``t3`` when the reference replied and
``t4`` when this node received the reply. As in NTP (RFC 5905, section 8) the offset is
``((t2 - t1) + (t3 - t4)) / 2`` and the round-trip delay ``(t4 - t1) - (t3 - t2)``. Whatever
the split of the delay between the two directions, the true offset lies within half the
delay of that estimate, so half the delay is a hard error bound for a sample. The estimate
keeps the sample with the smallest bound among recent ones and grows the bound by the
allowed clock drift since that sample was taken.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from mapl_robotics.errors import MeshConfigError

__all__ = ['ClockSync', 'ClockSample']

ClockSample = collections.namedtuple('ClockSample', 'offset_s bound_s taken_s')


class ClockSync:
    """Offset of this node's clock to the fleet reference, with an error bound.

    ``clock`` is the node's wall clock (``time.time`` unless a test injects a skewed one).
    Fleet time is ``clock() + offset_s``. Until a first sample arrives the offset is 0 and
    :attr:`error_bound_s` is ``None`` (unknown); on the reference node itself the bound is 0.
    Thread-safe: the mesh I/O thread adds samples while agents read.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, window: int = 16,
                 max_drift_ppm: float = 200.0, max_sample_age_s: float = 5.0) -> None:
        if window < 1:
            raise MeshConfigError(f'clock sync window must be >= 1 sample, got {window}')
        if max_drift_ppm < 0:
            raise MeshConfigError(f'max_drift_ppm must be >= 0, got {max_drift_ppm}')
        self.clock = clock
        self.max_drift_ppm = max_drift_ppm
        self.max_sample_age_s = max_sample_age_s
        self._samples: collections.deque[ClockSample] = collections.deque(maxlen=window)
        self._is_reference = False
        self._lock = threading.Lock()

    def set_reference(self, is_reference: bool) -> None:
        """Mark this node as the fleet reference: offset 0 with a zero error bound."""
        with self._lock:
            self._is_reference = is_reference

    @property
    def is_reference(self) -> bool:
        return self._is_reference

    def add_exchange(self, *, t1_s: float, t2_s: float, t3_s: float, t4_s: float) -> None:
        """Add one timestamp exchange with the reference (see the module docstring)."""
        delay_s = (t4_s - t1_s) - (t3_s - t2_s)
        if delay_s < 0:
            # Only possible when a clock stepped during the exchange; the sample is useless.
            return
        offset_s = ((t2_s - t1_s) + (t3_s - t4_s)) / 2.0
        with self._lock:
            self._samples.append(ClockSample(offset_s, delay_s / 2.0, t4_s))

    def _best(self, now_s: float) -> tuple[float, float] | None:
        drift = self.max_drift_ppm * 1e-6
        best = None
        for sample in self._samples:
            age_s = abs(now_s - sample.taken_s)
            if age_s > self.max_sample_age_s:
                continue
            bound_s = sample.bound_s + drift * age_s
            if best is None or bound_s < best[1]:
                best = (sample.offset_s, bound_s)
        return best

    @property
    def offset_s(self) -> float:
        """Estimated fleet time minus local clock, in seconds (0 when unknown)."""
        with self._lock:
            if self._is_reference:
                return 0.0
            best = self._best(self.clock())
        return 0.0 if best is None else best[0]

    @property
    def error_bound_s(self) -> float | None:
        """Bound on the error of :attr:`offset_s` in seconds, or None if unknown."""
        with self._lock:
            if self._is_reference:
                return 0.0
            best = self._best(self.clock())
        return None if best is None else best[1]

    def fleet_time(self) -> float:
        """Return the current fleet time in seconds (the reference node's wall clock)."""
        return self.clock() + self.offset_s

    def is_synchronized(self, *, max_error_s: float) -> bool:
        """Return whether the error bound is known and at most ``max_error_s``."""
        bound_s = self.error_bound_s
        return bound_s is not None and bound_s <= max_error_s
