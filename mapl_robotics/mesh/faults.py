"""Seeded fault layer for the transport: drop, delay, duplicate and reorder packets.

No traffic shaping is available on the test machines, so the mesh injects network faults
itself, on the sending side, packet by packet. Every decision comes from a
``numpy.random.Generator`` that the caller seeds, so a failing run can be replayed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mapl_robotics.errors import MeshConfigError

__all__ = ['FaultConfig', 'FaultInjector']


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Probabilities and delays of injected faults, applied to every outgoing packet.

    ``drop_p``: the packet is lost. ``duplicate_p``: a second copy is sent. ``delay_p``: the
    packet waits a uniform random time up to ``max_delay_s``. ``reorder_p``: the packet is
    held back by ``reorder_delay_s`` so that packets sent after it overtake it.
    """

    drop_p: float = 0.0
    duplicate_p: float = 0.0
    delay_p: float = 0.0
    max_delay_s: float = 0.0
    reorder_p: float = 0.0
    reorder_delay_s: float = 0.002

    def __post_init__(self) -> None:
        for name in ('drop_p', 'duplicate_p', 'delay_p', 'reorder_p'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise MeshConfigError(f'fault {name} must be a probability in [0, 1], '
                                      f'got {value!r}')
        for name in ('max_delay_s', 'reorder_delay_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise MeshConfigError(f'fault {name} must be a finite number >= 0 seconds, '
                                      f'got {value!r}')

    @property
    def active(self) -> bool:
        return any((self.drop_p, self.duplicate_p, self.delay_p, self.reorder_p))


class FaultInjector:
    """Decide the fate of each outgoing packet from a seeded random generator."""

    def __init__(self, config: FaultConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._rng = rng

    def release_delays_s(self) -> list[float]:
        """Return the delays after which copies of the next packet go out; empty means lost.

        One entry is the normal case; two entries mean the packet is duplicated.
        """
        config = self.config
        rng = self._rng
        if config.drop_p and rng.random() < config.drop_p:
            return []
        delay_s = 0.0
        if config.delay_p and rng.random() < config.delay_p:
            delay_s += float(rng.uniform(0.0, config.max_delay_s))
        if config.reorder_p and rng.random() < config.reorder_p:
            delay_s += config.reorder_delay_s
        delays = [delay_s]
        if config.duplicate_p and rng.random() < config.duplicate_p:
            delays.append(delay_s + float(rng.uniform(0.0, max(config.max_delay_s, 0.001))))
        return delays
