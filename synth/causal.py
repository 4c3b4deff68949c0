"""Causal tests: does the network change its answer where the program says it should?

Agreement on the queries, and a feature's decodability from a layer, are
correlations.  Here inputs are *edited* so that one atom of the program
changes its truth, the network is asked about the edited inputs, and the
*counterfactual fidelity* is the share of edits on which the network's label
is the program's label on the edited input.  Every test has a control -- an
edit of the same size in a random direction -- so the figure means
something: a network whose label changes under any edit of that size would
seem to follow any program.

* **grids** (:func:`counterfactual_grid`): for each atom and each input it
  reads, points whose atom flips within a few steps along that input are
  moved by the smallest such step (staying inside the domain); the control
  moves the same points as far along a random input and direction.
* **images** (:func:`counterfactual_images`): each image moves along the
  atom's template (``clip(image + t * T, 0, 1)``, or along the atom's
  gradient at the mean image when it reads no single template: ink in a
  region, for instance), by the smallest ``t`` that carries the atom's two
  sides ``margin`` standard deviations past each other; the control adds a
  random direction changing the image by the same L2 norm.
* **patching** (:func:`patching`, :func:`patch_feature`): a feature's linear
  probe direction in a layer (:func:`synth.evidence.feature_readouts`) is
  patched from input B into input A by a forward hook (and, beside it, A's
  activations are shifted along the feature's encoding direction by the
  feature's change from A to B), and the network's label is compared with the
  program evaluated on A with that feature set to its value on B; the control
  shifts the activations by the same norm in a random direction.

Queries go to any oracle with ``labels(env)``; patching needs a
:class:`~oracles.torch_oracle.TorchOracle` (or any oracle with ``module``,
``features`` and ``labels``).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from dsl.domains import GridDomain
from dsl.images import Template
from dsl.primitives import ORDERED
from dsl.printing import to_expression
from dsl.program import Apply, Program
from synth.evidence import default_layers, feature_readouts, program_features, split_rows
from synth.evidence_grid import atoms_of
from synth.report import encode_image

# -- outcomes --------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """Counts of what the network and the program say about edited inputs,
    beside what they said about the originals."""

    n: int  # edits
    agree: int  # network label == program label on the edited input
    network_changed: int  # network label differs from its label on the original
    program_changed: int
    followed: int  # the program's label changed and the network's became it

    @classmethod
    def of(cls, net_before, net_after, prog_before, prog_after) -> Outcome:
        nb, na, pb, pa = (np.asarray(v).astype(np.int64).ravel()
                          for v in (net_before, net_after, prog_before, prog_after))
        if not len(nb) == len(na) == len(pb) == len(pa):
            raise ValueError("network and program labels before and after an edit must "
                             "have one entry per edit")
        changed = pb != pa
        return cls(len(na), int((na == pa).sum()), int((nb != na).sum()), int(changed.sum()),
                   int((changed & (na == pa)).sum()))

    @classmethod
    def pooled(cls, outcomes: Sequence[Outcome]) -> Outcome:
        """The counts of several tests added up."""
        return cls(*(sum(getattr(o, k) for o in outcomes)
                     for k in ("n", "agree", "network_changed", "program_changed", "followed")))

    @property
    def fidelity(self) -> float | None:
        """Counterfactual fidelity: the share of edits where network and program agree."""
        return self.agree / self.n if self.n else None

    def to_json(self) -> dict:
        def rate(k: int, n: int) -> float | None:
            return round(k / n, 4) if n else None
        return {"n": self.n, "fidelity": rate(self.agree, self.n),
                "network_changes": rate(self.network_changed, self.n),
                "program_changes": rate(self.program_changed, self.n),
                "followed": rate(self.followed, self.program_changed)}


@dataclass(frozen=True)
class CausalTest:
    """One intervention on one atom or feature, with its random control."""

    target: str  # the atom (or feature) the edit is aimed at
    intervention: str  # what was done: "move x", "along T_a", "probe at fc1"
    edit: Outcome
    control: Outcome  # the same size of edit in a random direction
    edit_size: float  # mean size of an edit: grid steps, or the L2 norm of an image change
    detail: dict = field(default_factory=dict, compare=False)  # JSON-ready extras

    def to_json(self) -> dict:
        return {"target": self.target, "intervention": self.intervention, **self.edit.to_json(),
                "control": self.control.to_json(), "edit_size": round(self.edit_size, 4),
                **self.detail}


@dataclass(frozen=True)
class CausalReport:
    """The tests of one kind of intervention on one network."""

    kind: str  # "grid moves", "image edits" or "patching"
    network: str  # which network answered
    method: str
    tests: tuple[CausalTest, ...]
    examples: tuple[dict, ...] = ()  # JSON-ready edited inputs (images)

    @property
    def edit(self) -> Outcome:
        return Outcome.pooled([t.edit for t in self.tests])

    @property
    def control(self) -> Outcome:
        return Outcome.pooled([t.control for t in self.tests])

    @property
    def fidelity(self) -> float | None:
        """Counterfactual fidelity over every test (weighted by edits)."""
        return self.edit.fidelity

    def to_json(self) -> dict:
        return {"kind": self.kind, "network": self.network, "method": self.method,
                "counterfactual_fidelity": _round(self.fidelity), "edits": self.edit.to_json(),
                "control": self.control.to_json(), "tests": [t.to_json() for t in self.tests],
                "examples": list(self.examples)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _labels(oracle, envs: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
    """The oracle's labels on several query batches, asked in one query."""
    names = list(envs[0])
    joined = {k: np.concatenate([np.asarray(e[k]) for e in envs]) for k in names}
    labels = np.asarray(oracle.labels(joined)).astype(np.int64)
    cuts = np.cumsum([len(np.asarray(e[names[0]])) for e in envs])[:-1]
    return np.split(labels, cuts)


def _predict(program: Program, env: Mapping[str, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(program.evaluate(dict(env))).astype(np.int64)


# -- grids -----------------------------------------------------------------------------

def _moved(env: Mapping[str, np.ndarray], name: str, step: np.ndarray) -> dict:
    out = dict(env)
    out[name] = np.asarray(env[name]) + step
    return out


def smallest_flips(atom: Program, env: Mapping[str, np.ndarray], name: str, side: int,
                   max_step: int) -> np.ndarray:
    """Per point of ``env``, the signed step along input ``name`` of the smallest
    size (at most ``max_step``; ``+`` first on ties) that flips ``atom``'s truth
    and stays in ``0..side-1``; 0 where none does."""
    truth = _predict(atom, env).astype(bool)
    values = np.asarray(env[name])
    steps = np.zeros(len(values), dtype=np.int64)
    for size in range(1, max_step + 1):
        for sign in (1, -1):
            step = sign * size
            inside = (values + step >= 0) & (values + step < side) & (steps == 0)
            if not inside.any():
                continue
            flips = _predict(atom, _moved(env, name, step)).astype(bool) != truth
            steps[inside & flips] = step
        if (steps != 0).all():
            break
    return steps


def random_moves(env: Mapping[str, np.ndarray], sizes: np.ndarray, domain: GridDomain,
                 rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Each point moved ``sizes[i]`` steps along a random input in a random
    direction that stays in the domain; and which points could be moved."""
    options = [(name, sign) for name in domain.names for sign in (1, -1)]
    sizes = np.abs(np.asarray(sizes))
    valid = np.stack([(np.asarray(env[name]) + sign * sizes >= 0) &
                      (np.asarray(env[name]) + sign * sizes < side)
                      for (name, sign), side in zip(options, np.repeat(domain.shape, 2))], axis=1)
    priority = np.where(valid, rng.random(valid.shape), -1.0)
    pick = priority.argmax(axis=1)
    ok = valid[np.arange(len(pick)), pick]
    out = {name: np.asarray(env[name]).copy() for name in domain.names}
    for k, (name, sign) in enumerate(options):
        rows = ok & (pick == k)
        out[name][rows] += sign * sizes[rows]
    return {k: v[ok] for k, v in out.items()}, ok


def counterfactual_grid(oracle, program: Program, domain: GridDomain, *,
                        points: Mapping[str, np.ndarray] | None = None,
                        max_step: int | None = None, max_points: int = 2000,
                        max_candidates: int = 200_000, network: str = "network",
                        seed: int = 0) -> CausalReport:
    """Move grid points across each atom's boundary and ask ``oracle`` again.

    For every atom (comparison) of ``program`` and every input it reads,
    candidate points (``points``, default the whole domain or a random
    ``max_candidates`` of it) whose atom flips within ``max_step`` steps along
    that input (default ``max(2, min(side) // 16)``) are *near its boundary*;
    at most ``max_points`` of them are moved by their smallest flipping step.
    The control moves the same points by the same number of steps along a
    random input, in a random direction inside the domain.
    """
    unknown = sorted(program.inputs - set(domain.names))
    if unknown:
        raise ValueError(f"program reads {unknown}, which domain {domain} does not have")
    max_step = int(max_step if max_step is not None else max(2, min(domain.shape) // 16))
    if max_step < 1:
        raise ValueError(f"max_step must be at least 1, got {max_step}")
    rng = np.random.default_rng(seed)
    env = dict(points) if points is not None else domain.all_inputs()
    n = len(np.asarray(env[domain.names[0]]))
    if n > max_candidates:
        rows = np.sort(rng.choice(n, max_candidates, replace=False))
        env = {k: np.asarray(v)[rows] for k, v in env.items()}
    sides = dict(zip(domain.names, domain.shape))
    tests = []
    for atom in atoms_of(program):
        for name in domain.names:
            if name not in atom.inputs:
                continue
            steps = smallest_flips(atom, env, name, sides[name], max_step)
            near = np.flatnonzero(steps)
            rows = near if len(near) <= max_points else np.sort(
                rng.choice(near, max_points, replace=False))
            if not len(rows):
                continue
            base = {k: np.asarray(v)[rows] for k, v in env.items()}
            moved = _moved(base, name, steps[rows])
            control, ok = random_moves(base, steps[rows], domain, rng)
            net_base, net_moved, net_control = _labels(oracle, [base, moved, control])
            prog_base = _predict(program, base)
            edit = Outcome.of(net_base, net_moved, prog_base, _predict(program, moved))
            ctrl = Outcome.of(net_base[ok], net_control, prog_base[ok],
                              _predict(program, control))
            tests.append(CausalTest(to_expression(atom), f"move {name}", edit, ctrl,
                                    float(np.abs(steps[rows]).mean()),
                                    {"near_boundary": int(len(near))}))
    method = (f"points within {max_step} steps of an atom's boundary moved by the smallest "
              f"step along one input that flips the atom; control: the same number of steps "
              f"along a random input and direction")
    return CausalReport("grid moves", network, method, tuple(tests))


# -- images ----------------------------------------------------------------------------

def _gap(atom: Apply, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """Left side minus right side of a comparison: its truth flips where this crosses 0."""
    with np.errstate(all="ignore"):
        left, right = (np.asarray(a.evaluate(dict(env)), dtype=np.float64) for a in atom.args)
    return np.where(np.isfinite(left - right), left - right, 0.0)


def edit_direction(atom: Apply, images: np.ndarray, name: str = "image",
                   eps: float = 1e-3) -> tuple[np.ndarray, str]:
    """The image direction an edit of ``atom`` moves along, and its name: the
    atom's template when it reads exactly one, else the gradient of its two
    sides' difference at the mean image (finite differences: ink in a region
    gives the region's mask)."""
    templates = {node for node in atom.walk() if isinstance(node, Template)}
    if len(templates) == 1:
        t = templates.pop()
        return np.asarray(t.array, dtype=np.float64), t.identifier
    mean = np.asarray(images, dtype=np.float64).mean(axis=0)
    h, w = mean.shape
    bumps = np.eye(h * w).reshape(h * w, h, w) * eps
    up = _gap(atom, {name: mean + bumps})
    down = _gap(atom, {name: mean - bumps})
    return ((up - down) / (2 * eps)).reshape(h, w), "gradient at the mean image"


def _edited(images: np.ndarray, direction: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.clip(images + t[:, None, None] * direction, 0.0, 1.0)


def crossing_steps(atom: Apply, images: np.ndarray, direction: np.ndarray, margin: float,
                   name: str = "image", iters: int = 14) -> np.ndarray:
    """Per image, the signed ``t`` of the smallest edit ``clip(image + t * direction)``
    that flips ``atom`` and carries its sides at least ``margin`` apart (a scan over
    ``|t|`` doubling from ``2**-7 / |direction|``, then bisection); NaN where no
    edit up to ``2**7 / |direction|`` does."""
    norm = float(np.linalg.norm(direction))
    n = len(images)
    if norm == 0:
        return np.full(n, np.nan)
    truth = _predict(atom, {name: images}).astype(bool)

    def crossed(t: np.ndarray) -> np.ndarray:
        env = {name: _edited(images, direction, t)}
        return (_predict(atom, env).astype(bool) != truth) & (np.abs(_gap(atom, env)) >= margin)

    lo, hi = np.zeros(n), np.full(n, np.nan)
    previous = 0.0
    for scale in 2.0 ** np.arange(-7, 8) / norm:
        if not np.isnan(hi).any():
            break
        for sign in (1.0, -1.0):
            hit = np.isnan(hi) & crossed(np.full(n, sign * scale))
            hi[hit] = sign * scale
            lo[hit] = sign * previous
        previous = scale
    found = ~np.isnan(hi)
    for _ in range(iters):
        mid = np.where(found, (lo + hi) / 2, 0.0)
        ok = crossed(mid) & found
        hi = np.where(ok, mid, hi)
        lo = np.where(found & ~ok, mid, lo)
    return hi


def matched_noise(images: np.ndarray, norms: np.ndarray, rng: np.random.Generator,
                  iters: int = 30) -> np.ndarray:
    """Each image plus a random direction, clipped to [0, 1], scaled (by bisection)
    so that the change has L2 norm ``norms[i]`` (or the largest clipping allows)."""
    noise = rng.normal(size=images.shape)
    noise /= np.linalg.norm(noise.reshape(len(noise), -1), axis=1)[:, None, None]
    lo, hi = np.zeros(len(images)), np.full(len(images), 4.0 * np.sqrt(images[0].size))
    for _ in range(iters):
        mid = (lo + hi) / 2
        change = _edited(images, noise, mid) - images
        short = np.linalg.norm(change.reshape(len(images), -1), axis=1) < norms
        lo, hi = np.where(short, mid, lo), np.where(short, hi, mid)
    return _edited(images, noise, hi)


def counterfactual_images(oracle, program: Program, images: np.ndarray, *,
                          name: str = "image", max_images: int = 500, margin: float = 0.1,
                          examples: int = 3, network: str = "network",
                          seed: int = 0) -> CausalReport:
    """Edit images so that each atom of ``program`` flips, and ask ``oracle`` again.

    ``images`` (N, H, W) in [0, 1] should be images the program was not fitted
    on; a random ``max_images`` of them are edited, each along the atom's
    direction (:func:`edit_direction`) by the smallest step that carries the
    atom's two sides ``margin`` of their standard deviation (over the images)
    past each other (:func:`crossing_steps`).  The control changes each image by
    the same L2 norm in a random direction (:func:`matched_noise`).  Atoms
    ``==``/``!=`` have no side to cross to and are left out.  ``examples`` edits
    per atom that change the program's label are kept as pictures.
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 3 or not len(arr):
        raise ValueError(f"images must be a non-empty (N, H, W) array, got shape {arr.shape}")
    if program.inputs and name not in program.inputs:
        raise ValueError(f"program {program} does not read the input {name!r}")
    rng = np.random.default_rng(seed)
    if len(arr) > max_images:
        arr = arr[np.sort(rng.choice(len(arr), max_images, replace=False))]
    env = {name: arr}
    prog_base = _predict(program, env)
    tests, kept = [], []
    for atom in atoms_of(program):
        if atom.primitive.name not in ORDERED or name not in atom.inputs:
            continue
        direction, along = edit_direction(atom, arr, name)
        spread = float(np.std(_gap(atom, env)))
        t = crossing_steps(atom, arr, direction, margin * spread, name)
        ok = ~np.isnan(t)
        if not ok.any():
            continue
        edited = _edited(arr[ok], direction, t[ok])
        size = np.linalg.norm((edited - arr[ok]).reshape(int(ok.sum()), -1), axis=1)
        noisy = matched_noise(arr[ok], size, rng)
        net_base, net_edit, net_noise = _labels(oracle, [{name: a.astype(np.float32)}
                                                         for a in (arr[ok], edited, noisy)])
        prog_edit = _predict(program, {name: edited})
        edit = Outcome.of(net_base, net_edit, prog_base[ok], prog_edit)
        ctrl = Outcome.of(net_base, net_noise, prog_base[ok], _predict(program, {name: noisy}))
        target = to_expression(atom)
        tests.append(CausalTest(target, f"along {along}", edit, ctrl, float(size.mean()),
                                {"skipped": int((~ok).sum())}))
        for i in np.flatnonzero(prog_edit != prog_base[ok])[:examples]:
            kept.append({"target": target, "original": encode_image(arr[ok][i]),
                         "edited": encode_image(edited[i]),
                         "network": [int(net_base[i]), int(net_edit[i])],
                         "program": [int(prog_base[ok][i]), int(prog_edit[i])]})
    method = (f"{len(arr)} held-out images moved along each atom's template (or gradient), "
              f"clip(image + t * T, 0, 1), by the smallest t that carries the atom's sides "
              f"{margin} standard deviations across its threshold; control: a random "
              f"direction changing each image by the same L2 norm")
    return CausalReport("image edits", network, method, tuple(tests), tuple(kept))


# -- patching --------------------------------------------------------------------------

def evaluate_with(program: Program, env: Mapping[str, np.ndarray],
                  values: Mapping[Program, np.ndarray]) -> np.ndarray:
    """``program`` on ``env`` with every occurrence of a subprogram in ``values``
    replaced by the given per-row values."""
    n = len(np.asarray(next(iter(env.values()))))

    def value(node: Program) -> np.ndarray:
        if node in values:
            return np.asarray(values[node])
        if isinstance(node, Apply):
            return node.primitive.impl(*(value(a) for a in node.args))
        return node.evaluate(dict(env))

    with np.errstate(all="ignore"):
        return np.broadcast_to(value(program), (n,))


@contextmanager
def added_to(oracle, layer: str, delta: np.ndarray) -> Iterator[None]:
    """While open, the output of module ``layer`` of ``oracle`` gets ``delta``
    (N, D flattened) added, row by row, over the next N rows the oracle runs."""
    import torch

    module = getattr(oracle, "module", None)
    if module is None:
        raise ValueError("patching needs an oracle with a torch module (a TorchOracle)")
    try:
        point = module.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"the network has no module {layer!r}; layers: "
                         f"{default_layers(oracle)}") from None
    delta = np.asarray(delta, dtype=np.float64)
    done = [0]

    def hook(_module, _args, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"module {layer!r} outputs a {type(output).__name__}, "
                             f"not a tensor to patch")
        rows = delta[done[0]:done[0] + len(output)]
        done[0] += len(output)
        if len(rows) != len(output):
            raise ValueError(f"module {layer!r} ran on more rows than patches were given "
                             f"({len(delta)})")
        return output + torch.as_tensor(rows, dtype=output.dtype,
                                        device=output.device).reshape(output.shape)

    handle = point.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
    if done[0] != len(delta):
        raise ValueError(f"module {layer!r} ran on {done[0]} rows, not the {len(delta)} "
                         f"patched")


def patch_feature(oracle, layer: str, direction: np.ndarray, inputs: Mapping[str, np.ndarray],
                  sources: Mapping[str, np.ndarray]) -> np.ndarray:
    """The oracle's labels on ``inputs`` with the component of ``layer``'s
    activation along ``direction`` replaced, row by row, by that of ``sources``."""
    u = _unit(direction)
    acts = oracle.features(inputs, [layer])[layer]
    source = oracle.features(sources, [layer])[layer]
    if source.shape != acts.shape or acts.shape[1] != len(u):
        raise ValueError(f"layer {layer!r} has {acts.shape[1]} units; the direction has "
                         f"{len(u)} and sources give shape {source.shape} for {acts.shape}")
    return shifted_labels(oracle, layer, inputs, np.outer((source - acts) @ u, u))


def shifted_labels(oracle, layer: str, inputs: Mapping[str, np.ndarray],
                   delta: np.ndarray) -> np.ndarray:
    """The oracle's labels on ``inputs`` with ``delta`` added to ``layer``'s output."""
    with added_to(oracle, layer, delta):
        return np.asarray(oracle.labels(inputs)).astype(np.int64)


def _unit(direction: np.ndarray) -> np.ndarray:
    u = np.asarray(direction, dtype=np.float64).ravel()
    norm = np.linalg.norm(u)
    if not norm > 0:
        raise ValueError("cannot patch along a zero direction")
    return u / norm


def patching(oracle, program: Program, inputs: Mapping[str, np.ndarray], *,
             layers: Sequence[str] | None = None, max_pairs: int = 300,
             network: str = "network", seed: int = 0) -> CausalReport:
    """Patch each feature of ``program`` between pairs of inputs, in each layer.

    Of a random ``2 * max_pairs`` rows of ``inputs`` (rows the program was not
    fitted on), half fit each feature's linear readout from each layer
    (:func:`synth.evidence.feature_readouts`: the probe of the decodability
    evidence) and half are paired at random, A with B.  Two interventions per
    feature and layer, each compared with the program on A with the feature
    set to its value on B:

    * *probe*: A's projection on the probe direction replaced by B's
      (:func:`patch_feature`): the probe then reads B's value;
    * *encoding*: A's activations shifted along the feature's encoding
      direction by the feature's change from A to B: how the layer's
      activations vary with the feature, to first order.

    Each control shifts A's activations by the same norm in one random
    direction.  ``layers`` default to every layer but the last (the output).
    """
    features = program_features(program)
    if not features:
        raise ValueError(f"program {program} has no feature to patch")
    names = list(layers) if layers is not None else default_layers(oracle)[:-1]
    if not names:
        raise ValueError("no layer to patch")
    rng = np.random.default_rng(seed)
    n = len(np.asarray(next(iter(inputs.values()))))
    rows = np.sort(rng.choice(n, min(n, 2 * max_pairs), replace=False))
    if len(rows) < 20:
        raise ValueError(f"patching needs at least 20 inputs, got {len(rows)}")
    env = {k: np.asarray(v)[rows] for k, v in inputs.items()}
    fit, patch = split_rows(len(rows), 0.5, seed)
    readouts = feature_readouts(oracle, env, features, names, fit, patch)
    a = rng.permutation(patch)
    b = np.roll(a, 1)  # a random pairing, no row with itself
    env_a = {k: v[a] for k, v in env.items()}
    net_a = np.asarray(oracle.labels(env_a)).astype(np.int64)
    prog_a = _predict(program, env_a)
    with np.errstate(all="ignore"):
        values = {f: np.asarray(f.evaluate(env), dtype=np.float64) for f in features}
    patched = {f: evaluate_with(program, env_a, {f: values[f][b]}).astype(np.int64)
               for f in features}
    tests = []
    for layer in names:
        acts = oracle.features(env, [layer])[layer]
        for f in features:
            readout = readouts[str(f), layer]
            shifts = []
            if np.linalg.norm(readout.weights) > 0:
                u = _unit(readout.weights)
                shifts.append(("probe", np.outer((acts[b] - acts[a]) @ u, u)))
            if np.linalg.norm(readout.encoding) > 0:
                shifts.append(("encoding", np.outer(values[f][b] - values[f][a],
                                                    readout.encoding)))
            for kind, delta in shifts:
                net_patched = shifted_labels(oracle, layer, env_a, delta)
                net_control = shifted_labels(oracle, layer, env_a, _random_like(delta, rng))
                tests.append(CausalTest(
                    str(f), f"{kind} at {layer}",
                    Outcome.of(net_a, net_patched, prog_a, patched[f]),
                    Outcome.of(net_a, net_control, prog_a, prog_a),
                    float(np.linalg.norm(delta, axis=1).mean()),
                    {"layer": layer, "probe_r2": round(readout.r2, 4)}))
    method = (f"{len(fit)} inputs fit each feature's ridge readout per layer; {len(a)} others "
              f"paired at random, A with B. probe: A's projection on the readout direction "
              f"replaced by B's; encoding: A's activations shifted along the feature's "
              f"encoding direction (per-unit slope on the feature) by the feature's change "
              f"from A to B. The network should follow the program with the feature set to "
              f"its value on B. Control: a random direction shifted by the same norm")
    return CausalReport("patching", network, method, tuple(tests))


def _random_like(delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shifts of the same norm per row as ``delta``, along one random direction, random sign."""
    v = _unit(rng.normal(size=delta.shape[1]))
    signs = rng.choice([-1.0, 1.0], size=len(delta))
    return np.outer(signs * np.linalg.norm(delta, axis=1), v)


# -- text ------------------------------------------------------------------------------

def format_causal(reports: Sequence[Mapping]) -> str:
    """Causal reports (their JSON form) as text: one line per test, a headline each."""
    lines = []
    for rep in reports:
        edits, control = rep["edits"], rep["control"]
        lines.append(f"{rep['kind']} on {rep['network']}: counterfactual fidelity "
                     f"{_text(rep['counterfactual_fidelity'])} over {edits['n']} edits "
                     f"(network label changed on {_text(edits['network_changes'])}, program's "
                     f"on {_text(edits['program_changes'])}); control: network label changed "
                     f"on {_text(control['network_changes'])}")
        for t in rep["tests"]:
            where = f" (probe R^2 {t['probe_r2']:.3f})" if "probe_r2" in t else ""
            lines.append(f"  {_cut(t['target'], 60):<60}  {t['intervention']}{where}: fidelity "
                         f"{_text(t['fidelity'])}, followed {_text(t['followed'])}, n {t['n']}; "
                         f"control changes {_text(t['control']['network_changes'])}")
    return "\n".join(lines)


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


__all__ = ["Outcome", "CausalTest", "CausalReport", "smallest_flips", "random_moves",
           "counterfactual_grid", "edit_direction", "crossing_steps", "matched_noise",
           "counterfactual_images", "evaluate_with", "added_to", "patch_feature",
           "shifted_labels", "patching", "format_causal"]
