"""RRT* cost bookkeeping and path quality, and the search tree's rewiring."""

from __future__ import annotations

import numpy as np
import pytest

from mapl_robotics.planning import PlannerSettings, search_path
from mapl_robotics.planning import rrt as rrt_module
from mapl_robotics.planning.smoothing import path_length_m
from mapl_robotics.planning.tree import SearchTree


def test_reparent_updates_whole_subtree():
    tree = SearchTree(np.array([0.0, 0.0]))
    a = tree.add(np.array([0.0, 3.0]), 0)
    b = tree.add(np.array([4.0, 3.0]), a)
    c = tree.add(np.array([4.0, 5.0]), b)
    d = tree.add(np.array([8.0, 3.0]), b)
    assert tree.cost_m[c] == pytest.approx(3.0 + 4.0 + 2.0)
    tree.reparent(b, 0)
    assert tree.cost_m[b] == pytest.approx(5.0)
    assert tree.cost_m[c] == pytest.approx(7.0)
    assert tree.cost_m[d] == pytest.approx(9.0)
    assert tree.max_cost_error_m() < 1e-12
    assert b not in tree.children[a]
    assert b in tree.children[0]


def _run_rrt_star(world, seed, refine_iterations):
    checker = world.checker(0.3)
    settings = PlannerSettings(algorithm='rrt_star', step_size_m=2.0, time_budget_s=60.0,
                               rrt_star_refine_iterations=refine_iterations)
    trees = []
    budget = rrt_module._Budget(settings, None)
    path, _, _ = rrt_module._rrt_star(checker, np.array([1.0, 1.0]), np.array([19.0, 9.0]),
                                      settings, np.random.default_rng(seed), budget,
                                      tree_out=trees)
    return path, trees[0]


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_costs_consistent_after_rewiring(two_walls, seed, monkeypatch):
    rewires = []
    original = SearchTree.reparent

    def counting_reparent(self, node, new_parent):
        rewires.append(node)
        original(self, node, new_parent)

    monkeypatch.setattr(SearchTree, 'reparent', counting_reparent)
    path, tree = _run_rrt_star(two_walls, seed, refine_iterations=300)
    assert len(rewires) > 0
    # Every node's cost equals its parent's cost plus the edge length.
    assert tree.max_cost_error_m() < 1e-9
    # And equals the length of its path back to the root.
    for node in range(0, tree.count, max(tree.count // 25, 1)):
        assert tree.cost_m[node] == pytest.approx(path_length_m(tree.path_to_root(node)),
                                                  abs=1e-9)
    assert path is not None
    assert two_walls.checker(0.3).path_free(path)


def test_rrt_star_not_longer_than_rrt_on_average(two_walls):
    checker = two_walls.checker(0.3)
    lengths = {'rrt': [], 'rrt_star': []}
    for seed in range(6):
        for algorithm in lengths:
            settings = PlannerSettings(algorithm=algorithm, step_size_m=2.0,
                                       time_budget_s=60.0, rrt_star_refine_iterations=300)
            path, *_ = search_path(checker, (1, 1), (19, 9), settings=settings,
                                   rng=np.random.default_rng(seed))
            lengths[algorithm].append(path_length_m(path))
    assert np.mean(lengths['rrt_star']) <= np.mean(lengths['rrt'])


def test_refinement_does_not_lengthen(two_walls):
    short, _ = _run_rrt_star(two_walls, 5, refine_iterations=0)
    refined, _ = _run_rrt_star(two_walls, 5, refine_iterations=400)
    assert path_length_m(refined) <= path_length_m(short) + 1e-9
