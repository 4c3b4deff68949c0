"""Searching labelling programs over images: template banks, refinement, the pipeline.

Programs over images read scalar features (``ink(image)``, ``dot(image, T)``)
and compare them with thresholds.  Which templates ``T`` the search may use
decides what it can find; they come from three sources, each first-class:

* the **data**: class means, the most typical member of each class,
  principal components (:mod:`dsl.images`);
* the **network**: aligned input gradients, Jacobian directions, applied
  first-layer filters, and the exemplars the gradient looks like
  (:mod:`oracles.templates`);
* the **user**: hint files (:func:`dsl.images.hint_template`).

Every non-negative template ``T`` (an image: a class mean, an exemplar, a
hint, a mask) also enters *signed*, as ``2T - 1``: ``dot(image, 2T - 1)``
counts the image's ink on ``T`` minus its ink off ``T``, which for binary
images is an affine function of the L1 distance between image and
template -- template matching in one dot product.

**Refinement** (optional, ``refine`` templates): the best-screened templates
are adjusted to the oracle's labels on a subset of the queries (the
*template rows*): a logistic model whose logit is a quadratic in
``dot(image, w)`` -- a threshold or a band on one linear feature, the shape
of one fitted atom -- with ``w`` started at the template and kept smooth (a
penalty on differences of neighbouring pixels).  Nothing about any
particular labelling is built in; the refined template is a new constant
(source ``refined(...)``) that the search then uses like any other.  The
queries outside the template rows were never used to fit any template, and
fidelity on them is reported separately.

The search itself is the engine's :class:`~synth.search.Synthesizer` over the
feature bank; its Pareto front is then cut at ``max_size`` nodes.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize

from dsl.images import (GRID, SCALAR_FEATURES, TEMPLATE_FEATURES, Template,
                        class_mean_templates, exemplar_templates, image_features,
                        pca_templates)
from dsl.primitives import REGISTRY
from dsl.program import Apply, Program, Var
from dsl.types import IMAGE
from synth.pareto import pick_best
from synth.results import Candidate, SearchResult
from synth.thresholds import ThresholdIndex

IMAGE_VAR = Var("image", IMAGE)
#: Arithmetic used over image features (no integer division or moduli).
IMAGE_PRIMITIVES = ("add", "sub", "mul", "div", "abs", "min", "max", "square", "sqrt")
#: Largest feature enumerated over image leaves: the leaves themselves cost
#: 2-3 nodes (``ink(image)``, ``dot(image, T)``), and a band on a feature
#: prints it twice, so larger features rarely fit a small program.
IMAGE_FEATURE_SIZE = 3
#: The coarser grid of region features beside ``dsl.images.GRID``.
COARSE_GRID = 2

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Templates.

def signed_template(t: Template) -> Template:
    """``2T - 1`` named ``<name>_signed``: +1 where ``T`` has ink, -1 where it has none."""
    return Template.from_array(2.0 * t.array - 1.0, f"{t.name}_signed",
                               source=f"{t.source} signed (2T-1)")


def with_signed(templates: Sequence[Template]) -> list[Template]:
    """The templates, each non-negative one followed by its signed form."""
    out: list[Template] = []
    for t in templates:
        out.append(t)
        if t.array.min() >= 0 and t.array.max() > 0 and not t.name.endswith("_signed"):
            out.append(signed_template(t))
    return list(dict.fromkeys(out))


def class_exemplars(images, classes) -> list[int]:
    """Per class, the image most like its class mean (highest cosine): a real
    typical member, where the mean is a blur of many."""
    arr = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    labels = np.asarray(classes)
    out = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        mean = arr[members].mean(axis=0)
        norms = np.linalg.norm(arr[members], axis=1) * np.linalg.norm(mean)
        score = np.where(norms > 0, arr[members] @ mean / np.where(norms > 0, norms, 1), -1)
        out.append(int(members[int(np.argmax(score))]))
    return out


def contrast_templates(means: Sequence[Template]) -> list[Template]:
    """``mean_a - mean_b`` for every two class means (a before b), named
    ``mean_<a>_minus_<b>``: the direction that best separates two classes of
    equal spread (Fisher's), so ``dot(image, T)`` weighs one class against another."""
    out = []
    for i, a in enumerate(means):
        for b in means[i + 1:]:
            name = f"{a.name}_minus_{b.name.removeprefix('mean_')}"
            out.append(Template.from_array(a.array - b.array, name,
                                           source=f"{a.source} - {b.source}"))
    return out


def data_templates(images, classes=None, *, pca: int = 4) -> list[Template]:
    """Class means, their differences and the most typical member of each class
    (when ``classes`` are given), and ``pca`` principal components."""
    out: list[Template] = []
    if classes is not None:
        means = class_mean_templates(images, classes)
        out += means + contrast_templates(means)
        out += exemplar_templates(images, class_exemplars(images, classes))
    if pca:
        out += pca_templates(images, min(pca, min(len(images), images[0].size)))
    return out


def search_features(templates: Sequence[Template], grid: int = GRID,
                    coarse_grid: int | None = COARSE_GRID) -> list[Program]:
    """The features the image search reads: :func:`dsl.images.image_features`
    with ``templates`` on the ``grid``, plus the cells and bands of a coarser
    grid (halves and quadrants for 2): region ink at two scales."""
    out = image_features(templates, grid=grid)
    if coarse_grid and coarse_grid != grid:
        out += image_features((), grid=coarse_grid)[len(SCALAR_FEATURES):]
    return out


def template_features(t: Template) -> list[Program]:
    return [Apply(REGISTRY[name], (IMAGE_VAR, t)) for name in TEMPLATE_FEATURES]


@dataclass(frozen=True)
class Screened:
    """A template's best single predicate on the screening rows."""

    template: Template
    feature: Program
    kind: str  # le / gt / in / out
    fidelity: float


def screen_templates(templates: Sequence[Template], images: np.ndarray,
                     labels: np.ndarray) -> list[Screened]:
    """Each template's best one-predicate fidelity (over ``dot``, ``cosine``,
    ``centered_dot`` and every threshold or band), best first."""
    if not templates:
        return []
    env = {"image": images}
    programs = [f for t in templates for f in template_features(t)]
    with np.errstate(all="ignore"):
        values = np.stack([np.asarray(p.evaluate(env), dtype=np.float64) for p in programs])
    values = np.where(np.isfinite(values), values, 0.0)
    z = np.asarray(labels).astype(bool)
    index = ThresholdIndex(values, shortlist=len(programs) + 1)
    best: dict[Template, Screened] = {}
    for split in index.best(z, np.ones(len(z)), top=len(programs)):
        p = programs[split.feature]
        t = p.args[1]
        s = Screened(t, p, split.kind, split.correct / len(z))
        if t not in best or s.fidelity > best[t].fidelity:
            best[t] = s
    for t in templates:  # features no predicate beats a constant with
        best.setdefault(t, Screened(t, template_features(t)[0], "le", float(max(z.mean(),
                                                                             1 - z.mean()))))
    return sorted(best.values(), key=lambda s: -s.fidelity)


def _laplacian(w: np.ndarray, shape: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Sum of squared differences of neighbouring pixels, and its gradient."""
    g = w.reshape(shape)
    dr, dc = g[1:] - g[:-1], g[:, 1:] - g[:, :-1]
    grad = np.zeros_like(g)
    grad[1:] += 2 * dr
    grad[:-1] -= 2 * dr
    grad[:, 1:] += 2 * dc
    grad[:, :-1] -= 2 * dc
    return float((dr * dr).sum() + (dc * dc).sum()), grad.ravel()


def _bce(logit: np.ndarray, z: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy and its derivative in the logits."""
    loss = np.logaddexp(0.0, logit) - z * logit
    prob = 0.5 * (1.0 + np.tanh(0.5 * logit))  # a sigmoid that never overflows
    return float(loss.mean()), (prob - z) / len(z)


def refine_template(template: Template, images: np.ndarray, labels: np.ndarray, *,
                    smooth: float = 10.0, l2: float = 1e-3, iters: int = 150,
                    name: str | None = None) -> Template:
    """The template adjusted to the labels (see the module doc).

    Model: ``logit = q*u**2 + p*u + b`` with ``u = (image . w - mu) / sigma``
    (``mu``, ``sigma`` fixed at the start), loss = mean cross-entropy +
    ``smooth`` * (neighbour differences of ``w``)^2 / pixels + ``l2`` *
    |w|^2 / pixels.  ``w`` starts at the template scaled to norm 3; the head
    ``(q, p, b)`` starts at its best fit for that ``w``.  L-BFGS, ``iters``
    iterations.  The result is scaled to a largest absolute pixel of 1.
    """
    arr = np.asarray(images, dtype=np.float64)
    shape = arr.shape[1:]
    x = arr.reshape(len(arr), -1)
    z = np.asarray(labels, dtype=np.float64)
    pixels = x.shape[1]
    w0 = template.array.ravel().astype(np.float64)
    norm = np.linalg.norm(w0)
    if norm == 0:
        raise ValueError(f"template {template.name!r} is blank: nothing to refine")
    w0 = 3.0 * w0 / norm
    u0 = x @ w0
    mu, sigma = float(u0.mean()), float(u0.std()) or 1.0

    def head_loss(h):
        us = (u0 - mu) / sigma
        logit = h[0] * us * us + h[1] * us + h[2]
        loss, d = _bce(logit, z)
        return loss, np.array([(d * us * us).sum(), (d * us).sum(), d.sum()])

    head = scipy.optimize.minimize(head_loss, np.zeros(3), jac=True, method="L-BFGS-B",
                                   options={"maxiter": 100}).x

    def loss_and_grad(params):
        w, (q, p, b) = params[:-3], params[-3:]
        us = (x @ w - mu) / sigma
        logit = q * us * us + p * us + b
        loss, d = _bce(logit, z)
        du = d * (2 * q * us + p) / sigma
        grad_w = x.T @ du
        lap, lap_grad = _laplacian(w, shape)
        loss += (smooth * lap + l2 * (w @ w)) / pixels
        grad_w += (smooth * lap_grad + 2 * l2 * w) / pixels
        return loss, np.concatenate([grad_w, [(d * us * us).sum(), (d * us).sum(), d.sum()]])

    fit = scipy.optimize.minimize(loss_and_grad, np.concatenate([w0, head]), jac=True,
                                  method="L-BFGS-B", options={"maxiter": int(iters)})
    w = fit.x[:-3].reshape(shape)
    peak = w.flat[int(np.argmax(np.abs(w)))]
    w = w / peak if peak != 0 else w
    return Template.from_array(w, name or f"{template.name}_refined",
                               source=f"refined({template.source}) on {len(z)} oracle labels")


# ---------------------------------------------------------------------------
# The pipeline.

def search_split(n: int, seed: int, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) as :class:`~synth.search.Synthesizer` draws
    them for ``n`` queries and ``seed``: templates are fitted inside its fit
    rows, so its held-out fidelity stays honest (the tests check the two agree)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_hold = int(round(holdout * n)) if n > 10 else 0
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


@dataclass
class ImageSearchReport:
    """What :func:`recover_image_program` found, and how it was checked."""

    result: SearchResult  # the Pareto front cut at max_size, best picked within it
    templates: list[Template]
    fidelity: float  # agreement with the oracle on every query
    fidelity_unseen: float | None  # on queries no template was fitted on
    template_rows: np.ndarray
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    screened: list[Screened] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    #: the search's front past max_size (its decision trees, with ``tree_leaves``):
    #: what more nodes buy, for comparing at larger sizes; never the answer
    beyond: tuple[Candidate, ...] = ()

    @property
    def best(self) -> Candidate:
        return self.result.best

    def sources(self) -> dict[str, str]:
        """``{T_<name>: source}`` for the templates the best program uses."""
        used = {node for node in self.best.program.walk() if isinstance(node, Template)}
        return {t.identifier: t.source for t in self.templates if t in used}

    def to_json(self) -> dict:
        data = self.result.to_json()
        best = data["best"]
        best["fidelity_all_queries"] = self.fidelity
        best["fidelity_unseen_queries"] = self.fidelity_unseen
        best["template_sources"] = self.sources()
        if self.evidence:
            best["evidence"] = self.evidence
        data["evidence"] = self.evidence
        data["stats"]["pipeline_seconds"] = self.seconds
        data["stats"]["timings"] = self.timings
        data["templates"] = {t.identifier: t.source for t in self.templates}
        data["screening"] = [{"template": s.template.identifier, "feature": str(s.feature),
                              "kind": s.kind, "fidelity": round(s.fidelity, 4)}
                             for s in self.screened[:20]]
        return data


def prefer_simpler(result: SearchResult, images: np.ndarray, labels: np.ndarray,
                   hold_rows: np.ndarray, z: float = 2.0) -> SearchResult:
    """The result with its best replaced by the smallest front program the best
    does not beat *significantly* on the held-out rows.

    A sign test over the held-out rows where the two programs disagree: the
    larger program stays only if ``wins - losses > z * sqrt(wins + losses)``.
    A larger program must earn its size on queries no template or threshold
    was fitted on, not by copying the network's mistakes on the fit rows.
    (The held-out fidelity reported for the chosen program has then served to
    choose among a handful of front programs.)
    """
    best = result.best
    if not len(hold_rows):
        return result
    env = {"image": np.asarray(images)[hold_rows]}
    truth = np.asarray(labels)[hold_rows].astype(np.int64)

    def right(c: Candidate) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(c.program.evaluate(env)).astype(np.int64) == truth

    best_right = right(best)
    for c in sorted(result.pareto, key=lambda c: c.size):
        if c.size >= best.size:
            break
        other = right(c)
        wins, losses = int((best_right & ~other).sum()), int((other & ~best_right).sum())
        if wins - losses <= z * np.sqrt(wins + losses):
            return replace(result, best=c)
    return result


def cut_front(result: SearchResult, max_size: int, penalty: float) -> SearchResult:
    """The result with its Pareto front cut at ``max_size`` nodes and the best
    re-picked by penalised fidelity within the cut."""
    front = tuple(c for c in result.pareto if c.size <= max_size)
    if not front:
        raise ValueError(f"no program of at most {max_size} nodes on the front")
    return replace(result, best=pick_best(front, penalty), pareto=front)


@dataclass
class TemplateBank:
    """Templates from every source, screened (best first), with the rows used to fit any."""

    templates: list[Template]
    screened: list[Screened]
    rows: np.ndarray  # template rows: refinement and screening saw these queries
    unseen: np.ndarray  # the other queries
    timings: dict[str, float] = field(default_factory=dict)

    def chosen(self, k: int) -> list[Template]:
        """The ``k`` best-screened templates."""
        return [s.template for s in self.screened[:k]]


def build_template_bank(images: np.ndarray, labels: np.ndarray, *, oracle=None,
                        classes: np.ndarray | None = None,
                        user_templates: Sequence[Template] = (), refine: int | None = None,
                        template_rows: int = 5000, pca: int = 4, seed: int = 0,
                        holdout: float = 0.2, log: Log = _quiet) -> TemplateBank:
    """Templates from the data, the network (when ``oracle`` has input
    gradients) and the user, their signed forms, screened on the template
    rows (a random half of the queries, at most ``template_rows``, drawn from
    the rows the search will fit: never its held-out rows), and the
    ``refine`` best refined there (default 2, or 0 when user templates are
    given: a hint is a hypothesis to test as it is)."""
    timings: dict[str, float] = {}
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {arr.shape}")
    z = np.asarray(labels).astype(np.int64)
    if z.shape != (len(arr),):
        raise ValueError(f"labels must have shape ({len(arr)},), got {z.shape}")
    n = len(arr)
    fit_rows, _ = search_split(n, seed, holdout)
    rng = np.random.default_rng([seed, 1])
    take = min(template_rows, max(n // 2, 1), len(fit_rows))
    rows = np.sort(rng.choice(fit_rows, size=take, replace=False))
    unseen = np.setdiff1d(np.arange(n), rows)
    if refine is None:
        refine = 0 if user_templates else 2

    def tick(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    t0 = time.perf_counter()
    templates = data_templates(arr, classes, pca=pca)
    t0 = tick("data_templates", t0)
    if oracle is not None and hasattr(oracle, "input_gradients"):
        from oracles.templates import network_templates
        templates += network_templates(oracle, arr[rows].astype(np.float32), z[rows],
                                       row_ids=rows, seed=seed)
        t0 = tick("network_templates", t0)
    templates += list(user_templates)
    templates = with_signed(templates)
    log(f"{len(templates)} templates: " + ", ".join(t.name for t in templates))
    screened = screen_templates(templates, arr[rows], z[rows])
    t0 = tick("screening", t0)
    for s in screened[:6]:
        log(f"  screened {s.fidelity:.4f} {s.kind:>3} {s.feature}   [{s.template.source}]")
    refined = [refine_template(s.template, arr[rows], z[rows]) for s in screened[:refine]]
    if refined:
        again = screen_templates(refined, arr[rows], z[rows])
        for s in again:
            log(f"  refined  {s.fidelity:.4f} {s.kind:>3} {s.feature}   [{s.template.source}]")
        screened = sorted(screened + again, key=lambda s: -s.fidelity)
        templates += refined
        tick("refinement", t0)
    return TemplateBank(templates, screened, rows, unseen, timings)


def recover_image_program(images: np.ndarray, labels: np.ndarray, *, oracle=None,
                          classes: np.ndarray | None = None,
                          user_templates: Sequence[Template] = (), time_limit: float = 240.0,
                          max_size: int = 15, max_feature_size: int = IMAGE_FEATURE_SIZE,
                          max_atoms: int = 2,
                          beam_width: int = 4, refine: int | None = None,
                          template_rows: int = 5000, pca: int = 4, search_templates: int = 40,
                          grid: int = GRID, evidence: bool = True, seed: int = 0,
                          complexity_penalty: float = 2e-4, significance: float | None = 2.0,
                          tree_leaves: int = 0, clock: str = "wall",
                          log: Log = _quiet) -> ImageSearchReport:
    """Find a program of at most ``max_size`` nodes over ``images`` explaining ``labels``.

    ``oracle`` (a TorchOracle, optional) supplies network templates and the
    decodability evidence; ``classes`` (optional) class means and contrasts;
    ``user_templates`` (hints) are taken as given.  See
    :func:`build_template_bank` for ``refine``.  The search reads the
    scalar image features, region ink on two grids (:func:`search_features`),
    and ``dot``/``cosine``/``centered_dot`` with the ``search_templates``
    best-screened templates.  ``time_limit`` bounds the
    whole pipeline; the search gets what the templates leave of it.  The best
    program is the penalised best of the front cut at ``max_size``, then the
    smallest one it does not beat significantly on the held-out rows
    (:func:`prefer_simpler` with ``z = significance``; ``None``: no such test).
    ``clock`` is what ``time_limit`` counts (see :class:`~synth.search.Synthesizer`).
    ``tree_leaves`` > 0 grows decision trees of up to that many leaves over the
    features (:mod:`synth.trees`) after the formulas; they rarely fit within
    ``max_size`` and cost every feature on every image, so the default grows
    none.  The front past ``max_size`` is the report's ``beyond``.
    """
    from synth.search import CLOCKS, Synthesizer
    now = CLOCKS[clock]
    start = now()
    arr = np.asarray(images, dtype=np.float64)
    z = np.asarray(labels).astype(np.int64)
    bank = build_template_bank(arr, z, oracle=oracle, classes=classes,
                               user_templates=user_templates, refine=refine,
                               template_rows=template_rows, pca=pca, seed=seed, log=log)
    timings = dict(bank.timings)
    features = search_features(bank.chosen(search_templates), grid=grid)

    reserve = 30.0 if (evidence and oracle is not None) else 0.0
    budget = max(min(10.0, time_limit / 2), time_limit - (now() - start) - reserve)
    log(f"searching {len(features)} features for at most {budget:.0f} s")
    t0 = time.perf_counter()
    synth = Synthesizer(time_limit=budget, features=features, max_feature_size=max_feature_size,
                        max_atoms=max_atoms, beam_width=beam_width, pairs="fallback",
                        primitives=IMAGE_PRIMITIVES, seed=seed,
                        complexity_penalty=complexity_penalty, tree_leaves=tree_leaves,
                        clock=clock, progress=log is not _quiet)
    synth.fit({"image": arr}, z)
    timings["search"] = round(time.perf_counter() - t0, 2)
    result = cut_front(synth.result_, max_size, complexity_penalty)
    if significance is not None:
        result = prefer_simpler(result, arr, z, search_split(len(z), seed)[1], significance)
    program = result.best.program
    pred = np.asarray(program.evaluate({"image": arr})).astype(np.int64)
    fidelity = float((pred == z).mean())
    unseen = bank.unseen
    fidelity_unseen = float((pred[unseen] == z[unseen]).mean()) if len(unseen) else None
    beyond = tuple(c for c in synth.result_.pareto if c.size > max_size)
    report = ImageSearchReport(result, bank.templates, fidelity, fidelity_unseen, bank.rows,
                               0.0, timings, bank.screened, beyond=beyond)
    if evidence and oracle is not None and hasattr(oracle, "features") and len(unseen) >= 10:
        from synth.evidence import decodability
        t0 = time.perf_counter()
        base = [Apply(REGISTRY["ink"], (IMAGE_VAR,))]
        report.evidence = decodability(oracle, {"image": arr[unseen].astype(np.float32)},
                                       program, features=base, seed=seed)
        report.evidence["fidelity_all_queries"] = fidelity
        report.evidence["fidelity_unseen_queries"] = fidelity_unseen
        report.evidence["template_sources"] = report.sources()
        timings["evidence"] = round(time.perf_counter() - t0, 2)
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: ImageSearchReport, unseen_label: str = "queries no template "
                  "was fitted on") -> str:
    """Fidelity, size, template sources and the evidence table, as text."""
    from synth.evidence import format_decodability
    best = report.best
    n = len(report.template_rows)
    lines = [f"Fidelity to the network: {report.fidelity:.4f} on all queries"
             + (f", {report.fidelity_unseen:.4f} on the {unseen_label}"
                if report.fidelity_unseen is not None else "")
             + f" (template rows: {n})",
             f"Size: {best.size} nodes", "Template sources:"]
    if best.holdout_fidelity is not None:
        lines.insert(1, f"Fidelity on the search's held-out queries (no template, no "
                        f"threshold fitted on them): {best.holdout_fidelity:.4f}")
    sources = report.sources()
    lines += [f"  {name}: {src}" for name, src in sources.items()] or ["  (no template)"]
    if report.evidence:
        lines += ["", "Evidence: linear decodability from the network's layers "
                      f"({report.evidence['rows']['test']} held-out images):",
                  format_decodability(report.evidence)]
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    lines.append(f"\nPipeline: {report.seconds:.1f} s ({steps})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# ``synth search --domain mnist|digits``.

IMAGE_DOMAINS = ("mnist", "digits")
IMAGE_SHAPES = {"mnist": (28, 28), "digits": (8, 8)}


def load_domain_images(domain: str, max_images: int | None = None,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images and digit classes of an image domain: the MNIST test set (from
    ``$SYNTH_DATA_DIR``) or sklearn's 8x8 digits; ``max_images`` takes a
    seeded random subset (in the data's order)."""
    from oracles.data import load_digits_images, load_mnist_test
    loaders = {"mnist": load_mnist_test, "digits": load_digits_images}
    if domain not in loaders:
        raise ValueError(f"unknown image domain {domain!r}; choose one of {IMAGE_DOMAINS}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be positive, got {max_images}")
    images, classes = loaders[domain]()
    if max_images is not None and max_images < len(images):
        rows = np.sort(np.random.default_rng(seed).choice(len(images), max_images,
                                                          replace=False))
        images, classes = images[rows], classes[rows]
    return images, classes


def load_user_templates(paths: Sequence[str], shape: tuple[int, int]) -> list[Template]:
    """Hint files as templates (``hint``, ``hint_2``...), with clear errors."""
    from dsl.images import hint_template
    out = []
    for i, path in enumerate(paths):
        out.append(hint_template(path, shape, name="hint" if i == 0 else f"hint_{i + 1}"))
    return out


def atoms_within(max_size: int) -> int:
    """Atoms a formula of ``max_size`` nodes holds when each is a threshold on
    a template feature (``dot(image, T) > t``: 5 nodes) joined by one more."""
    return max(1, (max_size + 1) // 6)


def search_settings(args) -> dict:
    """:func:`recover_image_program` keywords from the search options of a
    command line (``synth.cli.add_search_options`` and ``--hint``/``--refine``/
    ``--max-size``).  Over images, features are enumerated to at most
    ``IMAGE_FEATURE_SIZE`` nodes and formulas to the atoms ``--max-size``
    holds: larger ones cannot make a program of that size.  No decision trees
    unless ``--tree-leaves`` asks for them (they extend only the front past the cut)."""
    max_size = int(getattr(args, "max_size", 15) or 15)
    return {"time_limit": args.time_limit, "seed": args.seed, "max_size": max_size,
            "max_feature_size": min(args.max_feature_size, IMAGE_FEATURE_SIZE),
            "max_atoms": min(args.max_atoms, atoms_within(max_size)),
            "beam_width": getattr(args, "beam_width", 4),
            "refine": getattr(args, "refine", None), "clock": getattr(args, "clock", "wall"),
            "tree_leaves": getattr(args, "tree_leaves", None) or 0}


def run_image_search(args, out=None) -> int:
    """``synth search --domain mnist|digits --model FILE --arch ARCH [--hint FILE]``."""
    out = out or sys.stdout
    from oracles.torch_oracle import TorchOracle
    from synth.cli import load_primitive_files, report
    if getattr(args, "labels", None):
        raise ValueError(f"--domain {args.domain} searches a network's labels: give --model")
    if args.domain not in IMAGE_SHAPES:
        raise ValueError(f"unknown image domain {args.domain!r}; choose one of {IMAGE_DOMAINS}")
    hints = [args.hint] if getattr(args, "hint", None) else []
    user = load_user_templates(hints, IMAGE_SHAPES[args.domain])  # a bad hint fails first
    if args.domain == "digits":
        import synth.demo_digits  # noqa: F401  (registers the digits-cnn architecture)
    load_primitive_files(args.primitives)
    images, classes = load_domain_images(args.domain)
    import torch
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    oracle = TorchOracle.from_file(args.model, args.arch)
    labels = oracle.labels({"image": images})
    log = _quiet if args.quiet else stderr_log
    rep = recover_image_program(images, labels, oracle=oracle, classes=classes,
                                user_templates=user, log=log, **search_settings(args))
    report(rep.result, None, out)
    print("\n" + format_report(rep), file=out)
    if args.json:
        from synth.results import write_json_atomic
        write_json_atomic(args.json, rep.to_json())
        print(f"wrote {args.json}", file=out)
    return 0


__all__ = ["IMAGE_PRIMITIVES", "IMAGE_DOMAINS", "IMAGE_SHAPES", "signed_template", "with_signed",
           "class_exemplars", "contrast_templates", "data_templates", "search_features",
           "COARSE_GRID", "screen_templates", "Screened", "refine_template",
           "ImageSearchReport", "TemplateBank", "build_template_bank", "search_split", "cut_front",
           "prefer_simpler",
           "recover_image_program", "format_report",
           "load_domain_images", "load_user_templates", "IMAGE_FEATURE_SIZE", "atoms_within",
           "search_settings",
           "run_image_search"]
