"""Xor decomposition over two inputs: labels ``z(u, v) = g(u) xor h(v)``.

An xor of conditions on different inputs, ``(x > 50) != (y > 50)`` xored with
``(x % 10 < 5) != (y % 10 < 5)``, has no marginal signal: no atom, and no
pair of atoms, explains any label alone, so composition has nothing to grow
from.  Yet the labels are a table over the two inputs' values of rank one
over GF(2) -- an Ashenhurst decomposition in logic-synthesis terms -- and
each factor is a function of one input, found by a search of its own.

The factors are fitted by alternation: ``h`` from the most observed value of
``u``, then each of ``g`` and ``h`` in turn as the weighted majority that
agrees with the labels given the other.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Alternations of the two factors.
_ROUNDS = 4
#: Fewest rows per value of either input for a decomposition to mean anything.
_ROWS_PER_VALUE = 10


@dataclass(frozen=True)
class XorSplit:
    """Labels as ``g(first) xor h(second)``: each factor as its input's
    distinct values and the factor's value at each."""

    first: str
    first_values: np.ndarray
    first_labels: np.ndarray
    second: str
    second_values: np.ndarray
    second_labels: np.ndarray
    agreement: float  # with the labels it was fitted to


def xor_split(env: Mapping[str, np.ndarray], z: np.ndarray,
              min_agreement: float = 0.97, max_values: int = 4096) -> XorSplit | None:
    """The xor decomposition of ``z`` over the two inputs of ``env``, when it
    agrees with at least ``min_agreement`` of the labels, leaves at most a
    tenth of the constant answer's errors (rare positives are not an xor), and
    neither factor is constant (a function of one input needs no
    decomposition)."""
    names = [k for k, v in env.items() if np.asarray(v).ndim == 1]
    if len(names) != 2 or len(env) != 2:
        return None
    (u_values, u), (v_values, v) = (np.unique(env[k], return_inverse=True) for k in names)
    if max(len(u_values), len(v_values)) > max_values:
        return None
    if len(u) < _ROWS_PER_VALUE * (len(u_values) + len(v_values)):
        return None  # too few rows per factor value: an xor of two tables fits anything
    z = np.asarray(z, dtype=bool)
    shape = (len(u_values), len(v_values))
    cell = u * shape[1] + v
    pos = np.bincount(cell, z, minlength=shape[0] * shape[1]).reshape(shape)
    neg = np.bincount(cell, ~z, minlength=shape[0] * shape[1]).reshape(shape)
    reference = np.argmax((pos + neg).sum(axis=1))  # g is 0 there, so h is its row
    h = pos[reference] > neg[reference]
    for _ in range(_ROUNDS):
        # g(u) = 1 where the labels mostly differ from h; then h likewise from g
        g = np.where(h, neg, pos).sum(axis=1) > np.where(h, pos, neg).sum(axis=1)
        h = np.where(g[:, None], neg, pos).sum(axis=0) > np.where(g[:, None], pos, neg).sum(axis=0)
    agreement = float(np.mean((g[u] ^ h[v]) == z))
    constant_errors = min(z.mean(), 1 - z.mean())
    if (agreement < min_agreement or 1 - agreement > 0.1 * constant_errors
            or g.all() or not g.any() or h.all() or not h.any()):
        return None
    return XorSplit(names[0], u_values, g, names[1], v_values, h, agreement)
