"""Process-level tuning for the long-running processes (mesh, ledger and agent nodes)."""

from __future__ import annotations

import gc
import logging

__all__ = ['freeze_startup_heap']

_log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Move every object alive now out of reach of the cyclic garbage collector.

    Call once, after imports and set-up, before the process starts its real-time work. The
    collector tracks about 90,000 objects in a mesh or agent process, and each full
    collection walks all of them: 23 ms of CPU time on an idle machine, 40 to 50 ms in a
    16-node mesh on two cores. The nodes allocate alike, so they collected at nearly the same
    moment and delivery stalled for up to half a second. Frozen objects are still freed by
    reference counting. Only garbage cycles among them would stay. Returns the number of
    objects frozen.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    _log.debug('froze %d start-up objects out of the garbage collector', frozen)
    return frozen
