"""Decision trees over the enumerated features: the large end of the front.

Composition finds small formulas of a few atoms.  Past them, a network's
labels are often best described by a lookup over good features (challenge 2's
stripes along ``x``), and a peer's decision tree of a thousand nodes then
explains the network better than any formula of forty.  As in EUSolver's
unification by decision trees (Alur, Radhakrishna and Udupa, 2017), the
engine learns a tree whose splits are atoms over its own features and writes
it as a program of its language, so the front reaches those sizes too:

* a split ``f <= t`` is the atom ``f < c``, with ``c`` the simplest number
  between the two feature values the split separates (the same partition of
  every fit row);
* a node is ``a and L or not a and R``, written ``f < c and L or f >= c and R``,
  and shortened where a child is a constant leaf (``a or R``, ``f >= c and R``
  and their mirror images) or both leaves agree.

One tree is grown best first (scikit-learn) until its leaves are pure or
number ``max_leaves``; the trees of 2, 3, 4, 6, ... leaves are the prefixes
of its growth order, each node expanded in the order
of its weighted impurity decrease, so one fit gives the whole family.
"""
from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from dsl.program import Const, Program, apply, const
from dsl.types import BOOL
from synth.numbers import simplest_in

#: Leaf counts of the trees written as programs (those up to the grown tree's).
LEAF_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)

#: Seconds scikit-learn's split search takes per fit row and feature over a
#: whole tree, about (measured on the project's machine: 2 s for 10,215 rows
#: and 256 features, 64 leaves); what the search budgets features by.
SECONDS_PER_ROW_FEATURE = 1e-6


def affordable_features(seconds: float, rows: int) -> int:
    """How many features a tree over ``rows`` rows can be grown on in ``seconds``."""
    return int(max(seconds, 0.0) / (SECONDS_PER_ROW_FEATURE * max(rows, 1)))


def tree_programs(features: Sequence[Program], values: np.ndarray, z: np.ndarray,
                  w: np.ndarray, max_leaves: int = LEAF_COUNTS[-1], seed: int = 0
                  ) -> list[Program]:
    """Programs of the best-first trees over ``features`` (their ``values`` on
    the fit rows: features x rows) fitting labels ``z`` under weights ``w``,
    one per leaf count of ``LEAF_COUNTS`` below the grown tree's, and the
    grown tree (at most ``max_leaves`` leaves), smallest first.
    Features with values beyond float32's range are left out."""
    from sklearn.tree import DecisionTreeClassifier

    values = np.asarray(values, dtype=np.float64)
    usable = [i for i in range(len(values))
              if np.isfinite(values[i]).all() and np.abs(values[i]).max() < 1e30]
    if not usable or len(np.unique(z)) < 2:
        return []
    x = values[usable].T
    clf = DecisionTreeClassifier(max_leaf_nodes=max(max_leaves, 2), random_state=seed)
    clf.fit(x, z, sample_weight=w)
    writer = _TreeWriter(clf, [features[i] for i in usable], x)
    order = writer.growth_order()
    counts = [k for k in LEAF_COUNTS if k - 1 < len(order)] + [len(order) + 1]
    return [writer.program(set(order[:k - 1])) for k in counts if k > 1]


class _TreeWriter:
    """Writes the prefixes of a fitted tree as programs."""

    def __init__(self, clf, features: Sequence[Program], x: np.ndarray) -> None:
        self.tree = clf.tree_
        self.classes = clf.classes_
        self.features = features
        self.x = x
        self._atoms: dict[int, tuple[Program, Program]] = {}

    def growth_order(self) -> list[int]:
        """Inner nodes in best-first order: the frontier node of largest
        weighted impurity decrease next."""
        t = self.tree
        left, right = t.children_left, t.children_right
        weight, impurity = t.weighted_n_node_samples, t.impurity

        def gain(node: int) -> float:
            return (weight[node] * impurity[node] - weight[left[node]] * impurity[left[node]]
                    - weight[right[node]] * impurity[right[node]])

        order, frontier = [], [(-gain(0), 0)] if left[0] >= 0 else []
        while frontier:
            _, node = heapq.heappop(frontier)
            order.append(node)
            for child in (left[node], right[node]):
                if left[child] >= 0:
                    heapq.heappush(frontier, (-gain(child), child))
        return order

    def program(self, inner: set[int], node: int = 0) -> Program:
        """The tree with only ``inner`` expanded, from ``node`` down."""
        t = self.tree
        if node not in inner:
            return Const(bool(self.classes[int(np.argmax(t.value[node][0]))]), BOOL)
        below, above = self._atom(node)  # where the split goes left, and right
        left = self.program(inner, t.children_left[node])
        right = self.program(inner, t.children_right[node])
        if isinstance(left, Const) and isinstance(right, Const):
            return left if left.value == right.value else (below if left.value else above)
        if isinstance(left, Const):
            return apply("or_", below, right) if left.value else apply("and_", above, right)
        if isinstance(right, Const):
            return apply("or_", above, left) if right.value else apply("and_", below, left)
        return apply("or_", apply("and_", below, left), apply("and_", above, right))

    def _atom(self, node: int) -> tuple[Program, Program]:
        """``f < c`` and ``f >= c`` for the split at ``node``, ``c`` the
        simplest number between the values it separates (as scikit-learn
        compares them, in float32)."""
        if node not in self._atoms:
            t = self.tree
            column = self.x[:, t.feature[node]]
            goes_left = column.astype(np.float32) <= t.threshold[node]
            lo, hi = column[goes_left].max(), column[~goes_left].min()
            c = simplest_in(float(lo), float(hi), lo_open=True, hi_open=False)
            c_const = const(int(c)) if float(c).is_integer() else const(c)
            feature = self.features[t.feature[node]]
            self._atoms[node] = (apply("lt", feature, c_const), apply("ge", feature, c_const))
        return self._atoms[node]
