"""Composition of atoms into formulas: "at least k of" (m-of-n) rules.

The atoms here are the bits of random 0/1 features, fitted by the threshold
index as in a real search; a hidden rule is a formula over some of them.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.program import Var, apply
from dsl.types import BOOL
from synth.compose import COUNT, PAIRS, Composer, Formula, Tree, _at_least
from synth.search import _tree_program
from synth.thresholds import Split, ThresholdIndex

ROWS, FEATURES = 3000, 8


def bits(seed: int, rows: int = ROWS) -> np.ndarray:
    return np.random.default_rng(seed).random((FEATURES, rows)) < 0.5


def atom_of(split: Split, features: np.ndarray, index: ThresholdIndex):
    """The atom as ``f3`` (or ``not f3``), by where it holds."""
    var = Var(f"f{split.feature}", BOOL)
    holds = index.truth(split, features[split.feature].astype(float))
    return var if np.array_equal(holds, features[split.feature]) else apply("not_", var)


class Rig:
    """A composer over the bits of ``features``, with a formula's printed program."""

    def __init__(self, features: np.ndarray, z: np.ndarray) -> None:
        self.features = features
        self.index = ThresholdIndex(features.astype(float))
        self.composer = Composer(lambda target, w, top: self.index.best(target, w, top=top),
                                 self.truth, lambda t, a: self.program(t, a).size, z,
                                 np.ones(len(z)), penalty=1e-4)

    def truth(self, split: Split) -> np.ndarray:
        return self.index.truth(split, self.features[split.feature].astype(float))

    def atom(self, feature: int) -> Split:
        """The atom that holds where ``feature`` is 1."""
        return self.index.best(self.features[feature], np.ones(self.features.shape[1]), top=1)[0]

    def program(self, tree: Tree, atoms: tuple[Split, ...]):
        """``tree`` printed with atoms ``f3`` (or ``not f3``)."""
        def name(split: Split):
            var = Var(f"f{split.feature}", BOOL)
            return var if np.array_equal(self.truth(split),
                                         self.features[split.feature]) else apply("not_", var)
        return _tree_program(tree, atoms, name)

    def formula(self, tree: Tree, *features: int) -> Formula:
        return self.composer.make(tree, tuple(self.atom(f) for f in features))


def at_least(k: int, n: int) -> Tree:
    return (COUNT, k, *(("atom", i) for i in range(n)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, FEATURES), data=st.data())
def test_count_node_holds_where_at_least_k_children_do(seed, n, data):
    features = bits(seed, 200)
    k = data.draw(st.integers(2, n - 1))
    rig = Rig(features, features[0])
    f = rig.formula(at_least(k, n), *range(n))
    expected = features[:n].sum(axis=0) >= k
    assert np.array_equal(rig.composer.evaluate(f.tree, f.atoms), expected)
    assert f.correct == float((expected == features[0]).sum())
    # a child decides exactly where the others count k - 1 (the conditional fit)
    child = data.draw(st.integers(0, n - 1))
    others = np.delete(features[:n], child, axis=0).sum(axis=0)
    path = (f.tree.index(("atom", f.atoms.index(rig.atom(child)))),)
    p0, p1 = rig.composer._slot_outputs(f.tree, f.atoms, path)
    assert np.array_equal(p0, others >= k) and np.array_equal(p1, others + 1 >= k)


def test_equal_count_formulas_compare_equal():
    rig = Rig(bits(0), bits(0)[0])
    children = [("atom", 0), ("atom", 1), ("atom", 2)]
    forms = {rig.formula((COUNT, 2, *order), 1, 2, 3) for order in itertools.permutations(children)}
    forms |= {rig.formula(at_least(2, 3), *order) for order in itertools.permutations([1, 2, 3])}
    assert len({(f.tree, f.atoms) for f in forms}) == 1


def test_a_count_prints_as_a_sum_of_ints_and_all_or_one_of_n_as_and_or():
    rig = Rig(bits(0), bits(0)[0])
    f = rig.formula(at_least(2, 3), 1, 2, 3)
    assert str(rig.program(f.tree, f.atoms)) == "int(f1) + int(f2) + int(f3) >= 2"
    assert f.size == 3 + 3 + 2 + 2  # atoms, int, +, >= and its constant
    children = tuple(("atom", i) for i in range(3))
    for k, text in ((3, "f1 and f2 and f3"), (1, "f1 or f2 or f3")):
        f = rig.formula(_at_least(k, children), 1, 2, 3)
        assert str(rig.program(f.tree, f.atoms)) == text


def test_refit_replaces_the_wrong_child_of_a_count():
    features = bits(1)
    rig = Rig(features, features[1:4].sum(axis=0) >= 2)
    f = rig.composer.refit(rig.formula(at_least(2, 3), 0, 2, 3))  # f0 refitted first
    assert f == rig.formula(at_least(2, 3), 1, 2, 3) and f.correct == ROWS


def test_prune_drops_a_child_of_a_count_that_loses_nothing():
    features = bits(2)
    rig = Rig(features, features[:3].sum(axis=0) >= 2)
    pruned = rig.composer.prune(rig.formula(at_least(2, 4), 0, 1, 2, 6))
    assert pruned == rig.formula(at_least(2, 3), 0, 1, 2)
    # a child that nearly always holds: one fewer of the rest needed without it
    features[6] = np.arange(ROWS) >= 50
    rig = Rig(features, features[:3].sum(axis=0) >= 2)
    pruned = rig.composer.prune(rig.formula(at_least(3, 4), 0, 1, 2, 6))
    assert pruned == rig.formula(at_least(2, 3), 0, 1, 2)


def test_mutate_turns_a_chain_into_a_count():
    features = bits(3)
    rig = Rig(features, features[:3].sum(axis=0) >= 2)
    chain = rig.formula(("and", ("and", ("atom", 0), ("atom", 1)), ("atom", 2)), 0, 1, 2)
    assert rig.composer.mutate(chain) == rig.formula(at_least(2, 3), 0, 1, 2)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 5), data=st.data())
def test_search_recovers_an_m_of_n_rule(seed, n, data):
    features = bits(seed)
    k = data.draw(st.integers(2, n - 1))
    z = features[:n].sum(axis=0) >= k
    rig = Rig(features, z)
    best = rig.composer.search([rig.atom(f) for f in range(FEATURES)], float("inf"))[0]
    assert best == rig.formula(at_least(k, n), *range(n)), str(rig.program(best.tree, best.atoms))


def stand_in_rig() -> tuple[Rig, Formula]:
    """Labels ``f0 or (f1 and f2)`` and the formula ``f0``, with a stand-in
    ``f3`` for the pair: True on most rows the pair must make True, few others."""
    f = bits(5)
    need = f[1] & f[2]
    noise = np.random.default_rng(1).random((2, ROWS))
    f[3] = (need & (noise[0] > 0.03)) | (noise[1] < 0.05)
    rig = Rig(f, f[0] | need)
    return rig, rig.formula(("atom", 0), 0)


def test_a_pair_is_refitted_given_its_partner():
    """The pair's first atom, fitted alone as a necessary condition, is the
    stand-in; given its partner the plain atom is exact, and the grown pair
    says so."""
    rig, start = stand_in_rig()
    grown = rig.composer._grow_pair(start, (), start.tree, "or")
    assert [str(rig.program(g.tree, g.atoms)) for g in grown] == ["f1 and f2 or f0"]


def test_pairs_grow_beside_a_helpful_atom_only_when_always():
    """The stand-in ``f3`` alone helps, so growth by a pair happens beside it
    with ``pairs="always"`` and not with ``"fallback"`` (pairs only where no
    single atom helps)."""
    rig, start = stand_in_rig()
    grown = {}
    for pairs in PAIRS:
        rig.composer.pairs = pairs
        grown[pairs] = {str(rig.program(g.tree, g.atoms)) for g in rig.composer.grow(start, top=1)}
    assert "f0 or f3" in grown["fallback"] and "f1 and f2 or f0" not in grown["fallback"]
    assert "f1 and f2 or f0" in grown["always"]


def test_an_unknown_pair_policy_is_named():
    with pytest.raises(ValueError, match="pairs"):
        Composer(None, None, None, np.zeros(3, bool), np.ones(3), 1e-4, pairs="sometimes")


def test_a_stand_in_atom_is_replaced_by_the_pair_it_stands_for():
    """In ``f0 or f3`` the stand-in ``f3`` fits better than ``f1`` or ``f2``
    alone, so refitting it one for one keeps it; replaced by a new pair it
    becomes ``f1 and f2``, and the formula reproduces every label."""
    rig, _ = stand_in_rig()
    start = rig.formula(("or", ("atom", 0), ("atom", 1)), 0, 3)
    assert rig.composer.refit(start) == start
    split = rig.composer.split_atoms(start)
    assert str(rig.program(split.tree, split.atoms)) == "f1 and f2 or f0"
    assert rig.composer.perfect(split)
