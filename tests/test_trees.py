"""Decision trees over features, written as programs: the large end of the front."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeClassifier

from dsl.domains import GridDomain
from dsl.program import Var, apply, const
from dsl.types import INT, REAL
from synth.search import Synthesizer
from synth.trees import affordable_features, tree_programs

X, Y = Var("x", INT), Var("y", INT)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(20, 200),
       st.sampled_from([2, 3, 4, 6, 8]))
def test_the_largest_tree_program_predicts_what_the_tree_predicts(seed, n_features, n, leaves):
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=(n_features, n)) * rng.choice([1, 100, 1e-3]), 3)
    z = rng.random(n) < rng.uniform(0.2, 0.8)
    features = [Var(f"f{i}", REAL) for i in range(n_features)]
    programs = tree_programs(features, values, z, np.ones(n), max_leaves=leaves, folds=0)
    clf = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0).fit(values.T, z)
    if clf.get_n_leaves() < 2:
        assert programs == []
        return
    env = {f.name: values[i] for i, f in enumerate(features)}
    assert np.array_equal(programs[-1].evaluate(env).astype(bool), clf.predict(values.T))


def test_trees_grow_by_leaves_and_never_fit_worse():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 113, size=(2, 3000))
    z = ((x * 7 + y) % 11 < 4) ^ (y > 60)
    values = np.stack([x, y, (x * 7 + y) % 11]).astype(float)
    residue = apply("mod", apply("add", apply("mul", X, const(7)), Y), const(11))
    programs = tree_programs([X, Y, residue], values, z, np.ones(len(z)))
    fits = [np.mean(p.evaluate({"x": x, "y": y}).astype(bool) == z) for p in programs]
    sizes = [p.size for p in programs]
    assert sizes == sorted(sizes) and fits == sorted(fits)
    assert fits[-1] == 1.0


def test_cross_validation_stops_the_trees_before_they_learn_noise_by_heart():
    """Labels of a two-split rule with 10% of them flipped at random: the
    uncapped family ends in a tree that learns flips by heart, the
    cross-validated one stops near the rule's few leaves, and fits the rule
    better than the noise-learning tree does on rows neither saw."""
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 113, size=(2, 4000))
    rule = (x < 40) | (y >= 70)
    z = rule ^ (rng.random(4000) < 0.1)
    values = np.stack([x, y]).astype(float)
    capped = tree_programs([X, Y], values, z, np.ones(len(z)))
    every = tree_programs([X, Y], values, z, np.ones(len(z)), folds=0)
    env = {"x": x, "y": y}
    assert np.mean(every[-1].evaluate(env).astype(bool) == z) > np.mean(rule == z) + 0.02
    assert capped[-1].size < every[-1].size / 10
    u, v = rng.integers(0, 113, size=(2, 4000))
    fresh = {"x": u, "y": v}
    truth = (u < 40) | (v >= 70)
    assert np.mean(capped[-1].evaluate(fresh).astype(bool) == truth) > 0.99
    assert np.mean(every[-1].evaluate(fresh).astype(bool) == truth) < 0.97


def test_a_split_is_written_with_the_simplest_constant_between_the_values_it_separates():
    x, y = np.meshgrid(np.arange(0, 100, 7), np.arange(0, 100, 3), indexing="ij")
    x, y = x.ravel(), y.ravel()
    z = (x < 38) | (y >= 68)
    programs = tree_programs([X, Y], np.stack([x, y]).astype(float), z, np.ones(len(z)),
                             max_leaves=3)
    # x: 35 | 42 and y: 66 | 69 are what the splits separate; 40 and 67 the simplest between
    assert str(programs[-1]) in ("x < 40 or y >= 67", "y >= 67 or x < 40")


def test_the_time_a_tree_may_take_bounds_its_features():
    assert affordable_features(2.0, 10_000) == 200
    assert affordable_features(-1.0, 10_000) == 0


def test_a_lookup_the_formulas_cannot_state_is_reached_by_a_tree_on_the_front():
    """Labels that are a random table of ``x`` rows: no small formula explains
    them, and the front's largest program (a tree over the features) does."""
    rng = np.random.default_rng(3)
    rows = rng.random(60) < 0.5
    env = GridDomain((60, 30)).all_inputs()
    z = rows[env["x"]].astype(int)
    result = Synthesizer(time_limit=6, max_feature_size=3, seed=0).fit(env, z).result_
    largest = result.pareto[-1]
    assert largest.fidelity == 1.0 and largest.holdout_fidelity >= 0.95
    assert largest.size > 40  # a table of about 30 runs, not a formula
    assert Synthesizer(time_limit=6, max_feature_size=3, seed=0, tree_leaves=0).fit(
        env, z).result_.pareto[-1].fidelity < 1.0


def _rooted_subtrees(tree, node=0):
    """Every subtree of ``tree`` rooted at ``node``: the sets of inner nodes it expands."""
    left, right = tree.children_left[node], tree.children_right[node]
    if left < 0:
        return [frozenset()]
    return [frozenset()] + [frozenset({node}) | a | b for a in _rooted_subtrees(tree, left)
                            for b in _rooted_subtrees(tree, right)]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 9))
def test_each_pruned_subtree_misclassifies_least_of_all_subtrees_no_larger(seed, leaves):
    """Weakest-link pruning (CART): no subtree of at most as many leaves as a
    pruned one misclassifies less weight on the fit rows."""
    from synth.trees import _TreeWriter

    rng = np.random.default_rng(seed)
    values = rng.normal(size=(3, 300))
    z = (values[0] * values[1] > 0) ^ (rng.random(300) < 0.15)
    w = rng.uniform(0.5, 2.0, size=300)
    clf = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0).fit(
        values.T, z, sample_weight=w)
    t = clf.tree_
    value = t.value[:, 0, :]
    errors = t.weighted_n_node_samples * (1 - value.max(axis=1) / value.sum(axis=1))

    def frontier(inner):
        return [n for n in range(t.node_count)
                if n not in inner and (n == 0 or any(
                    n in (t.children_left[p], t.children_right[p]) for p in inner))]

    def misclassified(inner):
        return sum(errors[n] for n in frontier(inner))

    everything = _rooted_subtrees(t)
    writer = _TreeWriter(clf, [Var(f"f{i}", REAL) for i in range(3)], values.T)
    for pruned in writer.pruning_sequence():
        rivals = [s for s in everything if len(s) <= len(pruned)]
        assert misclassified(pruned) <= min(map(misclassified, rivals)) + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_a_depth_truncation_is_the_tree_grown_to_that_depth(seed, depth):
    """The truncations of the best-first tree are CART's depth-limited trees
    (one continuous feature: no two splits tie; across features they may, and
    the two builders may break the tie apart)."""
    from synth.trees import _TreeWriter

    rng = np.random.default_rng(seed)
    values = rng.normal(size=(1, 1000))
    z = (np.sin(3 * values[0]) > 0) ^ (rng.random(1000) < 0.1)
    grown = DecisionTreeClassifier(max_leaf_nodes=1000, random_state=0).fit(values.T, z)
    writer = _TreeWriter(grown, [Var("f", REAL)], values.T)
    truncations = writer.depth_truncations()
    assert len(truncations) == grown.get_depth() and truncations[0] == {0}
    limited = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(values.T, z)
    program = writer.program(set(truncations[depth - 1]))
    assert np.array_equal(program.evaluate({"f": values[0]}).astype(bool),
                          limited.predict(values.T))
