"""Reading a grid transformer's internals as functions of its inputs.

A network over pairs ``(x, y)`` of numbers (tokens ``[x, y, =]``) is read
three ways, each giving *tables*: functions of one number or of a pair,
known at every point of the grid.

* **Embedding directions.**  The principal directions of ``W_E`` restricted
  to the number tokens; a direction's score per token is a function of the
  number (:func:`embedding_pcs`), applied to ``x`` or to ``y``.
* **Read directions.**  What the MLP reads about ``x`` and about ``y``: every
  neuron's pre-activation at the last position split additively into
  ``a_i(x) + b_i(y) + c_i`` (row and column means of its grid table), and the
  principal directions of the ``a_i`` (resp. ``b_i``) across the neurons that
  move the logit difference most (:func:`read_pcs`).
* **Neurons.**  The pre-activation of the neurons with the largest attribution
  to the logit difference (spread over the grid of ``post * (W_out . (W_U[:,1]
  - W_U[:,0]))``), as tables of ``(x, y)`` (:func:`neuron_tables`).

Each table becomes a DSL primitive (:func:`lookup_primitive`) whose vectorised
implementation is the table and whose printed Python is a self-contained
function with the table embedded as a literal; values are rounded to a few
significant digits first, so the printed function and the vectorised one agree
exactly.  The primitives are registered with ``search=False``: they enter a
search only as the leaves :func:`feature_leaves` builds (``Synthesizer(features=...)``),
never silently in other searches of the same process.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dsl.primitives import REGISTRY, Primitive
from dsl.program import Apply, Program, Var
from dsl.types import INT, REAL
from oracles.transformer import HookedTransformer, encode_pairs
from oracles.torch_oracle import TorchOracle

#: Hook points probed for how an atom is represented, with the position read:
#: ``0``/``1`` are the ``x``/``y`` tokens, ``-1`` the ``=`` token the logits are read at.
#: (``resid_mid`` there is ``attn_out`` plus a constant, so it is left out.)
PROBE_POINTS: tuple[tuple[str, str, int], ...] = (
    ("embed[x]", "hook_embed", 0),
    ("embed[y]", "hook_embed", 1),
    ("attn_out", "blocks.0.hook_attn_out", -1),
    ("mlp_pre", "blocks.0.mlp.hook_pre", -1),
    ("mlp_post", "blocks.0.mlp.hook_post", -1),
    ("resid_post", "blocks.0.hook_resid_post", -1),
)


@dataclass(frozen=True)
class Table:
    """A named function known on a whole grid: shape ``(p,)`` (one number) or ``(p, p)``.

    ``share`` is what the table accounts for (explained variance of its
    principal direction, or the neuron's share of the attribution).  A
    one-number table applies to the inputs named in ``inputs`` (``None``: to
    every input, as the shared token embedding does).
    """

    name: str
    values: np.ndarray = field(repr=False)
    description: str
    share: float = 0.0
    inputs: tuple[str, ...] | None = None

    @property
    def arity(self) -> int:
        return self.values.ndim


# -- running the network ---------------------------------------------------------

def grid_env(p: int) -> dict[str, np.ndarray]:
    """All pairs ``(x, y)`` of ``0..p-1`` in C order (row ``i`` is ``(i // p, i % p)``)."""
    xs, ys = np.meshgrid(np.arange(p, dtype=np.int64), np.arange(p, dtype=np.int64),
                         indexing="ij")
    return {"x": xs.ravel(), "y": ys.ravel()}


def transformer_oracle(model: HookedTransformer, batch_size: int = 4096) -> TorchOracle:
    """A :class:`TorchOracle` over pairs for ``model`` (hooks readable by name)."""
    p = model.cfg.equals_token
    return TorchOracle(model, lambda env: encode_pairs(env, p=p), ("x", "y"),
                       batch_size=batch_size)


def activations(oracle: TorchOracle, env: Mapping[str, np.ndarray],
                hooks: Sequence[str]) -> dict[str, np.ndarray]:
    """Activations at ``hooks`` reshaped to ``(N, pos, ...)`` as the model defines them.

    :meth:`TorchOracle.features` flattens every hook to ``(N, D)``; here the
    token axis comes back, so callers pick the position they read.
    """
    model = oracle.module
    n = len(next(iter(env.values())))
    shapes = model.cfg.hook_shapes(n)
    flat = oracle.features(env, list(hooks))
    return {name: value.reshape(shapes[name]) if name in shapes else value
            for name, value in flat.items()}


def logit_direction(model: HookedTransformer) -> np.ndarray:
    """``W_U[:, 1] - W_U[:, 0]``: the residual direction of the logit difference."""
    w_u = model.unembed.W_U.detach().double().numpy()
    if w_u.shape[1] < 2:
        return w_u[:, 0]
    return w_u[:, 1] - w_u[:, 0]


# -- embedding and read directions --------------------------------------------------

def _orient(scores: np.ndarray) -> np.ndarray:
    """Fix a principal score's sign: rising with the number on balance, else with its
    largest entry positive."""
    n = np.arange(len(scores))
    r = np.corrcoef(scores, n)[0, 1] if scores.std() > 0 else 0.0
    if abs(r) > 1e-6:
        return scores if r > 0 else -scores
    return scores if scores[np.argmax(np.abs(scores))] >= 0 else -scores


def principal_scores(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the rows of ``matrix`` on its top ``k`` principal directions, and their
    shares of the variance."""
    centred = matrix - matrix.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(k, len(s))
    total = float((s**2).sum()) or 1.0
    if not k:
        return np.zeros((0, len(matrix))), np.zeros(0)
    scores = np.stack([_orient(u[:, i] * s[i]) for i in range(k)])
    return scores, (s[:k] ** 2) / total


def embedding_pcs(model: HookedTransformer, k: int = 4) -> list[Table]:
    """``embed_pc{i}``: the number tokens' scores on the top principal directions of ``W_E``."""
    p = model.cfg.equals_token
    w_e = model.embed.W_E.detach().double().numpy()[:, :p].T  # (p, d_model)
    scores, shares = principal_scores(w_e, k)
    return [Table(f"embed_pc{i}", scores[i], f"score of each number token on principal "
                  f"direction {i} of the token embedding ({shares[i]:.1%} of its variance)",
                  float(shares[i])) for i in range(len(scores))]


def neuron_attribution(model: HookedTransformer, post: np.ndarray) -> np.ndarray:
    """Per neuron, the spread (standard deviation over the inputs) of its direct
    contribution ``post_i * (W_out[:, i] . logit direction)`` to the logit difference.

    ``post`` is the MLP output activation at the last position, ``(N, d_mlp)``.
    A neuron that is constant over the grid acts as a bias and scores zero.
    """
    w_out = model.blocks[-1].mlp.W_out.detach().double().numpy()  # (d_model, d_mlp)
    direct = logit_direction(model) @ w_out  # (d_mlp,)
    return (post * direct).std(axis=0)


@dataclass(frozen=True)
class Internals:
    """Everything read from one network over its whole grid."""

    p: int
    pre: np.ndarray = field(repr=False)  # (p, p, d_mlp) MLP pre-activation, last position
    attribution: np.ndarray = field(repr=False)  # (d_mlp,)
    top_neurons: tuple[int, ...]
    embedding: list[Table]
    reads: list[Table]
    neurons: list[Table]
    additive_r2: float  # how much of the top neurons' variance a_i(x) + b_i(y) explains

    def tables(self) -> list[Table]:
        return [*self.embedding, *self.reads, *self.neurons]

    def summary(self) -> dict:
        total = float(self.attribution.sum()) or 1.0
        return {"top_neurons": [{"neuron": int(i), "attribution": float(self.attribution[i]),
                                 "share": float(self.attribution[i] / total)}
                                for i in self.top_neurons],
                "additive_r2": self.additive_r2,
                "tables": [{"name": t.name, "arity": t.arity, "share": t.share,
                            "description": t.description} for t in self.tables()]}


def read_internals(model: HookedTransformer, *, n_embedding: int = 4, n_reads: int = 3,
                   n_neurons: int = 8, read_neurons: int = 64,
                   oracle: TorchOracle | None = None) -> Internals:
    """Embedding directions, read directions and top-neuron tables of ``model`` (see module doc)."""
    p = model.cfg.equals_token
    oracle = oracle or transformer_oracle(model)
    env = grid_env(p)
    acts = activations(oracle, env, ["blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"])
    pre = acts["blocks.0.mlp.hook_pre"][:, -1]
    post = acts["blocks.0.mlp.hook_post"][:, -1]
    attribution = neuron_attribution(model, post)
    order = np.argsort(-attribution, kind="stable")
    total = float(attribution.sum()) or 1.0
    grid = pre.reshape(p, p, -1)

    # additive split of the most important neurons, weighted by their effect on the output
    chosen = order[:max(1, min(read_neurons, len(order)))]
    tables = grid[:, :, chosen]
    mean = tables.mean(axis=(0, 1))
    a = tables.mean(axis=1) - mean  # (p, k): what neuron i reads from x
    b = tables.mean(axis=0) - mean  # (p, k): ... from y
    additive = a[:, None, :] + b[None, :, :] + mean
    var = ((tables - mean) ** 2).sum()
    r2 = float(1 - ((tables - additive) ** 2).sum() / var) if var > 0 else 1.0
    w_out = model.blocks[-1].mlp.W_out.detach().double().numpy()
    weight = np.abs(logit_direction(model) @ w_out)[chosen]
    reads = []
    for name, part in (("x", a), ("y", b)):
        scores, shares = principal_scores(part * weight, n_reads)
        reads += [Table(f"read{name}_pc{i}", scores[i],
                        f"principal direction {i} of what the top {len(chosen)} MLP neurons "
                        f"read from {name} (additive part of their pre-activation, weighted by "
                        f"their effect on the logit difference; {shares[i]:.1%} of its "
                        f"variance)", float(shares[i]), (name,)) for i in range(len(scores))]

    neurons = [Table(f"neuron{i}", grid[:, :, i],
                     f"pre-activation of MLP neuron {i} at the last position "
                     f"({attribution[i] / total:.1%} of the attribution to the logit "
                     f"difference)", float(attribution[i] / total))
               for i in order[:n_neurons]]
    return Internals(p, grid, attribution, tuple(int(i) for i in order[:n_neurons]),
                     embedding_pcs(model, n_embedding), reads, neurons, r2)


# -- tables as primitives ---------------------------------------------------------------

def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits, each exactly its printed decimal."""
    flat = [float(f"{float(v):.{digits}g}") for v in np.asarray(values, dtype=np.float64).ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(np.shape(values))


def _literal(values: np.ndarray) -> str:
    if values.ndim == 1:
        return "(" + ", ".join(repr(float(v)) for v in values) + ",)"
    return "(" + ", ".join(_literal(row) for row in values) + ",)"


def lookup_primitive(name: str, values: np.ndarray, digits: int = 4,
                     register: bool = True) -> Primitive:
    """A primitive computing the table ``values`` (shape ``(p,)`` or ``(p, p)``) on ints.

    Total: arguments outside ``0..p-1`` give ``0.0``.  The printed helper is a
    plain function with the (rounded) table embedded as a tuple literal.  When
    ``register`` is set it replaces any primitive of that name in the registry
    (so a program parsed later finds it); it is never offered to searches by
    itself (``search=False``).
    """
    table = round_significant(values, digits)
    if table.ndim not in (1, 2) or not np.isfinite(table).all():
        raise ValueError(f"lookup table {name!r} must be finite, of rank 1 or 2; "
                         f"got shape {table.shape}")
    shape = table.shape
    args = ("n",) if table.ndim == 1 else ("x", "y")
    bounds = " and ".join(f"0 <= {a} < {s}" for a, s in zip(args, shape))
    index = "".join(f"[{a}]" for a in args)
    helper = (f"def {name}({', '.join(args)}):\n"
              f"    return {_literal(table)}{index} if {bounds} else 0.0")

    def impl(*arrays):
        arrays = np.broadcast_arrays(*(np.asarray(a) for a in arrays))
        ok = np.ones(arrays[0].shape, dtype=bool)
        idx = []
        for a, s in zip(arrays, shape):
            inside = (a >= 0) & (a < s) & (a == np.floor(a))  # enumeration holds ints as floats
            ok &= inside
            idx.append(np.where(inside, a, 0).astype(np.int64))
        return np.where(ok, table[tuple(idx)], 0.0)

    prim = Primitive(name=name, arg_types=(INT,) * table.ndim, ret_type=REAL, impl=impl,
                     call=name, helper=helper, search=False)
    if register:
        REGISTRY.register(prim, replace=True)
    return prim


def feature_leaves(tables: Sequence[Table], inputs: Sequence[str] = ("x", "y"),
                   digits: int = 4) -> list[Program]:
    """Leaves for ``Synthesizer(features=...)``: each one-number table applied to the
    inputs it is for (every input unless it names some), each pair table to ``inputs``
    in order."""
    out: list[Program] = []
    for t in tables:
        prim = lookup_primitive(t.name, t.values, digits)
        if t.arity == 1:
            out += [Apply(prim, (Var(v, INT),)) for v in inputs
                    if t.inputs is None or v in t.inputs]
        else:
            out.append(Apply(prim, tuple(Var(v, INT) for v in inputs[:2])))
    return out


def uses_lookup(program: Program) -> list[str]:
    """Names of the lookup-table primitives (``search=False`` extensions) ``program`` calls."""
    names = {node.primitive.name for node in program.walk()
             if isinstance(node, Apply) and node.primitive.helper is not None
             and not node.primitive.search}
    return sorted(names)


# -- how a predicate is represented ----------------------------------------------------

def probe_activations(oracle: TorchOracle, env: Mapping[str, np.ndarray],
                      points: Sequence[tuple[str, str, int]] = PROBE_POINTS
                      ) -> dict[str, np.ndarray]:
    """``label -> (N, D)`` activations at the probe points (one position each)."""
    hooks = sorted({hook for _, hook, _ in points})
    acts = activations(oracle, env, hooks)
    return {label: acts[hook][:, pos].reshape(len(acts[hook]), -1)
            for label, hook, pos in points}
