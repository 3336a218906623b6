"""RRT, RRT-Connect and RRT* for a disc robot in continuous 2D.

Every tree edge is checked whole with
:meth:`~mapl_robotics.geometry.world.CollisionChecker.segments_free`, which is exact for the
swept disc, so no step size can let an edge jump over a thin obstacle. Checks are batched
where the algorithm allows, because every checker call has a fixed cost. RRT-Connect checks
all edges of a round of samples in one call. RRT* checks all candidate parents of a new node,
and its edge to the goal, in one call. RRT checks its pending goal connections together.

All randomness comes from the ``numpy.random.Generator`` passed in, so a seeded generator
gives the same path whenever the search finishes within its time budget.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np

from mapl_robotics.errors import (GoalInCollisionError, GoalUnreachableError,
                                  PlanningTimeoutError, StartInCollisionError)
from mapl_robotics.geometry.world import CollisionChecker
from mapl_robotics.planning import connect_kernel, smoothing_kernel
from mapl_robotics.planning.edges import PROBE_FRACTIONS, edges_free, probe_segments
from mapl_robotics.planning.models import PlannerSettings, require_generator
from mapl_robotics.planning.reachability import reachability_grid
from mapl_robotics.planning.smoothing import path_length_m, shortcut_smooth
from mapl_robotics.planning.tree import SearchTree

__all__ = ['PathResult', 'plan_path', 'prepare_checker', 'search_path', 'validate_endpoints',
           'warm_up_compiled']

_LOG = logging.getLogger(__name__)

# Random points are drawn in blocks to keep the per-iteration Python overhead low.
_SAMPLE_BLOCK = 256
# The compiled RRT-Connect keeps searching after its first join, for this many times the
# samples used so far (at least _MIN_EXTRA_SAMPLES), and returns the shortest joined path.
_EXTRA_SAMPLES_FACTOR = 1.0
_MIN_EXTRA_SAMPLES = 32
# Longest the compiled RRT-Connect runs between two looks at the clock, as an estimate from the
# time per sample of its previous call.
_CHUNK_S = 0.005
# RRT collects goal-connection attempts and checks them together after this many.
_GOAL_BATCH = 8


@dataclasses.dataclass(frozen=True, eq=False)
class PathResult:
    """A collision-free polyline from start to goal and how the search went.

    ``xy_m`` is the final (smoothed) path and ``raw_xy_m`` the path as the tree found it.
    """

    xy_m: np.ndarray
    raw_xy_m: np.ndarray
    algorithm: str
    iterations: int
    tree_nodes: int
    search_s: float
    smoothing_s: float

    @property
    def length_m(self) -> float:
        return path_length_m(self.xy_m)

    @property
    def raw_length_m(self) -> float:
        return path_length_m(self.raw_xy_m)


class _Sampler:
    """Uniform samples over the region where the disc centre stays inside the bounds."""

    def __init__(self, checker: CollisionChecker, rng: np.random.Generator) -> None:
        x_min, y_min, x_max, y_max = checker.world.bounds_m
        radius_m = checker.radius_m
        self._low = np.array([x_min + radius_m, y_min + radius_m])
        self._span = np.maximum(np.array([x_max - x_min, y_max - y_min]) - 2 * radius_m, 0.0)
        self._rng = rng
        self._block = np.empty((0, 2))
        self._coins = np.empty(0)
        self._next = 0

    def draw(self) -> tuple[np.ndarray, float]:
        """Return a random point and a uniform number in [0, 1) for the goal-bias coin."""
        if self._next >= len(self._block):
            self._block = self._low + self._rng.random((_SAMPLE_BLOCK, 2)) * self._span
            self._coins = self._rng.random(_SAMPLE_BLOCK)
            self._next = 0
        point = self._block[self._next]
        coin = float(self._coins[self._next])
        self._next += 1
        return point, coin

    def draw_many(self, count: int) -> np.ndarray:
        """Return ``count`` random points."""
        return self._low + self._rng.random((count, 2)) * self._span

    def coins(self, count: int) -> np.ndarray:
        """Return ``count`` uniform numbers in [0, 1)."""
        return self._rng.random(count)


class _FreeSampler:
    """Uniform samples over the free space, drawn in blocks that one call filters."""

    def __init__(self, checker, rng: np.random.Generator, *, block: int = _SAMPLE_BLOCK,
                 max_refills: int = 64) -> None:
        self._uniform = _Sampler(checker, rng)
        self._checker = checker
        self._block = block
        self._pool = np.empty((0, 2))
        self._next = 0
        self._refills_left = max_refills
        # Points and goal-bias coins handed out one at a time by draw().
        self._drawn = np.empty((0, 2))
        self._coins = np.empty(0)
        self._drawn_next = 0

    def draw_many(self, count: int) -> np.ndarray:
        """Return ``count`` free points, or uniform ones once ``max_refills`` blocks came back
        with less than 1/16 of their points free (a map with almost no free space must not
        stall the search)."""
        chunks = []
        needed = count
        while needed > 0:
            if self._next >= len(self._pool):
                if self._refills_left == 0:
                    chunks.append(self._uniform.draw_many(needed))
                    break
                block = self._uniform.draw_many(self._block)
                self._pool = block[self._checker.points_free(block)]
                if 16 * len(self._pool) < len(block):
                    self._refills_left -= 1
                self._next = 0
                continue
            chunk = self._pool[self._next:self._next + needed]
            self._next += len(chunk)
            needed -= len(chunk)
            chunks.append(chunk)
        return np.concatenate(chunks) if chunks else np.empty((0, 2))

    def draw(self) -> tuple[np.ndarray, float]:
        """Return one free point and a uniform number in [0, 1) for the goal-bias coin."""
        if self._drawn_next >= len(self._drawn):
            self._drawn = self.draw_many(self._block)
            self._coins = self._uniform.coins(self._block)
            self._drawn_next = 0
        point = self._drawn[self._drawn_next]
        coin = float(self._coins[self._drawn_next])
        self._drawn_next += 1
        return point, coin


def _steer(from_xy: np.ndarray, to_xy: np.ndarray, step_m: float) -> np.ndarray:
    delta = to_xy - from_xy
    distance = math.hypot(delta[0], delta[1])
    if distance <= step_m:
        return to_xy.copy()
    return from_xy + delta * (step_m / distance)


def validate_endpoints(checker: CollisionChecker, start_xy_m, goal_xy_m
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Return start and goal as arrays, raising a typed error for bad or colliding ones."""
    world = checker.world
    start = world.require_inside(start_xy_m, what='start')
    goal = world.require_inside(goal_xy_m, what='goal')
    if not checker.point_free(start):
        raise StartInCollisionError(
            f'start ({start[0]:.3f}, {start[1]:.3f}) m collides with an obstacle or the map '
            f'border of {world.name!r} for a robot of radius {checker.radius_m:.3f} m; move '
            'the start into free space')
    if not checker.point_free(goal):
        raise GoalInCollisionError(
            f'goal ({goal[0]:.3f}, {goal[1]:.3f}) m collides with an obstacle or the map '
            f'border of {world.name!r} for a robot of radius {checker.radius_m:.3f} m; move '
            'the goal into free space')
    return start, goal


def _join(start_tree: SearchTree, start_node: int, goal_tree: SearchTree,
          goal_node: int) -> np.ndarray:
    start_half = start_tree.path_to_root(start_node)[::-1]
    goal_half = goal_tree.path_to_root(goal_node)
    path = np.vstack([start_half, goal_half])
    keep = np.ones(len(path), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(path, axis=0)) > 0.0, axis=1)
    return path[keep]


class _Budget:
    def __init__(self, settings: PlannerSettings, deadline_s: float | None) -> None:
        self.started_s = time.perf_counter()
        own_deadline_s = self.started_s + settings.time_budget_s
        self.deadline_s = own_deadline_s if deadline_s is None else min(deadline_s,
                                                                         own_deadline_s)
        self.max_iterations = settings.max_iterations

    def expired(self) -> bool:
        return time.perf_counter() >= self.deadline_s

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started_s


def _nearest_many(tree: SearchTree, points: np.ndarray) -> np.ndarray:
    nodes = tree.nodes_xy_m
    delta = points[:, None, :] - nodes[None, :, :]
    return np.argmin(np.einsum('kni,kni->kn', delta, delta), axis=1)


def _steer_many(from_xy: np.ndarray, to_xy: np.ndarray, step_m: float) -> np.ndarray:
    delta = to_xy - from_xy
    distance = np.hypot(delta[:, 0], delta[:, 1])
    with np.errstate(invalid='ignore', divide='ignore'):
        scale = np.where(distance > step_m, step_m / distance, 1.0)
    return from_xy + delta * scale[:, None]


# Fractions of an extension edge checked together, so a blocked extension still grows the
# tree as far as the longest free prefix.
_EXTEND_FRACTIONS = (1.0, 0.5, 0.25)


def _longest_free(free: np.ndarray, count: int) -> np.ndarray:
    """Return, per edge, the index of the longest free prefix in ``_EXTEND_FRACTIONS`` order,
    or -1. ``free`` contains ``count`` results per fraction, fraction-major."""
    per_fraction = free.reshape(len(_EXTEND_FRACTIONS), count)
    choice = np.full(count, -1)
    for index in range(len(_EXTEND_FRACTIONS) - 1, -1, -1):
        choice[per_fraction[index]] = index
    return choice


def _path_to_root(xy: np.ndarray, parent: np.ndarray, node: int) -> np.ndarray:
    indices = []
    # A tree of n nodes has at most n ancestors, which bounds the walk.
    for _ in range(len(parent)):
        indices.append(node)
        node = int(parent[node])
        if node < 0:
            break
    return xy[indices]


def _compiled_rrt_connect(checker, start, goal, settings, rng, budget, check, discs):
    """Classic RRT-Connect in compiled code (:mod:`~mapl_robotics.planning.connect_kernel`).

    Returns ``(path or None, iterations, tree nodes, undecided edges)``. Samples come in
    blocks of ``_SAMPLE_BLOCK`` from ``rng``, uniform over the region where the disc stays
    inside the map. The kernel runs on chunks of them sized to take about ``_CHUNK_S`` each,
    and the time budget is checked between chunks. The search gives up early, so
    that the batched search can ask GEOS about them, once it has seen undecided edges and
    spent half of the iterations or time.
    """
    sampler = _Sampler(checker, rng)
    step_m = settings.step_size_m
    world = checker.world
    margin = 2 + int(math.hypot(world.width_m, world.height_m) / step_m)
    capacity = 4 * _SAMPLE_BLOCK + margin
    trees = [[np.empty((capacity, 2)), np.full(capacity, -1, dtype=np.int64),
              np.zeros(capacity)] for _ in range(2)]
    trees[0][0][0] = start
    trees[1][0][0] = goal
    # After the first join the search goes on for _EXTRA_SAMPLES_FACTOR times the samples it
    # has used (at least _MIN_EXTRA_SAMPLES) and keeps the shortest joined path.
    best_cost_m = np.full(1, math.inf)
    stop_at = budget.max_iterations
    counts = np.array([1, 1], dtype=np.int64)
    result = np.zeros(7, dtype=np.int64)
    active = 0
    iterations = 0
    undecided = 0
    samples = np.empty((0, 2))
    # The first call gets one sample, which measures how long a sample takes on this map.
    seconds_per_sample = math.inf
    while iterations < stop_at and not budget.expired():
        if undecided and (2 * iterations >= budget.max_iterations
                          or 2 * budget.elapsed_s >= settings.time_budget_s):
            break
        if len(samples) == 0:
            samples = sampler.draw_many(min(_SAMPLE_BLOCK, stop_at - iterations))
        for tree in range(2):
            if counts[tree] + margin > len(trees[tree][1]):
                size = 2 * len(trees[tree][1]) + margin
                trees[tree] = [np.resize(trees[tree][0], (size, 2)),
                               np.resize(trees[tree][1], size), np.resize(trees[tree][2], size)]
        first_join = best_cost_m[0] == math.inf
        # One kernel call cannot look at the clock, so each gets as many samples as fit in
        # _CHUNK_S at the rate the previous calls ran, and at least one. No call runs past
        # stop_at, even one that makes the first join and so sets stop_at (a join at this
        # call's first sample gives the earliest one), so the result does not depend on where
        # the chunks end.
        chunk = min(len(samples), stop_at - iterations,
                    int(_CHUNK_S / max(seconds_per_sample, 1e-9)))
        if first_join:
            chunk = min(chunk, 1 + max(_MIN_EXTRA_SAMPLES,
                                       int(_EXTRA_SAMPLES_FACTOR * (iterations + 1))))
        chunk = max(chunk, 1)
        called_s = time.perf_counter()
        connect_kernel.connect_search(check, discs, *trees[0], *trees[1], counts, active,
                                      samples[:chunk], step_m, margin, result, best_cost_m)
        used = int(result[1])
        seconds_per_sample = (time.perf_counter() - called_s) / max(used, 1)
        iterations += used
        undecided += int(result[5])
        active = int(result[2])
        samples = samples[used:]
        if result[0] == connect_kernel.JOINED and first_join:
            # Samples of this block after the first join count towards the extra ones.
            joined_at = iterations - used + int(result[6])
            stop_at = min(budget.max_iterations,
                          joined_at + max(_MIN_EXTRA_SAMPLES,
                                          int(_EXTRA_SAMPLES_FACTOR * joined_at)))
    if best_cost_m[0] == math.inf:
        return None, iterations, int(counts.sum()), undecided
    start_half = _path_to_root(trees[0][0], trees[0][1], int(result[3]))[::-1]
    goal_half = _path_to_root(trees[1][0], trees[1][1], int(result[4]))
    path = np.vstack([start_half, goal_half[1:]])
    return path, iterations, int(counts.sum()), undecided


def warm_up_compiled(checker) -> None:
    """Compile (or load from numba's cache) the compiled search and smoothing for a checker.

    Runs once per process and takes well under a second with a filled cache, but several
    seconds on the first run after an install. Call it before timing-critical planning.
    """
    check = checker.compiled_check() if type(checker) is CollisionChecker else None
    if check is not None:
        connect_kernel.warm_up(check)
        smoothing_kernel.warm_up(check)


def _compiled_parts(checker) -> tuple[tuple, np.ndarray] | None:
    """Return ``(check, discs)`` for the compiled search, or None when it cannot run.

    A plain :class:`CollisionChecker` has no discs. A checker that wraps one and adds
    circular keep-out regions (``base`` and ``keep_out_discs()``, as
    :class:`~mapl_robotics.planning.DiscAvoidingChecker` has) passes them as discs.
    """
    if type(checker) is CollisionChecker:
        check = checker.compiled_check()
        return None if check is None else (check, connect_kernel.NO_DISCS)
    base = getattr(checker, 'base', None)
    keep_out_discs = getattr(checker, 'keep_out_discs', None)
    if type(base) is not CollisionChecker or keep_out_discs is None:
        return None
    check = base.compiled_check()
    return None if check is None else (check, keep_out_discs())


def _rrt_connect(checker, start, goal, settings, rng, budget):
    """RRT-Connect: compiled when the checker's edge checks can run in compiled code, else
    in batched rounds. The compiled search hands over to the batched one when it gives up
    (see :func:`_compiled_rrt_connect`), with the rest of the budget."""
    parts = _compiled_parts(checker)
    if parts is None:
        return _batched_rrt_connect(checker, start, goal, settings, rng, budget)
    check, discs = parts
    connect_kernel.warm_up(check)
    if edges_free(checker, start[None, :], goal[None, :])[0]:
        return np.vstack([start, goal]), 0, 2
    path, iterations, nodes, undecided = _compiled_rrt_connect(checker, start, goal, settings,
                                                               rng, budget, check, discs)
    if path is not None or not undecided:
        return path, iterations, nodes
    _LOG.debug('compiled RRT-Connect left %d edges undecided; continuing batched', undecided)
    path, more_iterations, more_nodes = _batched_rrt_connect(checker, start, goal, settings,
                                                             rng, budget)
    return path, iterations + more_iterations, nodes + more_nodes


def _batched_rrt_connect(checker, start, goal, settings, rng, budget):
    """Bidirectional RRT with greedy connection, in batched rounds.

    Each round draws ``settings.connect_batch`` free samples. For every sample the active
    tree extends towards it by at most ``step_size_m`` (or by the longest free prefix of
    half or a quarter of that edge). The other tree then grows towards the new node by whole
    edges, like RRT-Connect's connect step. One step of ``step_size_m`` is checked in the same
    call, and the straight edge to the new node is probed there too. The longest stretch
    whose probes all pass is checked in the next round's call; when every probe passes, that
    stretch is the whole edge, and a free one joins the trees. So every round is one checker
    call, and the trees swap roles after each round. The first round also checks the straight
    edge from start to goal.
    """
    sampler = _FreeSampler(checker, rng)
    trees = (SearchTree(start), SearchTree(goal))
    active = 0
    step_m = settings.step_size_m
    batch = settings.connect_batch
    fractions = np.asarray(_EXTEND_FRACTIONS)
    probe_fractions = np.asarray(PROBE_FRACTIONS)
    probe_count = len(probe_fractions)
    # Deferred growth of tree ``pending_owner``: parent nodes and target points of edges to
    # check next round. A target that is a node of the other tree (``pending_join``) joins the
    # trees when its edge is free; -1 marks plain growth.
    pending_owner = 0
    pending_parent = np.array([0])
    pending_target = goal[None, :].copy()
    pending_join = np.array([0])
    iterations = 0
    while True:
        out_of_budget = iterations >= budget.max_iterations or budget.expired()
        count = 0 if out_of_budget else min(batch, budget.max_iterations - iterations)
        iterations += count
        starts = [trees[pending_owner].xy_m[pending_parent]]
        ends = [pending_target]
        if count:
            tree_a, tree_b = trees[active], trees[1 - active]
            samples = sampler.draw_many(count)
            near_a = _nearest_many(tree_a, samples)
            from_a = tree_a.xy_m[near_a]
            full_a = _steer_many(from_a, samples, step_m)
            # new[f * count + k] is sample k's extension shortened to fraction f.
            new = (from_a[None, :, :]
                   + fractions[:, None, None] * (full_a - from_a)[None, :, :]).reshape(-1, 2)
            near_b = _nearest_many(tree_b, full_a)
            from_b = tree_b.xy_m[near_b]
            step_b = _steer_many(from_b, full_a, step_m)
            probe_low, probe_high = probe_segments(from_b, full_a)
            starts += [np.tile(from_a, (len(fractions), 1)), from_b, probe_low]
            ends += [new, step_b, probe_high]
        all_starts = np.concatenate(starts)
        if len(all_starts) == 0:
            break
        free = edges_free(checker, all_starts, np.concatenate(ends))
        pending_count = len(pending_parent)
        pending_free = free[:pending_count]
        joined = pending_free & (pending_join >= 0)
        if np.any(joined):
            owner_nodes = pending_parent[joined]
            other_nodes = pending_join[joined]
            start_nodes, goal_nodes = ((owner_nodes, other_nodes) if pending_owner == 0
                                       else (other_nodes, owner_nodes))
            total = (trees[0].cost_m[start_nodes] + trees[1].cost_m[goal_nodes]
                     + np.linalg.norm(trees[0].xy_m[start_nodes] - trees[1].xy_m[goal_nodes],
                                      axis=1))
            best = int(np.argmin(total))
            path = _join(trees[0], int(start_nodes[best]), trees[1], int(goal_nodes[best]))
            return path, iterations, trees[0].count + trees[1].count
        trees[pending_owner].add_many(pending_target[pending_free],
                                      pending_parent[pending_free])
        if not count:
            break
        free = free[pending_count:]
        extend_count = len(fractions) * count
        choice = _longest_free(free[:extend_count], count)
        step_free = free[extend_count:extend_count + count]
        step_joins = np.all(step_b == full_a, axis=1)
        probes_free = free[extend_count + count:].reshape(count, probe_count)
        extended = np.flatnonzero(choice >= 0)
        node_of = np.full(count, -1)
        node_of[extended] = tree_a.add_many(new[choice[extended] * count + extended],
                                            near_a[extended])
        whole = extended[choice[extended] == 0]
        immediate = whole[step_joins[whole] & step_free[whole]]
        if immediate.size:
            # A new node was within one step of the other tree, and that step is free.
            index = int(immediate[0])
            pair = (int(node_of[index]), int(near_b[index]))
            start_node, goal_node = pair if active == 0 else pair[::-1]
            path = _join(trees[0], start_node, trees[1], goal_node)
            return path, iterations, trees[0].count + trees[1].count
        # The other tree grows along the straight edge to each new node up to the first
        # blocked probe. With no blocked probe, that edge would join the trees.
        blocked = ~probes_free[whole]
        first_blocked = np.where(blocked.any(axis=1), blocked.argmax(axis=1), probe_count)
        reach = np.where(first_blocked == probe_count, 1.0,
                         probe_fractions[np.maximum(first_blocked - 1, 0)]
                         * (first_blocked > 0))
        distance_m = np.linalg.norm(full_a[whole] - from_b[whole], axis=1)
        # Growth no further than the step already checked in this call is left out.
        onward = reach * distance_m > step_m
        chosen = whole[onward]
        pending_owner = 1 - active
        pending_parent = near_b[chosen]
        pending_target = from_b[chosen] + reach[onward, None] * (full_a[chosen] - from_b[chosen])
        pending_join = np.where(reach[onward] == 1.0, node_of[chosen], -1)
        grown = np.flatnonzero(step_free & ~step_joins)
        tree_b.add_many(step_b[grown], near_b[grown])
        active = 1 - active
    return None, iterations, trees[0].count + trees[1].count


# RRT and RRT* extend by the longest free prefix of the steered edge among these fractions,
# all checked in one call. Rejecting a blocked step outright stalls the tree on maps with long
# walls, where most steps of step_size_m cross a wall.
_TREE_EXTEND_FRACTIONS = np.array([1.0, 0.5, 0.25, 0.125])


def _extend(checker, from_xy: np.ndarray, to_xy: np.ndarray) -> np.ndarray | None:
    """Return the end of the longest free prefix of the edge, or None if every one collides."""
    ends = from_xy + _TREE_EXTEND_FRACTIONS[:, None] * (to_xy - from_xy)
    free = checker.segments_free(np.broadcast_to(from_xy, ends.shape), ends)
    longest = np.flatnonzero(free)
    return ends[longest[0]] if longest.size else None


def _rrt(checker, start, goal, settings, rng, budget):
    sampler = _FreeSampler(checker, rng)
    tree = SearchTree(start)
    step_m = settings.step_size_m
    pending: list[int] = []
    for iteration in range(1, budget.max_iterations + 1):
        if budget.expired():
            return None, iteration, tree.count
        sample, coin = sampler.draw()
        if coin < settings.goal_bias:
            sample = goal
        nearest = tree.nearest(sample)
        new_xy = _extend(checker, tree.xy_m[nearest], _steer(tree.xy_m[nearest], sample, step_m))
        if new_xy is None:
            continue
        new_node = tree.add(new_xy, nearest)
        if np.hypot(*(new_xy - goal)) <= step_m:
            pending.append(new_node)
        if pending and (len(pending) >= _GOAL_BATCH or iteration % _GOAL_BATCH == 0):
            nodes = np.asarray(pending)
            pending.clear()
            free = checker.segments_free(tree.xy_m[nodes], np.broadcast_to(goal, (len(nodes), 2)))
            if np.any(free):
                candidates = nodes[free]
                total = tree.cost_m[candidates] + np.linalg.norm(tree.xy_m[candidates] - goal,
                                                                 axis=1)
                best = int(candidates[int(np.argmin(total))])
                path = np.vstack([tree.path_to_root(best)[::-1], goal[None, :]])
                return path, iteration, tree.count
    return None, budget.max_iterations, tree.count


def _rewire_radius_m(settings: PlannerSettings, count: int, gamma_m: float) -> float:
    shrinking = gamma_m * math.sqrt(math.log(count + 1) / (count + 1))
    return min(settings.rewire_radius_m, max(shrinking, settings.step_size_m))


def _rrt_star(checker, start, goal, settings, rng, budget, tree_out=None):
    sampler = _FreeSampler(checker, rng)
    tree = SearchTree(start)
    if tree_out is not None:
        tree_out.append(tree)
    step_m = settings.step_size_m
    world = checker.world
    # gamma from the RRT* paper's bound for 2D: gamma > sqrt(2 * (1 + 1/2) * area / pi).
    gamma_m = 2.0 * math.sqrt(1.5 * world.width_m * world.height_m / math.pi)
    goal_parents: list[int] = []
    first_solution_iteration = None
    iteration = 0
    for iteration in range(1, budget.max_iterations + 1):
        if budget.expired():
            break
        if (first_solution_iteration is not None and
                iteration - first_solution_iteration >= settings.rrt_star_refine_iterations):
            break
        sample, coin = sampler.draw()
        if coin < settings.goal_bias:
            sample = goal
        nearest = tree.nearest(sample)
        new_xy = _extend(checker, tree.xy_m[nearest], _steer(tree.xy_m[nearest], sample, step_m))
        if new_xy is None:
            continue
        radius_m = _rewire_radius_m(settings, tree.count, gamma_m)
        near = tree.within(new_xy, radius_m)
        near = near[near != nearest]
        near_goal = bool(np.hypot(*(new_xy - goal)) <= radius_m) and np.any(new_xy != goal)
        # One call checks every candidate parent edge and, when close, the edge to the goal.
        starts = np.vstack([tree.xy_m[near], goal[None, :]]) if near_goal else tree.xy_m[near]
        free = (checker.segments_free(starts, np.broadcast_to(new_xy, starts.shape))
                if len(starts) else np.zeros(0, dtype=bool))
        goal_free = bool(free[-1]) if near_goal else False
        near_free = near[free[:len(near)]]
        distances = np.linalg.norm(tree.xy_m[near_free] - new_xy, axis=1)
        parent = nearest
        best_cost = tree.cost_m[nearest] + float(np.hypot(*(tree.xy_m[nearest] - new_xy)))
        if near_free.size:
            through = tree.cost_m[near_free] + distances
            index = int(np.argmin(through))
            if through[index] < best_cost:
                parent = int(near_free[index])
                best_cost = float(through[index])
        new_node = tree.add(new_xy, parent)
        # Rewire: a free edge is free in both directions, so the same mask applies.
        for node, distance in zip(near_free.tolist(), distances.tolist()):
            if node == parent:
                continue
            if tree.cost_m[new_node] + distance < tree.cost_m[node] - 1e-12:
                tree.reparent(node, new_node)
        if np.all(new_xy == goal) or goal_free:
            goal_parents.append(new_node)
            if first_solution_iteration is None:
                first_solution_iteration = iteration
    if not goal_parents:
        return None, iteration, tree.count
    parents = np.asarray(goal_parents)
    total = tree.cost_m[parents] + np.linalg.norm(tree.xy_m[parents] - goal, axis=1)
    best = int(parents[int(np.argmin(total))])
    path = tree.path_to_root(best)[::-1]
    if np.any(path[-1] != goal):
        path = np.vstack([path, goal[None, :]])
    return path, iteration, tree.count


_SEARCHES = {'rrt_connect': _rrt_connect, 'rrt': _rrt, 'rrt_star': _rrt_star}


def prepare_checker(checker) -> None:
    """Build the one-off structures that searches on ``checker`` use, so no later search pays
    for them.

    These are the compiled search and smoothing kernels (see :func:`warm_up_compiled`), the
    obstacles' spatial index and the reachability grid of the static map (see
    :mod:`~mapl_robotics.planning.reachability`). All are cached, so a second call costs
    nothing. :func:`search_path` and :func:`plan_path` call it before their time budget
    starts. The clearance field is built earlier, by ``world.checker(radius_m)``.
    """
    warm_up_compiled(checker)
    static_checker = getattr(checker, 'base', checker)
    static_checker.world.strtree()
    reachability_grid(static_checker)


def _search(checker, start_xy_m, goal_xy_m, settings: PlannerSettings, rng,
            deadline_s: float | None) -> tuple[np.ndarray, int, int, _Budget]:
    """Validate, prepare, decide reachability, then search within the budget."""
    require_generator(rng, caller='search_path')
    start, goal = validate_endpoints(checker, start_xy_m, goal_xy_m)
    prepare_checker(checker)
    budget = _Budget(settings, deadline_s)
    # Extra keep-out regions (see spacetime.DiscAvoidingChecker) are left out of this test, so
    # it only reports what the static map makes unreachable.
    static_checker = getattr(checker, 'base', checker)
    if reachability_grid(static_checker).provably_disconnected(start, goal):
        raise GoalUnreachableError(
            f'goal ({goal[0]:.3f}, {goal[1]:.3f}) m cannot be reached from start '
            f'({start[0]:.3f}, {start[1]:.3f}) m in {checker.world.name!r} by a robot of '
            f'radius {checker.radius_m:.3f} m: they lie in separate free regions; pick a goal '
            'in the same region or a smaller robot')
    # RRT-Connect checks the straight edge in its first round's call.
    if settings.algorithm != 'rrt_connect' and edges_free(checker, start[None, :],
                                                           goal[None, :])[0]:
        return np.vstack([start, goal]), 0, 2, budget
    path, iterations, nodes = _SEARCHES[settings.algorithm](checker, start, goal, settings,
                                                            rng, budget)
    if path is not None:
        return path, iterations, nodes, budget
    raise PlanningTimeoutError(
        f'{settings.algorithm} found no path from ({start[0]:.3f}, {start[1]:.3f}) m to '
        f'({goal[0]:.3f}, {goal[1]:.3f}) m within {budget.elapsed_s:.3f} s and {iterations} '
        f'iterations ({nodes} tree nodes); raise time_budget_s or max_iterations')


def search_path(checker: CollisionChecker, start_xy_m, goal_xy_m, *,
                settings: PlannerSettings, rng: np.random.Generator,
                deadline_s: float | None = None) -> tuple[np.ndarray, int, int, float]:
    """Run the configured tree search without smoothing.

    Returns ``(path_xy_m, iterations, tree_nodes, search_s)``. The time budget
    ``settings.time_budget_s`` starts after the endpoints are validated and the one-off
    preparation of :func:`prepare_checker` is done, and covers the reachability test and the
    search. ``deadline_s`` is an optional absolute ``time.perf_counter()`` deadline that
    tightens the budget. The search checks the clock after every iteration, batched round or
    compiled chunk (about 5 ms, estimated from earlier chunks), so it overruns the deadline
    by about one of those.

    Raises :class:`~mapl_robotics.errors.StartInCollisionError`,
    :class:`~mapl_robotics.errors.GoalInCollisionError`,
    :class:`~mapl_robotics.errors.GoalUnreachableError` (before searching, when the
    reachability grid proves start and goal disconnected),
    :class:`~mapl_robotics.errors.PlanningTimeoutError`, or
    :class:`~mapl_robotics.errors.PlannerConfigError` when ``rng`` is not a
    ``numpy.random.Generator``.
    """
    path, iterations, nodes, budget = _search(checker, start_xy_m, goal_xy_m, settings, rng,
                                              deadline_s)
    return path, iterations, nodes, budget.elapsed_s


def plan_path(checker: CollisionChecker, start_xy_m, goal_xy_m, *,
              settings: PlannerSettings | None = None, rng: np.random.Generator,
              deadline_s: float | None = None) -> PathResult:
    """Plan a collision-free path for the checker's disc robot and shortcut-smooth it.

    Search and smoothing share ``settings.time_budget_s`` (see :func:`search_path` for what
    it excludes). Smoothing stops at the deadline and returns the shortest path it has, so
    a search that used the whole budget returns its path unsmoothed.

    >>> import numpy as np
    >>> from shapely.geometry import Point
    >>> from mapl_robotics.geometry import World
    >>> world = World(bounds_m=(0, 0, 10, 4), obstacles=[Point(5, 2).buffer(1.0)])
    >>> result = plan_path(world.checker(0.3), (1, 2), (9, 2), rng=np.random.default_rng(1))
    >>> bool(world.checker(0.3).path_free(result.xy_m))
    True

    Raises the same errors as :func:`search_path`.
    """
    require_generator(rng, caller='plan_path')
    settings = PlannerSettings() if settings is None else settings
    raw, iterations, nodes, budget = _search(checker, start_xy_m, goal_xy_m, settings, rng,
                                             deadline_s)
    search_s = budget.elapsed_s
    started_s = time.perf_counter()
    smoothed = shortcut_smooth(checker, raw, rng=rng, iterations=settings.smoothing_iterations,
                               batch=settings.shortcut_batch, deadline_s=budget.deadline_s)
    smoothing_s = time.perf_counter() - started_s
    _LOG.debug('%s: %d iterations, %d nodes, %.1f ms search, %.1f ms smoothing, %.2f m',
               settings.algorithm, iterations, nodes, 1e3 * search_s, 1e3 * smoothing_s,
               path_length_m(smoothed))
    return PathResult(xy_m=smoothed, raw_xy_m=raw, algorithm=settings.algorithm,
                      iterations=iterations, tree_nodes=nodes, search_s=search_s,
                      smoothing_s=smoothing_s)
