"""Answer factors: what a network's answers on a whole grid say about each input.

A network's labels on every pair of a ``p x q`` grid form a table.  Its top
principal directions across the rows score each value of the first input,
and across the columns each value of the second: functions of one number,
read from the answers alone, as :func:`~oracles.transformer_features.embedding_pcs`
reads them from the weights.  When the labels are a threshold of ``f(x) + g(y)``
(or of a few such terms), ``f`` and ``g`` are among the factors; when the rows
fall into classes that behave alike, the factors tell the classes apart.
They become lookup-table leaves (:func:`~oracles.transformer_features.feature_leaves`),
so an atom like ``net_x_pc1(x) > 0.8`` reads "the rows the network answers like
the rows with a high first factor".

Only the cells a search fits are read: the others (its held-out rows) are
filled by iterated low-rank reconstruction (hard impute), so the factors
carry nothing of the held-out labels into the search.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from oracles.transformer_features import Table, principal_scores


def impute_low_rank(table: np.ndarray, known: np.ndarray, rank: int,
                    iterations: int = 30) -> np.ndarray:
    """``table`` with the cells where ``known`` is false filled in from the others.

    Hard impute: start from the column means of the known cells (the overall
    mean for a column with none), then repeatedly replace the unknown cells by
    the rank-``rank`` SVD reconstruction of the current table.  The known cells
    are never changed, and the unknown ones are never read."""
    table = np.asarray(table, dtype=np.float64)
    known = np.asarray(known, dtype=bool)
    if table.ndim != 2 or known.shape != table.shape:
        raise ValueError(f"need a 2-D table and a mask of the same shape; got "
                         f"{table.shape} and {known.shape}")
    if not known.any():
        raise ValueError("no known cells to impute from")
    counts = known.sum(axis=0)
    overall = table[known].mean()
    means = np.where(counts > 0, np.where(known, table, 0.0).sum(axis=0) / np.maximum(counts, 1),
                     overall)
    filled = np.where(known, table, means[None, :])
    if known.all():
        return filled
    for _ in range(iterations):
        u, s, vt = np.linalg.svd(filled - filled.mean(axis=0), full_matrices=False)
        low = (u[:, :rank] * s[:rank]) @ vt[:rank] + filled.mean(axis=0)
        filled = np.where(known, table, low)
    return filled


def answer_factors(labels: np.ndarray, shape: tuple[int, int], k: int = 4, *,
                   inputs: tuple[str, str] = ("x", "y"), prefix: str = "net",
                   known: np.ndarray | None = None) -> list[Table]:
    """The top ``k`` factors of the answer table over each input, as one-number tables.

    ``labels``: the answers on the grid in C order (``shape[0] * shape[1]`` of
    them); ``known``: which of them may be read (the same length; ``None``: all).
    Tables are named ``{prefix}_{input}_pc{i}`` and apply to that input only."""
    answers, mask = answer_grid(labels, shape, known, "answer factors")
    if not np.isfinite(answers).all():
        raise ValueError("answer factors need finite labels")
    table = impute_low_rank(answers, mask, rank=max(k, 1))
    out: list[Table] = []
    for name, matrix in zip(inputs, (table, table.T)):
        scores, shares = principal_scores(matrix, k)
        out += [Table(f"{prefix}_{name}_pc{i}", scores[i],
                      f"principal direction {i} of the {prefix} answers across the values of "
                      f"{name} ({shares[i]:.1%} of their variance)", float(shares[i]), (name,))
                for i in range(len(scores))]
    return out


def answer_grid(labels: np.ndarray, shape: tuple[int, int], known: np.ndarray | None,
                what: str) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` (C order) and the mask ``known`` of those that may be read (``None``:
    all) as ``shape`` tables, or a clear error naming ``what`` needs them."""
    p, q = shape
    answers = np.asarray(labels, dtype=np.float64).ravel()
    if answers.size != p * q:
        raise ValueError(f"{what} need {p * q} labels for a {p} x {q} grid, got {answers.size}")
    mask = np.ones(p * q, dtype=bool) if known is None else np.asarray(known, dtype=bool).ravel()
    if mask.size != p * q:
        raise ValueError(f"the mask of known answers needs {p * q} entries, got {mask.size}")
    return answers.reshape(p, q), mask.reshape(p, q)


def known_mask(n: int, held_out: Sequence[int]) -> np.ndarray:
    """A mask of ``n`` cells, false on ``held_out``."""
    mask = np.ones(n, dtype=bool)
    mask[np.asarray(held_out, dtype=np.int64)] = False
    return mask
