"""Peers' programs measured in the engine's units, and the fronts of trees.

Sizes compare only in one unit.  The engine counts the nodes of a program
in its own language (``ink(image) > 100.0`` is 4: comparison, feature, its
input, threshold), so a peer's program is counted as the same program
written in that language:

* a decision tree is the formula its splits make: a split ``f <= t`` is the
  atom ``f <= t`` (2 nodes and ``f``'s own), a node is ``a and L or not a and R``,
  shortened to ``a or R`` / ``not a and R`` (and the mirror images) where a
  child is a constant leaf, and to the atom alone where its two leaves differ
  (a negated comparison is the flipped comparison, no larger); a constant is
  1 node;
* a genetic program is its own tree, each feature it reads counted at that
  feature's size, plus 2 for the comparison that makes it a label
  (``program > 0``).

A raw input column (``x``, one pixel) counts 1 node, the least any reading of
it could cost: the convention never makes a peer look larger than it is.

A fitted tree's cost-complexity pruning path (scikit-learn) gives the smaller
trees it contains; their sizes and fidelities form the tree's front, so the
engine and a tree can be compared at the same size (:mod:`benchmarks.report`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Most trees of a pruning path scored for a front (the smallest trees first).
FRONT_POINTS = 24


def tree_size(clf, feature_sizes: Sequence[int]) -> int:
    """Nodes of the fitted tree ``clf`` written as a formula of the engine's language."""
    tree = clf.tree_

    def visit(node: int) -> tuple[int, object]:
        """(size, the constant label or None) of the subtree at ``node``."""
        left, right = tree.children_left[node], tree.children_right[node]
        if left < 0:
            return 1, clf.classes_[int(np.argmax(tree.value[node][0]))]
        (l_size, l_const), (r_size, r_const) = visit(left), visit(right)
        atom = 2 + int(feature_sizes[tree.feature[node]])
        if l_const is not None and r_const is not None:
            return (1, l_const) if l_const == r_const else (atom, None)
        if l_const is not None:
            return 1 + atom + r_size, None
        if r_const is not None:
            return 1 + atom + l_size, None
        return 3 + 2 * atom + l_size + r_size, None

    return visit(0)[0]


def gplearn_size(program, feature_sizes: Sequence[int]) -> int:
    """Nodes of a gplearn program (``est._program.program``: functions, feature
    indices, constants) read as ``program > 0``."""
    return 2 + sum(int(feature_sizes[node]) if isinstance(node, (int, np.integer)) else 1
                   for node in program)


def tree_front(params: dict, x: np.ndarray, labels: np.ndarray, fit_rows: np.ndarray,
               hold_rows: np.ndarray, feature_sizes: Sequence[int],
               points: int = FRONT_POINTS) -> list[list[float]]:
    """``[size, fit fidelity, held-out fidelity]`` of the trees on the cost-complexity
    pruning path of a tree grown with ``params`` on the fit rows: the smallest
    trees first (those that compare with the engine's programs), a few larger
    ones spread over the rest of the path."""
    from sklearn.tree import DecisionTreeClassifier

    x_fit, y_fit = x[fit_rows], labels[fit_rows]
    path = DecisionTreeClassifier(**params).cost_complexity_pruning_path(x_fit, y_fit)
    alphas = np.unique(path.ccp_alphas)[::-1]  # the largest alpha prunes to the root
    spread = np.linspace(0, len(alphas) - 1, num=max(points // 4, 1)).round().astype(int)
    chosen = sorted(set(range(min(points, len(alphas)))) | set(spread.tolist()))
    front = []
    for i in chosen:
        clf = DecisionTreeClassifier(**params, ccp_alpha=float(alphas[i])).fit(x_fit, y_fit)
        pred = clf.predict(x)
        held = float(np.mean(pred[hold_rows] == labels[hold_rows])) if len(hold_rows) else None
        front.append([tree_size(clf, feature_sizes),
                      float(np.mean(pred[fit_rows] == labels[fit_rows])), held])
    return sorted(front)
