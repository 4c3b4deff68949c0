"""How much a network's answer counts: its confidence as a label's weight.

A network trained on a program is wrong mostly where it is unsure: on 30 of
the 36 grid-suite MLPs that disagree with their hidden program anywhere, at
least 90% of those pairs lie among the tenth of the grid with the smallest
logit margin (``python -m benchmarks.doubt``).  Counting those labels less
lets the program that explains the network's confident answers beat the one
that also copies its doubtful ones, without throwing any label away: a
doubtful label still pins a boundary where nothing else does.  A rare true
feature the network is unsure of (a sparse lattice of points) counts less
too, which is why weighting is an option, not the default.
"""
from __future__ import annotations

import numpy as np

#: Labels whose margin is below this quantile of all margins count less.
DOUBT_QUANTILE = 0.1
#: The least a label counts (weights must stay positive).
FLOOR = 0.05


def logit_margin(logits: np.ndarray) -> np.ndarray:
    """How far each answer is from the decision: ``|logit_1 - logit_0|``, or
    ``|logit|`` for a network with one output."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] not in (1, 2):
        raise ValueError(f"expected logits of shape (N, 1) or (N, 2), got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("the network's logits contain NaN or inf")
    diff = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
    return np.abs(diff)


def confidence_weights(margin: np.ndarray, quantile: float = DOUBT_QUANTILE,
                       floor: float = FLOOR) -> np.ndarray:
    """1 for a label whose margin reaches the ``quantile`` of all margins; below
    it, in proportion to the margin (at least ``floor``)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    margin = np.abs(np.asarray(margin, dtype=np.float64))
    reference = float(np.quantile(margin, quantile)) if len(margin) else 0.0
    if reference <= 0:
        return np.ones(len(margin))
    return np.maximum(np.minimum(margin, reference) / reference, floor)


def oracle_weights(oracle, inputs) -> np.ndarray | None:
    """Confidence weights of ``oracle``'s answers on ``inputs``; None for an
    oracle without logits (a label table: every label counts the same)."""
    logits = oracle.logits(inputs)
    return None if logits is None else confidence_weights(logit_margin(logits))
