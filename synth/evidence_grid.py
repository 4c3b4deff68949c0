"""Evidence for a labelling program on a grid domain.

Given a program and label tables over the same grid (a network's labels, a
stand-in network's, the ground truth), this module says how well the program
agrees with each, where it disagrees (near the reference's decision boundary,
or in whole rows and columns), which atoms it is made of, and -- given
activations of a network on the grid -- how each atom's truth value is
represented inside it: decodable by a cross-validated linear probe, compared
with a control atom of the same shape on shuffled coordinates, and which
activation units and named directions correlate with it most.

Nothing here knows about a particular network or program: activations are
plain ``(N, D)`` arrays in the grid's C order.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dsl.printing import to_expression
from dsl.program import Apply, Program
from dsl.types import BOOL

#: Comparison primitives: the leaves of a program's boolean structure.
COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})


# -- agreement -------------------------------------------------------------------------

def predictions(program: Program, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """The program's 0/1 labels on ``env``."""
    with np.errstate(all="ignore"):
        return np.asarray(program.evaluate(dict(env))).astype(np.int64)


def agreements(pred: np.ndarray, references: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Fraction of points where ``pred`` equals each reference (all flattened in C order)."""
    pred = np.asarray(pred).ravel()
    out = {}
    for name, ref in references.items():
        ref = np.asarray(ref).ravel()
        if ref.shape != pred.shape:
            raise ValueError(f"reference {name!r} has {ref.size} points, the program "
                             f"was evaluated on {pred.size}")
        out[name] = float((pred == ref.astype(np.int64)).mean())
    return out


def boundary_distance(labels: np.ndarray) -> np.ndarray:
    """Per grid point, the Chebyshev distance to the nearest point of the other label
    (``inf`` everywhere when the grid holds one label)."""
    labels = np.asarray(labels).astype(bool)
    from scipy import ndimage
    if labels.all() or not labels.any():
        return np.full(labels.shape, np.inf)
    out = np.zeros(labels.shape)
    for side in (labels, ~labels):
        # distance from each point of ``side`` to the other side, in grid steps
        dist = ndimage.distance_transform_cdt(side, metric="chessboard")
        out = np.where(side, dist, out)
    return out


def disagreements(pred: np.ndarray, reference: np.ndarray, top: int = 5) -> dict:
    """Where a grid prediction and a reference grid differ.

    ``near_boundary`` is the share of the differing points that lie within
    one (resp. two) grid steps of the reference's decision boundary: errors
    of a program with the right shape but slightly wrong curves sit there;
    ``rows``/``columns`` list the lines (first/second grid index) with the most
    errors and their error rates.
    """
    pred = np.asarray(pred).astype(bool)
    ref = np.asarray(reference).astype(bool)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference {ref.shape}")
    wrong = pred != ref
    out: dict = {"count": int(wrong.sum()), "rate": float(wrong.mean())}
    if wrong.any():
        dist = boundary_distance(ref)
        out["near_boundary"] = {"1": float((dist[wrong] <= 1).mean()),
                                "2": float((dist[wrong] <= 2).mean())}
        out["false_positive"] = int((pred & ~ref).sum())
        out["false_negative"] = int((~pred & ref).sum())
        if wrong.ndim == 2:
            for axis, name in ((1, "rows"), (0, "columns")):
                rate = wrong.mean(axis=axis)
                order = np.argsort(-rate, kind="stable")[:top]
                out[name] = [[int(i), float(rate[i])] for i in order if rate[i] > 0]
    return out


# -- atoms -------------------------------------------------------------------------------

def atoms_of(program: Program) -> list[Program]:
    """The comparisons a program's boolean structure is built from, in order, once each."""
    seen: dict[Program, None] = {}

    def visit(node: Program) -> None:
        if isinstance(node, Apply) and node.primitive.name in COMPARISONS:
            seen.setdefault(node, None)
            return
        for child in node.children:
            if child.type is BOOL or isinstance(child, Apply):
                visit(child)

    visit(program)
    return list(seen)


def atom_truths(program: Program, env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``expression -> truth vector`` for every atom of ``program`` on ``env``."""
    out = {}
    for atom in atoms_of(program):
        with np.errstate(all="ignore"):
            out[to_expression(atom)] = np.asarray(atom.evaluate(dict(env))).astype(bool)
    return out


def shuffled_control(truth: np.ndarray, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """The atom with every grid axis relabelled by a random permutation.

    It keeps the atom's shape statistics (how many rows, columns and bands it
    cuts) but not its alignment with the inputs, so what a probe decodes of it
    is what any predicate of that complexity would give: the chance level a
    real atom must beat.
    """
    rng = np.random.default_rng(seed)
    grid = np.asarray(truth).reshape(tuple(shape))
    for axis, n in enumerate(grid.shape):
        grid = np.take(grid, rng.permutation(n), axis=axis)
    return grid.ravel()


# -- probes --------------------------------------------------------------------------------

def reduce_dims(features: np.ndarray, max_dims: int = 32, seed: int = 0) -> np.ndarray:
    """``features`` standardised and projected on their top ``max_dims`` principal
    components (computed without any labels, over all rows), so that many probes of
    one activation point share one cheap, low-dimensional input."""
    x = np.asarray(features, dtype=np.float64)
    x = x[:, x.std(axis=0) > 0]
    if x.shape[1] == 0:
        return np.zeros((len(x), 0))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    if x.shape[1] <= max_dims:
        return x
    from sklearn.decomposition import PCA
    return PCA(n_components=max_dims, svd_solver="randomized", random_state=seed).fit_transform(x)


def probe(features: np.ndarray, truth: np.ndarray, *, folds: int = 3, max_rows: int = 3000,
          max_dims: int = 32, seed: int = 0) -> float | None:
    """Cross-validated accuracy of a logistic-regression probe for ``truth`` from ``features``.

    Rows are a random sample of at most ``max_rows``; the probe is scored on
    held-out folds of it.  Features wider than ``max_dims`` are first reduced
    (:func:`reduce_dims`; pass reduced features to skip that).  ``None`` when the
    truth is (nearly) constant on the sample.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.asarray(features, dtype=np.float64)
    if x.shape[1] > max_dims:
        x = reduce_dims(x, max_dims, seed)
    y = np.asarray(truth).astype(int)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(y))[:max_rows]
    x, y = x[rows], y[rows]
    if np.bincount(y, minlength=2).min() < folds:
        return None
    if x.shape[1] == 0 or not (x.std(axis=0) > 0).any():
        return float(max(y.mean(), 1 - y.mean()))
    model = LogisticRegression(max_iter=300, C=1.0)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, x, y, cv=cv).mean())


def top_correlations(values: np.ndarray, truth: np.ndarray, names: Sequence[str] | None = None,
                     top: int = 3) -> list[list]:
    """The ``top`` columns of ``values`` (N, D) most correlated with ``truth``: ``[name, r]``."""
    x = np.asarray(values, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if t.std() == 0:
        return []
    xc = x - x.mean(axis=0)
    sd = xc.std(axis=0)
    r = np.where(sd > 0, (xc * (t - t.mean())[:, None]).mean(axis=0) / (sd * t.std() + 1e-300), 0.0)
    order = np.argsort(-np.abs(r), kind="stable")[:top]
    names = list(names) if names is not None else [str(i) for i in range(x.shape[1])]
    return [[names[i], round(float(r[i]), 4)] for i in order]


def atom_representation(truths: Mapping[str, np.ndarray], points: Mapping[str, np.ndarray],
                        shape: Sequence[int], *, units: Mapping[str, tuple[np.ndarray, list[str]]]
                        = (), folds: int = 3, max_rows: int = 3000, max_dims: int = 32,
                        seed: int = 0) -> dict:
    """For each atom: probe accuracy from each activation point (with its majority
    baseline and the shuffled control's accuracy), and the most correlated units.

    ``points`` maps a point's name to ``(N, D)`` activations; ``units`` maps a
    name to ``(values (N, D), column names)`` searched for correlates (single
    neurons, named directions) over all points.  Probes see one random sample of
    at most ``max_rows`` points, each point's activations there reduced once to at
    most ``max_dims`` principal components (:func:`reduce_dims`, label-free).
    """
    n = int(np.prod(shape))
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:max_rows])
    reduced = {name: reduce_dims(np.asarray(acts)[rows], max_dims, seed)
               for name, acts in points.items()}
    out = {}
    for expr, truth in truths.items():
        truth = np.asarray(truth).astype(bool).ravel()
        control = shuffled_control(truth, shape, seed)[rows]
        base = float(max(truth.mean(), 1 - truth.mean()))
        decoded = {}
        for name, acts in reduced.items():
            acc = probe(acts, truth[rows], folds=folds, max_rows=max_rows, seed=seed)
            ctrl = probe(acts, control, folds=folds, max_rows=max_rows, seed=seed)
            decoded[name] = {"accuracy": acc, "control": ctrl}
        entry = {"positive_rate": float(truth.mean()), "majority": base, "probes": decoded}
        if decoded:
            best = max(decoded, key=lambda k: -1 if decoded[k]["accuracy"] is None
                       else decoded[k]["accuracy"])
            entry["best_point"] = best
        entry["correlates"] = {name: top_correlations(vals, truth, cols)
                               for name, (vals, cols) in dict(units).items()}
        out[expr] = entry
    return out
