"""Leaves from a grid oracle's answers, built so that a search's held-out rows stay unread.

:mod:`oracles.answer_factors` turns the answers on a whole 2-D grid into
one-number tables (the answer table's principal directions over each input),
:mod:`oracles.answer_steps` into each row's and column's step fit; this module
hands them to a :class:`~synth.search.Synthesizer` as leaves, reading only the
cells that synthesizer will fit.
"""
from __future__ import annotations

import numpy as np

from dsl.domains import GridDomain
from dsl.program import Program
from oracles.answer_factors import answer_factors, known_mask
from oracles.answer_steps import answer_steps
from oracles.transformer_features import Table, feature_leaves
from synth.search import Synthesizer, holdout_split


def answer_tables(labels: np.ndarray, domain: GridDomain, synthesizer: Synthesizer, *,
                  factors: int = 0, steps: int = 0, prefix: str = "net",
                  weights: np.ndarray | None = None) -> list[Table]:
    """The top ``factors`` factors over each input of the answers ``labels`` (on all
    of ``domain``, in C order) and their step fits with at most ``steps`` changes
    per row (none for 0; a disagreement with an answer costs its ``weights``, the
    network's confidence, 1 each by default), from the cells ``synthesizer`` fits."""
    if factors <= 0 and steps <= 0:
        return []
    if len(domain.shape) != 2:
        raise ValueError(f"answer factors and steps need a 2-D grid, got {domain}")
    held, _ = holdout_split(len(labels), synthesizer.holdout,
                            np.random.default_rng(synthesizer.seed))
    known = known_mask(len(labels), held)
    out: list[Table] = []
    if factors > 0:
        out += answer_factors(labels, domain.shape, factors, inputs=domain.names,
                              prefix=prefix, known=known)
    if steps > 0:
        out += answer_steps(labels, domain.shape, steps, inputs=domain.names, prefix=prefix,
                            known=known, weights=weights)
    return out


def answer_leaves(labels: np.ndarray, domain: GridDomain, synthesizer: Synthesizer, *,
                  factors: int = 0, steps: int = 0, prefix: str = "net",
                  weights: np.ndarray | None = None) -> list[Program]:
    """:func:`answer_tables` as leaves for ``Synthesizer(features=...)``."""
    return feature_leaves(answer_tables(labels, domain, synthesizer, factors=factors,
                                        steps=steps, prefix=prefix, weights=weights),
                          domain.names)
