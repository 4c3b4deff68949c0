"""Answer steps: each row of a network's answer table as a step function.

Many grid labellings are, row by row, a few runs: the label of row ``x`` starts
at some value and changes at a few places along ``y``.  A network trained on
such labels gets most cells right and scatters its mistakes; the step function
with at most ``K`` changes that disagrees least with a row's answers keeps the
runs and drops the scatter.  Its parts are functions of one number: the start
value of each row, and where its ``j``-th change falls (``{prefix}_x_start``,
``{prefix}_x_cut0``, ...).  As lookup-table leaves they let a search say
``start(x) xor y > cut0(x) xor y > cut1(x)`` and, more usefully, find the rows
whose cuts follow a formula.  The same is done over the columns.

Only the cells a search fits are read (``known``): the others cost nothing
either way, and a change between two known cells is put halfway between them.
"""
from __future__ import annotations

import numpy as np

from oracles.answer_factors import answer_grid
from oracles.transformer_features import Table


def step_fit(table: np.ndarray, known: np.ndarray, changes: int,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The best step function with at most ``changes`` changes for each row of a 0/1 table.

    Returns ``(start, cuts)``: each row's first value, and a ``(rows, changes)``
    array of where its changes fall in column coordinates (``y > cut`` is past
    the change); a row with fewer changes has the rest at ``columns - 0.5``,
    past its last cell.  Dynamic programming over the columns, all rows at
    once; a disagreement costs its cell's ``weights`` (the network's confidence
    in that answer; 1 each by default).  Cells where ``known`` is false are never
    read, and a change among them is put halfway between the known cells on
    either side.  Among the cheapest fits, one with the fewest changes is taken."""
    table = np.asarray(table)
    known = np.asarray(known, dtype=bool)
    if table.ndim != 2 or known.shape != table.shape:
        raise ValueError(f"need a 2-D table and a mask of the same shape; got "
                         f"{table.shape} and {known.shape}")
    if changes < 0:
        raise ValueError(f"the number of changes must be >= 0, got {changes}")
    if weights is not None and np.shape(weights) != table.shape:
        raise ValueError(f"need a weight per cell, {table.shape}; got {np.shape(weights)}")
    rows, cols = table.shape
    values = np.array([0, 1])
    w = np.ones(table.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    miss = np.where(known[:, :, None] & (table[:, :, None] != values), w[:, :, None], 0.0)
    big = miss.sum() + 1.0
    cost = np.full((rows, changes + 1, 2), big)
    cost[:, 0, :] = miss[:, 0]
    switched = np.zeros((cols, rows, changes + 1, 2), dtype=bool)
    for j in range(1, cols):
        flip = np.full_like(cost, big)
        flip[:, 1:, :] = cost[:, :-1, ::-1]
        switched[j] = flip < cost
        cost = np.minimum(cost, flip) + miss[:, j, None, :]
    best = cost.reshape(rows, -1).argmin(axis=1)
    used, value = np.divmod(best, 2)
    cuts = np.full((rows, changes), cols - 0.5)
    index = np.arange(cols)
    before = np.maximum.accumulate(np.where(known, index, -1), axis=1)  # last known <= j
    after = np.minimum.accumulate(np.where(known, index, cols)[:, ::-1], axis=1)[:, ::-1]
    at = np.arange(rows)
    for j in range(cols - 1, 0, -1):
        moved = switched[j, at, used, value]
        r = np.flatnonzero(moved)
        low = np.where(before[r, j - 1] >= 0, before[r, j - 1], j - 1)
        high = np.where(after[r, j] < cols, after[r, j], j)
        cuts[r, used[r] - 1] = (low + high) / 2
        used = used - moved
        value = np.where(moved, 1 - value, value)
    return value, cuts


def answer_steps(labels: np.ndarray, shape: tuple[int, int], changes: int = 2, *,
                 inputs: tuple[str, str] = ("x", "y"), prefix: str = "net",
                 known: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> list[Table]:
    """Each row's and each column's step fit of the 0/1 answers on a grid, as one-number tables.

    ``labels``: the answers in C order; ``known``: which may be read (``None``:
    all); ``weights``: what a disagreement with each costs (``None``: 1 each).
    Per input, ``{prefix}_{input}_start`` and ``{prefix}_{input}_cut{j}`` for
    ``j < changes``; their ``share`` is the part of the known answers the fit
    reproduces."""
    answers, mask = answer_grid(labels, shape, known, "answer steps")
    if not np.isin(answers, (0, 1)).all():
        raise ValueError("answer steps need 0/1 labels")
    p, q = shape
    cost = np.ones(p * q) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if cost.size != p * q or not (np.isfinite(cost).all() and (cost >= 0).all()):
        raise ValueError(f"answer steps need {p * q} finite weights >= 0")
    table, cost = answers.astype(np.int64), cost.reshape(p, q)
    out: list[Table] = []
    for (name, other), matrix, seen, w in zip((inputs, inputs[::-1]), (table, table.T),
                                              (mask, mask.T), (cost, cost.T)):
        start, cuts = step_fit(matrix, seen, changes, w)
        fitted = step_values(start, cuts, matrix.shape[1])
        share = float((fitted == matrix)[seen].mean()) if seen.any() else 0.0
        out.append(Table(f"{prefix}_{name}_start", start.astype(np.float64),
                         f"the {prefix} answer at {other} = 0 in each row of {name}, fitted with "
                         f"at most {changes} changes along {other}", share, (name,)))
        out += [Table(f"{prefix}_{name}_cut{j}", cuts[:, j],
                      f"where change {j} of the {prefix} answers along {other} falls in each "
                      f"row of {name} ({other} > cut is past it)", share, (name,))
                for j in range(changes)]
    return out


def step_values(start: np.ndarray, cuts: np.ndarray, columns: int) -> np.ndarray:
    """The 0/1 table that ``start`` and ``cuts`` (from :func:`step_fit`) describe."""
    past = np.arange(columns)[None, None, :] > cuts[:, :, None]
    return (start[:, None] + past.sum(axis=1)) % 2
