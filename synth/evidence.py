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

import numpy as np

from dsl.program import Apply, Const, Program, Var
from dsl.types import BOOL

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
    and compute a number (``dot(image, T)``, ``ink(image)``), each once, in
    printing order.  Constants and comparisons are not features."""
    out: list[Program] = []

    def visit(node: Program) -> None:
        if isinstance(node, (Const, Var)) or not node.inputs:
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


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    keep = std > 1e-12  # constant units (dead ReLUs) carry nothing
    std = np.where(keep, std, 1.0)
    return ((train - mean) / std)[:, keep], ((test - mean) / std)[:, keep]


def decode_layer(acts: np.ndarray, targets: np.ndarray, train: np.ndarray,
                 test: np.ndarray) -> np.ndarray:
    """Held-out predictions of every target column from one layer's activations.

    One ``RidgeCV`` fit per layer, all targets at once (``alpha_per_target``:
    each target gets the penalty its own leave-one-out error prefers), on
    standardised activations and standardised targets.  Returns the
    predictions on the ``test`` rows in the targets' own units, (len(test), T).
    """
    from sklearn.linear_model import RidgeCV

    a_train, a_test = _standardise(acts[train], acts[test])
    y = np.asarray(targets, dtype=np.float64)
    mu, sd = y[train].mean(axis=0), y[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    if a_train.shape[1] == 0:
        return np.broadcast_to(mu, (len(test), y.shape[1])).copy()
    model = RidgeCV(alphas=np.logspace(-2, 5, 15), alpha_per_target=True)
    model.fit(a_train, (y[train] - mu) / sd)
    return model.predict(a_test).reshape(len(test), -1) * sd + mu


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
    train, test = _split(len(rows), test_fraction, seed)
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


__all__ = ["default_layers", "program_features", "program_atoms", "decode_layer",
           "decodability", "format_decodability"]
