"""Growable search tree for the RRT family: node positions, parents, costs and children."""

from __future__ import annotations

import numpy as np

__all__ = ['SearchTree']


class SearchTree:
    """A rooted tree in the plane, stored in arrays for vectorized nearest-neighbour queries.

    ``cost_m[i]`` is the length of the tree path from the root to node ``i``. RRT* changes
    parents with :meth:`reparent`, which keeps every descendant's cost equal to its parent's
    cost plus the edge length.
    """

    def __init__(self, root_xy_m, *, capacity: int = 256) -> None:
        self.xy_m = np.empty((capacity, 2))
        self.parent = np.full(capacity, -1, dtype=np.int64)
        self.cost_m = np.zeros(capacity)
        self.children: list[set[int]] = []
        self.count = 0
        self.add(np.asarray(root_xy_m, dtype=float), -1)

    @property
    def nodes_xy_m(self) -> np.ndarray:
        return self.xy_m[:self.count]

    def _grow(self) -> None:
        capacity = 2 * len(self.xy_m)
        self.xy_m = np.resize(self.xy_m, (capacity, 2))
        self.parent = np.resize(self.parent, capacity)
        self.cost_m = np.resize(self.cost_m, capacity)

    def add(self, xy_m: np.ndarray, parent: int) -> int:
        """Add a node under ``parent`` (``-1`` for the root) and return its index."""
        if self.count == len(self.xy_m):
            self._grow()
        index = self.count
        self.xy_m[index] = xy_m
        self.parent[index] = parent
        if parent >= 0:
            edge_m = float(np.hypot(*(xy_m - self.xy_m[parent])))
            self.cost_m[index] = self.cost_m[parent] + edge_m
            self.children[parent].add(index)
        else:
            self.cost_m[index] = 0.0
        self.children.append(set())
        self.count += 1
        return index

    def add_many(self, xy_m: np.ndarray, parents: np.ndarray) -> np.ndarray:
        """Add nodes under existing parents and return their indices."""
        count = len(xy_m)
        while self.count + count > len(self.xy_m):
            self._grow()
        indices = np.arange(self.count, self.count + count)
        parents = np.asarray(parents, dtype=np.int64)
        self.xy_m[indices] = xy_m
        self.parent[indices] = parents
        edge_m = np.linalg.norm(xy_m - self.xy_m[parents], axis=1)
        self.cost_m[indices] = self.cost_m[parents] + edge_m
        self.children.extend(set() for _ in range(count))
        for index, parent in zip(indices.tolist(), parents.tolist()):
            self.children[parent].add(index)
        self.count += count
        return indices

    def nearest(self, xy_m: np.ndarray) -> int:
        delta = self.xy_m[:self.count] - xy_m
        return int(np.argmin(np.einsum('ij,ij->i', delta, delta)))

    def within(self, xy_m: np.ndarray, radius_m: float) -> np.ndarray:
        """Return the indices of nodes within ``radius_m`` of ``xy_m``."""
        delta = self.xy_m[:self.count] - xy_m
        return np.flatnonzero(np.einsum('ij,ij->i', delta, delta) <= radius_m * radius_m)

    def reparent(self, node: int, new_parent: int) -> None:
        """Attach ``node`` to ``new_parent`` and update the cost of its whole subtree."""
        old_parent = int(self.parent[node])
        if old_parent >= 0:
            self.children[old_parent].discard(node)
        self.parent[node] = new_parent
        self.children[new_parent].add(node)
        edge_m = float(np.hypot(*(self.xy_m[node] - self.xy_m[new_parent])))
        delta_m = self.cost_m[new_parent] + edge_m - self.cost_m[node]
        # Walk the subtree explicitly (no recursion, so deep trees cannot hit the stack limit).
        stack = [node]
        while stack:
            current = stack.pop()
            self.cost_m[current] += delta_m
            stack.extend(self.children[current])

    def path_to_root(self, node: int) -> np.ndarray:
        """Return the positions from ``node`` up to the root, in that order."""
        indices = []
        current = node
        # A tree has at most count ancestors, which bounds the walk even if parents were
        # corrupted.
        for _ in range(self.count):
            indices.append(current)
            current = int(self.parent[current])
            if current < 0:
                break
        return self.xy_m[indices].copy()

    def max_cost_error_m(self) -> float:
        """Return the largest gap between a node's cost and its parent's cost plus the edge.

        Zero (up to rounding) for a consistent tree; used by tests and debug checks.
        """
        if self.count < 2:
            return 0.0
        nodes = np.arange(1, self.count)
        parents = self.parent[1:self.count]
        edges = np.linalg.norm(self.xy_m[nodes] - self.xy_m[parents], axis=1)
        return float(np.max(np.abs(self.cost_m[nodes] - self.cost_m[parents] - edges)))
