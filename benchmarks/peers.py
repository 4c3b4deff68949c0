"""Peer methods run on the same tasks, labels, split and time budget as the engine.

* ``tree-xy`` -- a depth-limited decision tree (scikit-learn) on (x, y); the
  depth is the smallest within 0.1% of the best 3-fold cross-validated
  accuracy on the fit rows, up to depth 12.
* ``tree-features`` -- the same on a small feature set like the engine's
  smallest features: x, y, x+y, x-y, x*y, x*x, y*y, x*x+y*y, abs(x-y),
  min, max, sqrt(x), sqrt(y), and x%k, y%k, (x+y)%k, (x*y)%k for k in 2..13.
* ``gplearn`` -- gplearn's ``SymbolicClassifier`` (genetic programming over
  add sub mul div sqrt abs max min neg), grown one generation at a time until
  the time budget is spent.
* ``operon`` -- pyoperon's ``SymbolicRegressor`` fitted to the 0/1 labels and
  cut at 0.5, with ``max_time`` set to the budget.

Every peer fits the rows the engine fits (the same seeded 80/20 split) and is
scored like it: fidelity to the oracle on the whole domain, agreement with the
hidden program, exact recovery (equal to the hidden program on every point),
size (nodes of the program written in the engine's language, see
:mod:`benchmarks.peer_sizes`), wall time; a tree also records the front of
the smaller trees on its pruning path.  gplearn and pyoperon come with the optional
extra ``peers`` (``pip install -e .[peers]``); a peer whose package is missing
reports an error instead of a result.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmarks.peer_sizes import gplearn_size, tree_front, tree_size

PEERS = ("tree-xy", "tree-features", "gplearn", "operon")

_MODULI = range(2, 14)


def feature_set() -> list[str]:
    """The small feature set of ``tree-features``, as expressions over x and y."""
    base = ["x", "y", "x + y", "x - y", "x * y", "x * x", "y * y", "x * x + y * y",
            "abs(x - y)", "min(x, y)", "max(x, y)", "sqrt(x)", "sqrt(y)"]
    mods = [f"{e} % {k}" for k in _MODULI for e in ("x", "y", "(x + y)", "(x * y)")]
    return base + mods


@dataclass(frozen=True)
class PeerFit:
    predictions: np.ndarray  # 0/1 on every row of the domain
    size: int  # nodes of the program in the engine's language (benchmarks.peer_sizes)
    program: str
    front: tuple = ()  # [size, fit fidelity, held-out fidelity] of its smaller programs


def split_rows(n: int, seed: int, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows): the split :class:`synth.search.Synthesizer` draws."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_hold = int(round(holdout * n)) if n > 10 else 0
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


def run_peer(name: str, env: Mapping[str, np.ndarray], labels: np.ndarray,
             truth: np.ndarray, *, time_limit: float, seed: int,
             holdout: float = 0.2) -> dict:
    """Fit peer ``name`` to ``labels`` and score it; a record like the engine's."""
    if name not in _FITTERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    labels = np.asarray(labels).astype(np.int64)
    fit_rows, hold_rows = split_rows(len(labels), seed, holdout)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = _FITTERS[name](env, labels, fit_rows, time_limit, seed)
    except ImportError as err:
        return {"method": name, "error": f"{name} is not installed ({err}); "
                                         f"pip install -e .[peers]"}
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    pred = np.asarray(result.predictions).astype(np.int64)
    agreement = float(np.mean(pred == truth))
    fit_fidelity = float(np.mean(pred[fit_rows] == labels[fit_rows]))
    holdout = float(np.mean(pred[hold_rows] == labels[hold_rows])) if len(hold_rows) else None
    return {"method": name, "program": result.program, "size": int(result.size),
            "fidelity": float(np.mean(pred == labels)), "fit_fidelity": fit_fidelity,
            "holdout_fidelity": holdout, "holdout_rows": len(hold_rows),
            "agreement": agreement, "exact": agreement == 1.0,
            "seconds": seconds, "cpu_seconds": cpu, "programs_evaluated": None,
            "programs_per_second": None,
            "front": [list(p) for p in result.front],
            "error": None}


# ---------------------------------------------------------------------------


def _matrix(env: Mapping[str, np.ndarray], expressions: list[str]) -> np.ndarray:
    from benchmarks.programs import evaluate_values, parse_hidden

    names = tuple(env)
    return np.stack([evaluate_values(parse_hidden(e, names), env).astype(float)
                     for e in expressions], axis=1)


def _tree(columns: Callable[[Mapping[str, np.ndarray]], tuple[np.ndarray, list[str]]]):
    def fit(env, labels, fit_rows, time_limit, seed) -> PeerFit:
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.tree import DecisionTreeClassifier

        X, names = columns(env)
        sizes = _feature_sizes(names, tuple(env))
        deadline = time.perf_counter() + time_limit
        # shuffled folds: rows come in grid order, and contiguous folds would be slabs
        # of x, scoring extrapolation rather than fit
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        scores: dict[int, float] = {}
        for depth in range(1, 13):
            clf = DecisionTreeClassifier(max_depth=depth, random_state=seed)
            scores[depth] = float(np.mean(cross_val_score(clf, X[fit_rows], labels[fit_rows],
                                                          cv=folds)))
            if scores[depth] == 1.0 or time.perf_counter() > deadline:
                break
        best = max(scores.values())
        depth = min(d for d, s in scores.items() if s >= best - 1e-3)
        clf = DecisionTreeClassifier(max_depth=depth, random_state=seed)
        clf.fit(X[fit_rows], labels[fit_rows])
        hold_rows = np.setdiff1d(np.arange(len(labels)), fit_rows)
        front = tree_front({"random_state": seed, "max_depth": depth}, X, labels, fit_rows,
                           hold_rows, sizes)
        return PeerFit(clf.predict(X), tree_size(clf, sizes), _tree_text(clf, names),
                       tuple(front))
    return fit


def _feature_sizes(expressions: list[str], inputs: tuple[str, ...]) -> list[int]:
    """Each feature expression's size as a program of the engine's language."""
    from dsl.parse import parse
    from dsl.types import INT

    return [parse(e, {name: INT for name in inputs}).size for e in expressions]


def _tree_text(clf, names: list[str]) -> str:
    """A small tree as a nested conditional expression; a big one as its shape."""
    tree = clf.tree_
    if tree.node_count > 15:
        return f"tree(depth={clf.get_depth()}, leaves={clf.get_n_leaves()})"

    def text(node: int) -> str:
        if tree.children_left[node] < 0:
            return str(int(clf.classes_[int(np.argmax(tree.value[node][0]))]))
        left, right = text(tree.children_left[node]), text(tree.children_right[node])
        cond = f"{names[tree.feature[node]]} <= {tree.threshold[node]:g}"
        if (left, right) == ("1", "0"):
            return f"({cond})"
        if (left, right) == ("0", "1"):
            return f"({names[tree.feature[node]]} > {tree.threshold[node]:g})"
        return f"({left} if {cond} else {right})"

    return text(0)


def _xy_columns(env):
    names = list(env)
    return np.stack([np.asarray(env[n], dtype=float) for n in names], axis=1), names


def _feature_columns(env):
    exprs = feature_set() if set(env) == {"x", "y"} else list(env)
    return _matrix(env, exprs), exprs


def _fit_gplearn(env, labels, fit_rows, time_limit, seed) -> PeerFit:
    from gplearn.genetic import SymbolicClassifier

    X, names = _xy_columns(env)
    est = SymbolicClassifier(population_size=1000, generations=1, random_state=seed,
                             function_set=("add", "sub", "mul", "div", "sqrt", "abs", "max",
                                           "min", "neg"),
                             parsimony_coefficient=0.001, const_range=(-10.0, 10.0),
                             feature_names=names, warm_start=True, n_jobs=1)
    grow_gplearn(est, X[fit_rows], labels[fit_rows], time_limit, max_generations=500)
    return PeerFit(est.predict(X), gplearn_size(est._program.program, [1] * len(names)),
                   str(est._program))


def grow_gplearn(est, x: np.ndarray, y: np.ndarray, time_limit: float,
                 max_generations: int) -> int:
    """Fit a warm-started gplearn estimator one generation at a time while the
    next generation still fits in ``time_limit``; returns the generations run."""
    deadline = time.perf_counter() + time_limit
    generation, per_generation = 0, 0.0
    while generation < max_generations:
        began = time.perf_counter()
        if generation and began + per_generation > deadline:
            break
        generation += 1
        est.set_params(generations=generation)
        est.fit(x, y)
        per_generation = max(per_generation, time.perf_counter() - began)
        if est._program.raw_fitness_ == 0:
            break
    return generation


def _fit_operon(env, labels, fit_rows, time_limit, seed) -> PeerFit:
    from pyoperon.sklearn import SymbolicRegressor

    X, names = _xy_columns(env)
    est = SymbolicRegressor(allowed_symbols="add,sub,mul,div,sqrt,abs,constant,variable",
                            max_time=max(1, int(time_limit)), generations=10**6,
                            max_evaluations=10**12, random_state=seed, n_threads=1)
    est.fit(X[fit_rows], labels[fit_rows].astype(float))
    pred = (est.predict(X) > 0.5).astype(np.int64)
    # + 2: the comparison with 0.5 that makes the regression a label
    return PeerFit(pred, int(est.model_.Length) + 2, est.get_model_string(est.model_, 3, names))


_FITTERS = {"tree-xy": _tree(_xy_columns), "tree-features": _tree(_feature_columns),
            "gplearn": _fit_gplearn, "operon": _fit_operon}
