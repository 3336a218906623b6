"""Peer liveness from heartbeats: a peer is dead after a number of missed intervals."""

from __future__ import annotations

from mapl_robotics.errors import MeshConfigError

__all__ = ['PeerLiveness']


class PeerLiveness:
    """Track when each peer was last heard from and report alive/dead transitions.

    Any packet from a peer counts as a heartbeat. A peer is declared dead when nothing
    arrived for ``interval_s * misses`` seconds, so with the defaults (25 ms x 3) a crashed
    peer is detected within 75 ms plus one polling interval. Peers start as not alive until
    their first packet. Times are monotonic seconds passed in by the caller.
    """

    def __init__(self, peers, *, interval_s: float = 0.025, misses: int = 3) -> None:
        if not interval_s > 0:
            raise MeshConfigError(f'heartbeat interval_s must be > 0, got {interval_s}')
        if misses < 1:
            raise MeshConfigError(f'heartbeat misses must be >= 1, got {misses}')
        self.interval_s = interval_s
        self.misses = misses
        self._last_heard_s: dict[str, float | None] = {peer: None for peer in peers}
        self._alive: dict[str, bool] = {peer: False for peer in peers}

    @property
    def timeout_s(self) -> float:
        return self.interval_s * self.misses

    def add_peer(self, peer: str) -> None:
        self._last_heard_s.setdefault(peer, None)
        self._alive.setdefault(peer, False)

    def remove_peer(self, peer: str) -> None:
        self._last_heard_s.pop(peer, None)
        self._alive.pop(peer, None)

    def heard(self, peer: str, now_s: float) -> bool:
        """Record a packet from ``peer``; return True if it just came (back) alive."""
        if peer not in self._last_heard_s:
            return False
        self._last_heard_s[peer] = now_s
        if not self._alive[peer]:
            self._alive[peer] = True
            return True
        return False

    def expire(self, now_s: float) -> list[str]:
        """Mark peers silent for longer than the timeout as dead; return the newly dead."""
        newly_dead = []
        for peer, last_s in self._last_heard_s.items():
            if self._alive[peer] and last_s is not None and now_s - last_s > self.timeout_s:
                self._alive[peer] = False
                newly_dead.append(peer)
        return newly_dead

    def is_alive(self, peer: str) -> bool:
        return self._alive.get(peer, False)

    def ever_heard(self, peer: str) -> bool:
        """Return whether any packet from ``peer`` arrived since this node started."""
        return self._last_heard_s.get(peer) is not None

    def alive_peers(self) -> list[str]:
        return [peer for peer, alive in self._alive.items() if alive]
