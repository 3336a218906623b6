"""Per-peer circuit breaker: stop sending to a peer that keeps failing, probe it later."""

from __future__ import annotations

import enum

from mapl_robotics.errors import MeshConfigError

__all__ = ['BreakerState', 'CircuitBreaker']


class BreakerState(enum.Enum):
    CLOSED = 'closed'
    OPEN = 'open'
    HALF_OPEN = 'half_open'


class CircuitBreaker:
    """Classic three-state breaker driven by delivery outcomes.

    ``failure_threshold`` consecutive failed deliveries open the breaker: sends to the peer
    then fail at once instead of being retried. After ``cooldown_s`` the breaker goes
    half-open and lets messages through. The first success (an acknowledgement, or any
    packet from the peer, which serves as a probe) closes it, and a failure opens it again.
    Times are monotonic seconds passed in by the caller.
    """

    def __init__(self, *, failure_threshold: int = 5, cooldown_s: float = 0.5) -> None:
        if failure_threshold < 1:
            raise MeshConfigError(
                f'breaker failure_threshold must be >= 1, got {failure_threshold}')
        if not cooldown_s > 0:
            raise MeshConfigError(f'breaker cooldown_s must be > 0, got {cooldown_s}')
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_count = 0
        self._opened_at_s = 0.0

    def allows_send(self, now_s: float) -> bool:
        """Return whether a message may be sent now, moving OPEN to HALF_OPEN after cooldown."""
        if self.state is BreakerState.OPEN and now_s - self._opened_at_s >= self.cooldown_s:
            self.state = BreakerState.HALF_OPEN
        return self.state is not BreakerState.OPEN

    def record_success(self) -> bool:
        """Record a delivery or a packet from the peer; return True if the breaker closed."""
        self.consecutive_failures = 0
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.OPEN:
            # Traffic from the peer during the cooldown proves it is back, but the breaker
            # waits for the cooldown before trusting it with messages again.
            return False
        self.state = BreakerState.CLOSED
        return True

    def record_failure(self, now_s: float) -> bool:
        """Record a failed delivery; return True if this failure opened the breaker."""
        self.consecutive_failures += 1
        should_open = (self.state is BreakerState.HALF_OPEN
                       or self.consecutive_failures >= self.failure_threshold)
        if should_open and self.state is not BreakerState.OPEN:
            self.state = BreakerState.OPEN
            self._opened_at_s = now_s
            self.opened_count += 1
            return True
        return False
