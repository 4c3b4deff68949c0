"""Evidence that a program's features are computed inside the network.

A recovered program agrees with the network's labels; that alone does not
show the network *uses* the program's features.  Decodability is a first
check: if a feature is linearly readable from a layer's activations on
images the decoder never saw, the network carries it there.

For every scalar feature of the program (a subprogram reading the inputs,
such as ``dot(image, T_hint)``) and every layer, a ridge regression
(``RidgeCV``: the penalty chosen by efficient leave-one-out
cross-validation) is fitted on part of the rows and scored by R^2 on the
rest.  Boolean subprograms (the program itself, its atoms) get a ridge
classifier (regression on +-1, the sign decides) scored by held-out accuracy
beside the majority-class rate.  The same decoders on a control feature -- the
feature's values shuffled across rows -- give the chance level.

Works with any oracle whose ``features(inputs, names)`` returns (N, D)
activations (a :class:`~oracles.torch_oracle.TorchOracle`); nothing here is
specific to images.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dsl.program import Apply, Const, Program, Var
from dsl.types import BOOL, INT, REAL

#: Module types whose output repeats their input's information (skipped by default).
_PASSTHROUGH = ("Dropout", "Flatten", "Identity")


def default_layers(oracle) -> list[str]:
    """Hook points worth decoding from: leaf modules that compute something
    (not dropout, flatten or identity), in registration order (the last
    one's output is the logits of a sequential network); ``logits`` when
    the oracle exposes no module."""
    module = getattr(oracle, "module", None)
    if module is None:
        return [n for n in getattr(oracle, "feature_names", ()) if n]
    names = []
    for name, sub in module.named_modules():
        if not name or any(True for _ in sub.children()):
            continue
        if type(sub).__name__ in _PASSTHROUGH:
            continue
        names.append(name)
    return names or ["logits"]


def program_features(program: Program) -> list[Program]:
    """The program's scalar features: maximal subprograms that read the inputs
    and compute a number (``dot(image, T)``, ``ink(image)``, ``x * y``, or a
    numeric input compared directly, as ``x`` in ``x > 50``), each once, in
    printing order.  Constants and comparisons are not features."""
    out: list[Program] = []

    def visit(node: Program) -> None:
        if isinstance(node, Const) or not node.inputs:
            return
        if isinstance(node, Var) and node.type not in (INT, REAL):
            return
        if node.type is not BOOL:
            if node not in out:
                out.append(node)
            return
        if isinstance(node, Apply):
            for arg in node.args:
                visit(arg)

    visit(program)
    return out


def program_atoms(program: Program) -> list[Program]:
    """Boolean subprograms right below the top logic (comparisons), each once."""
    out: list[Program] = []

    def visit(node: Program) -> None:
        if not isinstance(node, Apply) or node.type is not BOOL:
            return
        if node.primitive.name in ("and_", "or_", "xor", "not_"):
            for arg in node.args:
                visit(arg)
        elif node not in out:
            out.append(node)

    visit(program)
    return out


def split_rows(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, sorted: a seeded random ``test_fraction`` of ``n`` held out."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def fit_readout(acts: np.ndarray, targets: np.ndarray,
                train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear readouts of every target column from one layer's activations,
    fitted on the ``train`` rows: ``(W (D, T), b (T,))`` in the activations' and
    targets' own units, so that ``acts @ W + b`` predicts the targets.

    One ``RidgeCV`` fit per layer, all targets at once (``alpha_per_target``:
    each target gets the penalty its own leave-one-out error prefers), on
    standardised activations and standardised targets, mapped back to raw
    units.  Constant units (dead ReLUs) get zero weight.
    """
    from sklearn.linear_model import RidgeCV

    a = np.asarray(acts, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    mu, sd = y[train].mean(axis=0), y[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    mean, std = a[train].mean(axis=0), a[train].std(axis=0)
    keep = std > 1e-12
    weights = np.zeros((a.shape[1], y.shape[1]))
    if not keep.any():
        return weights, mu
    model = RidgeCV(alphas=np.logspace(-2, 5, 15), alpha_per_target=True)
    model.fit((a[train][:, keep] - mean[keep]) / std[keep], (y[train] - mu) / sd)
    coef = np.asarray(model.coef_).reshape(y.shape[1], -1).T  # (kept units, T)
    weights[keep] = coef / std[keep, None] * sd
    bias = (np.asarray(model.intercept_).reshape(-1) - (mean[keep] / std[keep]) @ coef) * sd + mu
    return weights, bias


def decode_layer(acts: np.ndarray, targets: np.ndarray, train: np.ndarray,
                 test: np.ndarray) -> np.ndarray:
    """Held-out predictions of every target column from one layer's activations:
    the :func:`fit_readout` of the ``train`` rows applied to the ``test`` rows,
    (len(test), T) in the targets' own units."""
    weights, bias = fit_readout(acts, targets, train)
    return np.asarray(acts, dtype=np.float64)[test] @ weights + bias


@dataclass(frozen=True, eq=False)
class Readout:
    """Where a scalar feature sits in one layer: ``value ~ acts @ weights + bias``.

    ``weights`` is the probe direction (in the layer's flattened activation
    space) that :func:`synth.causal.patch_feature` intervenes along; ``r2`` is
    the readout's R^2 on rows it was not fitted on.  ``encoding`` is the other
    way round: how much each unit moves per unit of the feature (the
    least-squares slope of the unit on the feature), the direction along which
    the layer's activations vary with it."""

    feature: str
    layer: str
    weights: np.ndarray = field(repr=False)
    bias: float
    r2: float
    encoding: np.ndarray = field(repr=False)


def feature_readouts(oracle, inputs: Mapping[str, np.ndarray], features: Sequence[Program],
                     layers: Sequence[str], train: np.ndarray,
                     test: np.ndarray) -> dict[tuple[str, str], Readout]:
    """The :class:`Readout` of every feature from every layer, fitted on the
    ``train`` rows of ``inputs`` and scored on its ``test`` rows, keyed
    ``(str(feature), layer)``."""
    if not features:
        raise ValueError("no features to read out")
    with np.errstate(all="ignore"):
        values = np.stack([np.asarray(f.evaluate(dict(inputs)), dtype=np.float64)
                           for f in features], axis=1)
    values = np.where(np.isfinite(values), values, 0.0)
    centred = values[train] - values[train].mean(axis=0)
    spread = (centred ** 2).sum(axis=0)
    out = {}
    for layer in layers:
        acts = oracle.features(inputs, [layer])[layer]
        weights, bias = fit_readout(acts, values, train)
        pred = acts[test] @ weights + bias
        slopes = (acts[train] - acts[train].mean(axis=0)).T @ centred / np.where(spread > 0,
                                                                                   spread, 1.0)
        for j, f in enumerate(features):
            out[str(f), layer] = Readout(str(f), layer, weights[:, j], float(bias[j]),
                                         _r2(values[test, j], pred[:, j]), slopes[:, j])
    return out


def _r2(truth: np.ndarray, pred: np.ndarray) -> float:
    total = ((truth - truth.mean()) ** 2).sum()
    return float(1.0 - ((truth - pred) ** 2).sum() / total) if total > 0 else 0.0


def decodability(oracle, inputs: Mapping[str, np.ndarray], program: Program, *,
                 layers: Sequence[str] | None = None, features: Sequence[Program] = (),
                 max_rows: int = 1600, test_fraction: float = 0.5, seed: int = 0,
                 control: bool = True) -> dict:
    """How well each feature (and atom) of ``program`` is linearly decodable
    from each layer of ``oracle`` on held-out rows of ``inputs``.

    ``inputs`` should be rows the program's templates and thresholds were not
    fitted on.  ``features`` adds scalar programs to test beside the program's
    own (a baseline such as ``ink(image)``).  Returns a JSON-ready dict::

        {"method": ..., "rows": {"train": n, "test": m}, "layers": [...],
         "features": [{"feature": "dot(image, T_x)", "r2": {layer: r2}}, ...],
         "control": {"feature": ..., "r2": {layer: r2 of a shuffled feature}},
         "atoms": [{"atom": "...", "accuracy": {layer: acc}, "majority": p}, ...]}
    """
    names = list(layers) if layers is not None else default_layers(oracle)
    n = len(next(iter(inputs.values())))
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    env = {k: np.asarray(v)[rows] for k, v in inputs.items()}
    if len(rows) < 10:
        raise ValueError(f"decodability needs at least 10 rows, got {len(rows)}")
    train, test = split_rows(len(rows), test_fraction, seed)
    feats = list(dict.fromkeys([*program_features(program), *features]))
    with np.errstate(all="ignore"):
        values = [np.asarray(f.evaluate(env), dtype=np.float64) for f in feats]
    values = [np.where(np.isfinite(v), v, 0.0) for v in values]
    atoms = [a for a in dict.fromkeys([program, *program_atoms(program)])
             if a.type is BOOL and a.inputs]
    truths = [np.asarray(a.evaluate(env)).astype(bool) for a in atoms]
    columns = list(values)
    if control and values:
        columns.append(rng.permutation(values[0]))
    columns += [np.where(z, 1.0, -1.0) for z in truths]  # a ridge classifier's +-1 targets
    if not columns:
        raise ValueError(f"program {program} reads no input: nothing to decode")
    targets = np.stack(columns, axis=1)
    r2 = {name: [] for name in names}
    acc = {name: [] for name in names}
    k = len(columns) - len(truths)
    for name in names:
        acts = oracle.features(env, [name])[name]
        pred = decode_layer(acts, targets, train, test)
        r2[name] = [_r2(targets[test, j], pred[:, j]) for j in range(k)]
        acc[name] = [float(((pred[:, k + j] > 0) == z[test]).mean())
                     for j, z in enumerate(truths)]
    result = {"method": "linear decoding on held-out rows: RidgeCV (penalty chosen per "
                        "target by leave-one-out CV) on standardised activations, scored by "
                        "R^2 for features and by accuracy (ridge classifier) for boolean atoms",
              "rows": {"train": int(len(train)), "test": int(len(test))},
              "layers": names,
              "features": [{"feature": str(f),
                            "r2": {name: round(r2[name][j], 4) for name in names}}
                           for j, f in enumerate(feats)]}
    if control and values:
        result["control"] = {"feature": f"{feats[0]} shuffled across rows",
                             "r2": {name: round(r2[name][len(feats)], 4) for name in names}}
    result["atoms"] = [{"atom": str(a),
                        "majority": round(float(max(z[test].mean(), 1 - z[test].mean())), 4),
                        "accuracy": {name: round(acc[name][j], 4) for name in names}}
                       for j, (a, z) in enumerate(zip(atoms, truths))]
    return result


def format_decodability(evidence: Mapping) -> str:
    """A table: one row per feature (and the control), one column per layer."""
    layers = list(evidence.get("layers", []))
    rows = [("R^2 (held-out)", *layers)]
    for entry in evidence.get("features", []):
        rows.append((entry["feature"], *(f"{entry['r2'][n]:.3f}" for n in layers)))
    if "control" in evidence:
        rows.append(("control (shuffled)", *(f"{evidence['control']['r2'][n]:.3f}"
                                             for n in layers)))
    for entry in evidence.get("atoms", []):
        label = f"[acc] {entry['atom']} (majority {entry['majority']:.3f})"
        rows.append((label, *(f"{entry['accuracy'][n]:.3f}" for n in layers)))
    first = min(max(len(r[0]) for r in rows), 70)
    widths = [max(len(r[i]) for r in rows) for i in range(1, len(rows[0]))]

    def cut(s: str) -> str:
        return s if len(s) <= first else s[: first - 3] + "..."

    lines = [f"{cut(r[0]):<{first}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths))
             for r in rows]
    return "\n".join(lines)


__all__ = ["default_layers", "program_features", "program_atoms", "split_rows",
           "fit_readout", "decode_layer", "Readout", "feature_readouts", "decodability",
           "format_decodability"]
