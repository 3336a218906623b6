"""Counters, latency samples and rate-limited logging for a mesh node."""

from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

__all__ = ['MeshMetrics', 'LogThrottle']


class LogThrottle:
    """Rate-limit a log line per key: at most one line per ``interval_s``, with a count.

    Lines suppressed in between are counted and the count is appended to the next line that
    gets through, so a flood of malformed packets costs one line a second, not one per packet.
    """

    def __init__(self, logger: logging.Logger, *, interval_s: float = 1.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last_s: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def log(self, level: int, key: str, message: str, *args) -> None:
        now_s = time.monotonic()
        with self._lock:
            last_s = self._last_s.get(key)
            if last_s is not None and now_s - last_s < self._interval_s:
                self._suppressed[key] += 1
                return
            self._last_s[key] = now_s
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += ' (%d similar lines suppressed)'
            args = (*args, suppressed)
        self._logger.log(level, message, *args)


class MeshMetrics:
    """Counters and a bounded window of delivery latencies for one node.

    One thread (the node's I/O thread) writes; any thread may read. Copies are taken by
    single C-level calls (``dict()``, ``list()``), which see a consistent state under the GIL.

    Counter names are stable and documented in ``docs/architecture.md`` (Mesh section).
    """

    def __init__(self, *, latency_window: int = 100_000) -> None:
        self._counters: collections.Counter[str] = collections.Counter()
        self._latencies_s: collections.deque[float] = collections.deque(maxlen=latency_window)

    def count(self, name: str, amount: int = 1) -> None:
        # No lock: only the node's I/O thread writes, once or more per packet, and a
        # Counter update from one thread is safe under the GIL. Readers copy under the GIL.
        self._counters[name] += amount

    def record_latency(self, latency_s: float) -> None:
        self._latencies_s.append(latency_s)

    def get(self, name: str) -> int:
        return self._counters.get(name, 0)

    def latencies_s(self) -> list[float]:
        return list(self._latencies_s)

    def snapshot(self) -> dict:
        """Return counters plus latency percentiles in milliseconds (None if no samples)."""
        counters = dict(self._counters)
        latencies = np.asarray(list(self._latencies_s), dtype=float)
        percentiles = {}
        for name, q in (('p50_ms', 50), ('p99_ms', 99), ('max_ms', 100)):
            percentiles[name] = (float(np.percentile(latencies, q) * 1e3)
                                 if latencies.size else None)
        return {'counters': counters, 'latency': {'samples': int(latencies.size),
                                                  **percentiles}}
