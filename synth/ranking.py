"""Choosing among equally good programs by what the network says about their features.

The engine picks the program with the highest penalised fidelity
(``fidelity - penalty * size``).  Programs within a small ``tolerance`` of
each other on that score explain the labels equally well; among them, the
one whose features the network *represents* (decodable from some layer on
held-out inputs) and *uses* (its label follows counterfactual edits of them)
is the better explanation.  So the ranking is: penalised fidelity first, ties
within ``tolerance`` broken by the :func:`evidence_score`.

:func:`rerank` is the rule; :func:`choose_image_program` and
:func:`choose_grid_program` gather the evidence for the candidates it can
reorder (:func:`contenders`) and apply it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from dsl.domains import GridDomain
from dsl.program import Program, apply
from synth.causal import CausalReport, counterfactual_grid, counterfactual_images, patching
from synth.evidence import decodability, program_features
from synth.image_search import IMAGE_VAR, ImageSearchReport, search_split
from synth.results import Candidate

#: Penalised fidelities closer than this are a tie the evidence breaks.
DEFAULT_TOLERANCE = 1e-3

Fidelity = Callable[[Candidate], float]


def evidence_score(program: Program, decodability: Mapping | None = None,
                   counterfactual: float | None = None) -> float | None:
    """How well the network's internals support ``program``, in [0, 1]: the mean
    of what is known of

    * *representation*: over the program's features, the worst of each
      feature's best held-out R^2 over layers (clipped to [0, 1]), from a
      :func:`synth.evidence.decodability` result;
    * *use*: the counterfactual fidelity of edits of the program's atoms
      (:mod:`synth.causal`).

    A program is as well supported as its least represented feature.  None
    when neither is known (no feature decoded, no edit made).
    """
    parts = []
    if decodability:
        r2 = {entry["feature"]: entry["r2"] for entry in decodability.get("features", [])}
        best = [max(r2[str(f)].values()) for f in program_features(program)
                if r2.get(str(f))]
        if best:
            parts.append(float(np.clip(min(best), 0.0, 1.0)))
    if counterfactual is not None:
        parts.append(float(counterfactual))
    return float(np.mean(parts)) if parts else None


@dataclass(frozen=True)
class Ranked:
    """A candidate with its primary score and its evidence score."""

    candidate: Candidate
    penalised: float  # fidelity - penalty * size
    evidence: float | None = None  # None: not scored
    details: dict = field(default_factory=dict, compare=False)  # what the score is made of

    def to_json(self) -> dict:
        extras = {"evidence_score": self.evidence, **self.details}
        return {"expression": str(self.candidate.program), "size": self.candidate.size,
                "penalised": round(self.penalised, 6),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in extras.items()}}


@dataclass(frozen=True)
class Ranking:
    """Candidates in their new order, best first, and how they were ordered."""

    entries: tuple[Ranked, ...]
    penalty: float
    tolerance: float
    engine_choice: Candidate  # the engine's pick: penalised fidelity alone, smaller on ties

    @property
    def chosen(self) -> Ranked:
        return self.entries[0]

    def to_json(self, top: int = 10) -> dict:
        return {"rule": f"penalised fidelity (fidelity - {self.penalty:g} * size); candidates "
                        f"within {self.tolerance:g} of each other ordered by evidence score",
                "chosen": str(self.chosen.candidate.program),
                "engine_choice": str(self.engine_choice.program),
                "changed": self.chosen.candidate != self.engine_choice,
                "candidates": [r.to_json() for r in self.entries[:top]]}


def _penalised(c: Candidate, penalty: float, fidelity: Fidelity | None) -> float:
    return (fidelity(c) if fidelity is not None else c.fidelity) - penalty * c.size


def contenders(candidates: Sequence[Candidate], penalty: float, *,
               fidelity: Fidelity | None = None,
               tolerance: float = DEFAULT_TOLERANCE) -> list[Candidate]:
    """The candidates within ``tolerance`` of the best penalised fidelity: those
    whose evidence can decide the choice (``fidelity`` defaults to each
    candidate's own)."""
    if not candidates:
        raise ValueError("no candidates to rank")
    scores = [_penalised(c, penalty, fidelity) for c in candidates]
    top = max(scores)
    return [c for c, s in zip(candidates, scores) if s >= top - tolerance]


def rerank(candidates: Sequence[Candidate], penalty: float,
           scores: Mapping[Candidate, float | None], *, fidelity: Fidelity | None = None,
           tolerance: float = DEFAULT_TOLERANCE,
           details: Mapping[Candidate, dict] | None = None) -> Ranking:
    """``candidates`` ordered by penalised fidelity, each group of near-ties
    (within ``tolerance`` of the group's best) by evidence score.

    ``scores`` maps candidates to their :func:`evidence_score`; a candidate
    without one ranks after the scored candidates it ties with.  Within equal
    evidence, higher penalised fidelity and then smaller size go first.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be non-negative, got {tolerance}")
    details = details or {}
    given = [Ranked(c, _penalised(c, penalty, fidelity), scores.get(c), dict(details.get(c, {})))
             for c in dict.fromkeys(candidates)]
    if not given:
        raise ValueError("no candidates to rank")
    engine = max(given, key=lambda r: (r.penalised, -r.candidate.size)).candidate
    pool = sorted(given, key=lambda r: (-r.penalised, r.candidate.size))
    ordered: list[Ranked] = []
    while pool:
        head = pool[0].penalised
        group = [r for r in pool if r.penalised >= head - tolerance]
        pool = [r for r in pool if r.penalised < head - tolerance]
        ordered += sorted(group, key=lambda r: (r.evidence is None, -(r.evidence or 0.0),
                                                -r.penalised, r.candidate.size))
    return Ranking(tuple(ordered), penalty, tolerance, engine)


# -- the two challenge settings ----------------------------------------------------------

def choose_grid_program(candidates: Sequence[Candidate], oracle, domain: GridDomain,
                        penalty: float, *, fidelity: Fidelity | None = None,
                        tolerance: float = DEFAULT_TOLERANCE, network: str = "network",
                        seed: int = 0) -> tuple[Ranking, CausalReport]:
    """Rank grid programs, scoring each contender by the counterfactual fidelity
    of moves across its atoms' boundaries (:func:`synth.causal.counterfactual_grid`
    on ``oracle``).  Returns the :class:`Ranking` and the chosen program's
    :class:`~synth.causal.CausalReport`."""
    reports = {c: counterfactual_grid(oracle, c.program, domain, network=network, seed=seed)
               for c in contenders(candidates, penalty, fidelity=fidelity, tolerance=tolerance)}
    scores = {c: evidence_score(c.program, None, r.fidelity) for c, r in reports.items()}
    details = {c: {"counterfactual_fidelity": r.fidelity} for c, r in reports.items()}
    ranking = rerank(candidates, penalty, scores, fidelity=fidelity, tolerance=tolerance,
                     details=details)
    return ranking, reports[ranking.chosen.candidate]


def choose_image_program(report: ImageSearchReport, images: np.ndarray, labels: np.ndarray,
                         oracle, *, tolerance: float = DEFAULT_TOLERANCE, max_images: int = 500,
                         patch_pairs: int = 300, network: str = "network",
                         seed: int = 0) -> tuple[ImageSearchReport, Ranking]:
    """Re-rank an :class:`~synth.image_search.ImageSearchReport`'s front by evidence.

    Each contender is scored by its features' decodability (on the images no
    template was fitted on, as the pipeline measures it) and the
    counterfactual fidelity of image edits across its atoms, on the search's
    held-out images (no template and no threshold was fitted on them).  The
    chosen program's features are then patched inside the network
    (:func:`synth.causal.patching`) on those images too.  Returns the report
    for the chosen program -- its evidence holding ``causal`` (the
    counterfactual and patching reports, JSON) and ``evidence_score`` -- and
    the :class:`Ranking`.
    """
    arr = np.asarray(images, dtype=np.float64)
    z = np.asarray(labels).astype(np.int64)
    if z.shape != (len(arr),):
        raise ValueError(f"labels must have shape ({len(arr)},), got {z.shape}")
    _, held = search_split(len(arr), seed)
    if len(held) < 20:
        raise ValueError(f"{len(arr)} images leave {len(held)} held out; the causal tests "
                         f"need at least 20")
    unseen = np.setdiff1d(np.arange(len(arr)), report.template_rows)
    front = report.result.pareto
    penalty = float(report.result.settings.get("complexity_penalty", 0.0))
    decoded, edits, scores, details = {}, {}, {}, {}
    for c in contenders(front, penalty, tolerance=tolerance):
        if c == report.best and report.evidence:
            decoded[c] = report.evidence
        else:
            decoded[c] = _decodability(oracle, arr[unseen], c.program, seed)
        edits[c] = counterfactual_images(oracle, c.program, arr[held], max_images=max_images,
                                         network=network, seed=seed)
        scores[c] = evidence_score(c.program, decoded[c], edits[c].fidelity)
        details[c] = {"counterfactual_fidelity": edits[c].fidelity}
    ranking = rerank(front, penalty, scores, tolerance=tolerance, details=details)
    chosen = ranking.chosen.candidate
    if chosen != report.best:
        report = _with_best(report, chosen, arr, z, decoded[chosen])
    causal = [edits[chosen].to_json()]
    if program_features(chosen.program):
        causal.append(patching(oracle, chosen.program, {"image": arr[held].astype(np.float32)},
                               max_pairs=patch_pairs, network=network, seed=seed).to_json())
    evidence = {**report.evidence, "evidence_score": ranking.chosen.to_json()["evidence_score"],
                "causal": causal}
    return replace(report, evidence=evidence), ranking


def _decodability(oracle, images: np.ndarray, program: Program, seed: int) -> dict:
    """Decodability as the image pipeline measures it (beside ``ink(image)``)."""
    if len(images) < 10:
        return {}
    return decodability(oracle, {"image": images.astype(np.float32)}, program,
                        features=[apply("ink", IMAGE_VAR)], seed=seed)


def _with_best(report: ImageSearchReport, chosen: Candidate, images: np.ndarray,
               labels: np.ndarray, decoded: dict) -> ImageSearchReport:
    """The report with ``chosen`` as its best program and its figures recomputed."""
    pred = np.asarray(chosen.program.evaluate({"image": images})).astype(np.int64)
    unseen = np.setdiff1d(np.arange(len(images)), report.template_rows)
    fidelity = float((pred == labels).mean())
    unseen_fidelity = float((pred[unseen] == labels[unseen]).mean()) if len(unseen) else None
    out = replace(report, result=replace(report.result, best=chosen), fidelity=fidelity,
                  fidelity_unseen=unseen_fidelity)
    evidence = {**decoded, "fidelity_all_queries": fidelity,
                "fidelity_unseen_queries": unseen_fidelity, "template_sources": out.sources()}
    return replace(out, evidence=evidence)


__all__ = ["DEFAULT_TOLERANCE", "evidence_score", "Ranked", "Ranking", "contenders", "rerank",
           "choose_grid_program", "choose_image_program"]
