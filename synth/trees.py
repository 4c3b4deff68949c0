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
number ``max_leaves``.  Its subtrees are written at a ladder of leaf counts
(``leaf_ladder``) along two orders, so one fit gives the whole family:

* the prefixes of its growth order (each node expanded in the order of its
  weighted impurity decrease);
* the weakest-link pruning sequence of CART (Breiman et al., 1984) by
  weighted misclassification: the inner node whose subtree buys the fewest
  labels per leaf it adds is cut first, so each subtree is the most faithful
  one of its leaf count on that path -- what a peer's pruned tree is too;
* its truncations at each depth: where growth was not cut by ``max_leaves``
  above that depth, the tree CART grows with that ``max_depth`` (split
  choices do not depend on the order nodes are expanded in, but for ties
  between equally good splits).  A depth limit
  is how a tree is usually regularised, and the shallow wide trees it gives
  generalise better than the deep narrow prefixes of the same size where
  the labels are a network's blurred boundary.

How far each family goes is chosen by k-fold cross-validation on the fit rows
(``folds``), as a peer picks its tree's depth: the same best-first tree is
grown on each fold's other rows, every leaf count of the ladder and every depth
is scored on the fold's own rows, and the family stops at the leaf count (the
depth) of best cross-validated fidelity.  Past it a bigger tree only learns
the fit rows by heart -- what the front should not offer as an explanation.
"""
from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from dsl.program import Const, Program, apply, const
from dsl.types import BOOL
from synth.numbers import simplest_in

#: The ratio between successive leaf counts of the trees written as programs.
LADDER_RATIO = 1.25


def leaf_ladder(most: int) -> list[int]:
    """Leaf counts from 2 to ``most``, each about ``LADDER_RATIO`` times the last
    (every count up to 8), ``most`` the last."""
    counts, k = [], 2.0
    while round(k) < most:
        if not counts or round(k) > counts[-1]:
            counts.append(round(k))
        k = max(k * LADDER_RATIO, k + 1)
    return counts + [most] if most >= 2 else []


#: Seconds scikit-learn's split search takes per fit row and feature over a
#: whole tree, about (measured on the project's machine: 2 s for 10,215 rows
#: and 256 features, 64 leaves); what the search budgets features by.
SECONDS_PER_ROW_FEATURE = 1e-6


def affordable_features(seconds: float, rows: int) -> int:
    """How many features a tree over ``rows`` rows can be grown on in ``seconds``."""
    return int(max(seconds, 0.0) / (SECONDS_PER_ROW_FEATURE * max(rows, 1)))


def tree_programs(features: Sequence[Program], values: np.ndarray, z: np.ndarray,
                  w: np.ndarray, max_leaves: int = 256, seed: int = 0,
                  folds: int = 3) -> list[Program]:
    """Programs of the subtrees of the best-first tree over ``features`` (their
    ``values`` on the fit rows: features x rows) fitting labels ``z`` under
    weights ``w``: for each count of :func:`leaf_ladder` the growth prefix and
    the pruned subtree of at most that many leaves, and the truncation at each
    depth, up to the leaf count and the depth of best ``folds``-fold
    cross-validated fidelity (every one with ``folds`` below 2), each once,
    smallest first; the grown tree has at most ``max_leaves`` leaves.
    Features with values beyond float32's range are left out."""
    values = np.asarray(values, dtype=np.float64)
    usable = [i for i in range(len(values))
              if np.isfinite(values[i]).all() and np.abs(values[i]).max() < 1e30]
    if not usable or len(np.unique(z)) < 2:
        return []
    x = values[usable].T
    writer = _TreeWriter(_best_first_tree(x, z, w, max_leaves, seed),
                         [features[i] for i in usable], x)
    order = writer.growth_order()
    pruned = writer.pruning_sequence()
    ladder = leaf_ladder(len(order) + 1)
    truncations = writer.depth_truncations()
    if folds >= 2:
        leaf_cap, depth_cap = cross_validated_caps(x, z, w, max_leaves, seed, folds, ladder)
        ladder = [k for k in ladder if k <= leaf_cap]
        truncations = truncations[:depth_cap]
    subtrees: dict[frozenset[int], None] = {}
    for k in ladder:
        subtrees[frozenset(order[:k - 1])] = None
        subtrees[next(s for s in pruned if len(s) <= k - 1)] = None
    subtrees.update(dict.fromkeys(truncations))
    programs = {writer.program(set(inner)): None for inner in subtrees if inner}
    return sorted(programs, key=lambda p: p.size)


def _best_first_tree(x: np.ndarray, z: np.ndarray, w: np.ndarray, max_leaves: int, seed: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_leaf_nodes=max(max_leaves, 2), random_state=seed).fit(
        x, z, sample_weight=w)


def cross_validated_caps(x: np.ndarray, z: np.ndarray, w: np.ndarray, max_leaves: int,
                         seed: int, folds: int, ladder: Sequence[int]) -> tuple[int, int]:
    """(leaf count of ``ladder``, depth) of the best-first tree's prefix and
    truncation of highest weighted fidelity on held-out folds (``folds``-fold,
    stratified, shuffled by ``seed``), the smaller on ties."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, int(np.bincount(z.astype(int)).min()))
    if folds < 2 or not ladder:  # too few of a label to hold any out
        return (ladder[-1] if ladder else 2), len(x)
    by_leaves, by_depth = np.zeros(len(ladder)), np.zeros(1)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, z):
        writer = _TreeWriter(_best_first_tree(x[train], z[train], w[train], max_leaves, seed),
                             (), x[train])
        ranks, correct = writer.paths(x[test], z[test])
        for i, k in enumerate(ladder):
            stop = (ranks < k - 1).sum(axis=1)  # path steps that the k-leaf prefix expands
            by_leaves[i] += w[test] @ correct[np.arange(len(test)), stop]
        at_depth = w[test] @ correct  # a path's last node stands for every depth below it
        deepest = max(len(at_depth), len(by_depth))
        by_depth = (np.pad(by_depth, (0, deepest - len(by_depth)), mode="edge")
                    + np.pad(at_depth, (0, deepest - len(at_depth)), mode="edge"))
    return ladder[int(np.argmax(by_leaves))], max(int(np.argmax(by_depth)), 1)


class _TreeWriter:
    """Writes the prefixes of a fitted tree as programs."""

    def __init__(self, clf, features: Sequence[Program], x: np.ndarray) -> None:
        self._clf = clf
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

    def paths(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For rows ``x`` (labels ``z``), along each row's path from the root
        (rows x depth, the leaf repeated to the deepest path's length): each
        node's rank in the growth order (a leaf's: infinite), and whether each
        node's class is the row's label."""
        t = self.tree
        indicator = self._clf.decision_path(x.astype(np.float32)).tocsr()
        lengths = np.diff(indicator.indptr)
        nodes = np.zeros((len(x), lengths.max()), dtype=np.int64)
        for row in range(len(x)):  # node ids ascend from the root: parents come first
            path = indicator.indices[indicator.indptr[row]:indicator.indptr[row + 1]]
            nodes[row] = np.concatenate([np.sort(path), np.full(lengths.max() - len(path),
                                                                path.max())])
        rank = np.full(t.node_count, np.inf)
        rank[self.growth_order()] = np.arange(len(self.growth_order()))
        classes = self.classes[np.argmax(t.value[:, 0, :], axis=1)]
        return rank[nodes], classes[nodes] == np.asarray(z)[:, None]

    def depth_truncations(self) -> list[frozenset[int]]:
        """The inner nodes above each depth, from the root alone to the grown tree."""
        t = self.tree
        depth, inner = {0: 0}, []
        for node in range(t.node_count):  # scikit-learn numbers parents before children
            if t.children_left[node] >= 0:
                inner.append(node)
                for child in (t.children_left[node], t.children_right[node]):
                    depth[child] = depth[node] + 1
        deepest = max((depth[n] for n in inner), default=-1)
        return [frozenset(n for n in inner if depth[n] < d) for d in range(1, deepest + 2)]

    def pruning_sequence(self) -> list[frozenset[int]]:
        """The inner nodes kept by each subtree of weakest-link pruning, from
        the grown tree to the root alone: each step cuts the node whose subtree
        saves the least weighted misclassification per leaf beyond its own."""
        t = self.tree
        left, right = t.children_left, t.children_right
        value = t.value[:, 0, :]
        # misclassified weight of each node were it a leaf
        errors = t.weighted_n_node_samples * (1 - value.max(axis=1) / value.sum(axis=1))
        inner = {node for node in range(t.node_count) if left[node] >= 0}
        sequence = [frozenset(inner)]
        while inner:
            below_errors, leaves, weakest = {}, {}, None

            def visit(node: int) -> None:
                nonlocal weakest
                if node not in inner:
                    below_errors[node], leaves[node] = errors[node], 1
                    return
                visit(left[node])
                visit(right[node])
                below_errors[node] = below_errors[left[node]] + below_errors[right[node]]
                leaves[node] = leaves[left[node]] + leaves[right[node]]
                link = ((errors[node] - below_errors[node]) / (leaves[node] - 1), -leaves[node])
                if weakest is None or link < weakest[0]:
                    weakest = (link, node)

            visit(0)
            cut = [weakest[1]]
            while cut:
                node = cut.pop()
                if node in inner:
                    inner.discard(node)
                    cut += [left[node], right[node]]
            sequence.append(frozenset(inner))
        return sequence

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
