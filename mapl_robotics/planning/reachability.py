"""Sound test for "the goal cannot be reached", used to tell an unreachable goal from a spent
time budget.

Sampling planners cannot prove that no path exists, so this module builds a coarse grid that
over-approximates the free space of a disc robot and checks grid connectivity. A cell counts
as possibly free unless a disc of radius ``radius_m - half_diagonal`` at its centre already
hits an obstacle or the bounds: then every disc of ``radius_m`` centred anywhere in the cell
contains that smaller disc and collides too. A continuous free path passes through possibly
free cells that are 8-connected, so when start and goal lie in different 8-connected
components no free path exists. The converse does not hold: the same component does not
prove a path exists.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np
import shapely
from scipy import ndimage

from mapl_robotics.geometry.world import CollisionChecker

__all__ = ['ReachabilityGrid', 'reachability_grid']

_MAX_CELLS = 120_000
_CACHE: 'weakref.WeakKeyDictionary[CollisionChecker, ReachabilityGrid]' = (
    weakref.WeakKeyDictionary())
_CACHE_LOCK = threading.Lock()


class ReachabilityGrid:
    """Connected components of an over-approximation of a checker's free space."""

    def __init__(self, checker: CollisionChecker, *, max_cells: int = _MAX_CELLS) -> None:
        x_min, y_min, x_max, y_max = checker.world.bounds_m
        width_m = x_max - x_min
        height_m = y_max - y_min
        cell_m = max(math.sqrt(width_m * height_m / max_cells), 1e-3)
        self.cell_m = cell_m
        self.origin_m = (x_min, y_min)
        self.shape = (max(int(math.ceil(height_m / cell_m)), 1),
                      max(int(math.ceil(width_m / cell_m)), 1))
        rows, cols = np.indices(self.shape)
        centre_x = x_min + (cols + 0.5) * cell_m
        centre_y = y_min + (rows + 0.5) * cell_m
        # Cells that overlap the region where the disc centre stays inside the bounds.
        half = cell_m / 2.0
        radius_m = checker.radius_m
        possibly_free = ((centre_x + half >= x_min + radius_m)
                         & (centre_x - half <= x_max - radius_m)
                         & (centre_y + half >= y_min + radius_m)
                         & (centre_y - half <= y_max - radius_m))
        obstacles = checker.world.obstacles
        shrunk_radius_m = radius_m - cell_m * math.sqrt(2.0) / 2.0
        if obstacles:
            centres = shapely.points(np.column_stack([centre_x.ravel(), centre_y.ravel()]))
            tree = shapely.STRtree(list(obstacles))
            if shrunk_radius_m > 1e-9:
                # dwithin is "distance <= d"; shrinking d by 1e-9 keeps the test strict.
                hits = tree.query(centres, predicate='dwithin', distance=shrunk_radius_m - 1e-9)
            else:
                # The robot is smaller than the cell, so a cell is blocked only when an
                # obstacle covers all of it.
                cells = shapely.box(centre_x.ravel() - half, centre_y.ravel() - half,
                                    centre_x.ravel() + half, centre_y.ravel() + half)
                hits = tree.query(cells, predicate='within')
            blocked = np.zeros(centres.size, dtype=bool)
            blocked[hits[0]] = True
            possibly_free &= ~blocked.reshape(self.shape)
        structure = np.ones((3, 3), dtype=bool)
        self.labels, self.component_count = ndimage.label(possibly_free, structure=structure)

    def cell_of(self, xy_m) -> tuple[int, int]:
        x, y = float(xy_m[0]), float(xy_m[1])
        col = int((x - self.origin_m[0]) // self.cell_m)
        row = int((y - self.origin_m[1]) // self.cell_m)
        return (min(max(row, 0), self.shape[0] - 1), min(max(col, 0), self.shape[1] - 1))

    def label_of(self, xy_m) -> int:
        return int(self.labels[self.cell_of(xy_m)])

    def provably_disconnected(self, start_xy_m, goal_xy_m) -> bool:
        """Return True only when no collision-free path can join the two positions."""
        start_label = self.label_of(start_xy_m)
        goal_label = self.label_of(goal_xy_m)
        if start_label == 0 or goal_label == 0:
            # A free position always lies in a possibly free cell. A zero label here means the
            # position itself is not free, which the caller reports separately.
            return False
        return start_label != goal_label


def reachability_grid(checker: CollisionChecker) -> ReachabilityGrid:
    """Return the cached reachability grid of ``checker``, building it on first use."""
    with _CACHE_LOCK:
        grid = _CACHE.get(checker)
    if grid is None:
        grid = ReachabilityGrid(checker)
        with _CACHE_LOCK:
            _CACHE[checker] = grid
    return grid
