"""Leaves from a grid oracle's answers, built so that a search's held-out rows stay unread.

:mod:`oracles.answer_factors` turns the answers on a whole 2-D grid into
one-number tables (the answer table's principal directions over each input);
this module hands them to a :class:`~synth.search.Synthesizer` as leaves,
reading only the cells that synthesizer will fit.
"""
from __future__ import annotations

import numpy as np

from dsl.domains import GridDomain
from dsl.program import Program
from oracles.answer_factors import answer_factors, known_mask
from oracles.transformer_features import Table, feature_leaves
from synth.search import Synthesizer, holdout_split


def answer_factor_tables(labels: np.ndarray, domain: GridDomain, synthesizer: Synthesizer,
                         k: int, prefix: str = "net") -> list[Table]:
    """The top ``k`` factors over each input of the answers ``labels`` (on all of
    ``domain``, in C order), from the cells ``synthesizer`` fits."""
    if k <= 0:
        return []
    if len(domain.shape) != 2:
        raise ValueError(f"answer factors need a 2-D grid, got {domain}")
    held, _ = holdout_split(len(labels), synthesizer.holdout,
                            np.random.default_rng(synthesizer.seed))
    return answer_factors(labels, domain.shape, k, inputs=domain.names, prefix=prefix,
                          known=known_mask(len(labels), held))


def answer_factor_leaves(labels: np.ndarray, domain: GridDomain, synthesizer: Synthesizer,
                         k: int, prefix: str = "net") -> list[Program]:
    """:func:`answer_factor_tables` as leaves for ``Synthesizer(features=...)``."""
    return feature_leaves(answer_factor_tables(labels, domain, synthesizer, k, prefix),
                          domain.names)
