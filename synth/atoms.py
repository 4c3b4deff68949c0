"""Fitted predicates as DSL programs, with readable thresholds.

A :class:`~synth.thresholds.Split` says which of a feature's observed values
a predicate holds on; the cut between two observed values can be anywhere in
their gap.  Here it becomes a program: ``f < t``, ``f > t``, ``f == v``,
``t1 < f < t2`` (as two comparisons) or their complements, with each ``t``
the simplest number in its gap.  A difference compared with zero prints as
a comparison of its two sides (``y ** 3 > 40 * x ** 2``, not
``y ** 3 - 40 * x ** 2 > 0``): two nodes fewer, so exact lines through the
origin are not outranked by integer-division imitations of the same size.
"""
from __future__ import annotations

import numpy as np

from dsl.program import Apply, Const, Program, apply
from dsl.types import BOOL, INT, REAL
from synth.numbers import simplest_in
from synth.thresholds import GT, IN, LE, OUT, Split


def atom_size(feature_size: int, kind: str) -> int:
    """Size of the printed predicate (bands print the feature twice)."""
    return feature_size + 2 if kind in (LE, GT) else 2 * feature_size + 5


def atom_program(feature: Program, split: Split, distinct: np.ndarray) -> Program:
    """The predicate ``split`` on ``feature`` as a program."""
    last = len(distinct) - 1
    i, j, kind = split.lo, split.hi, split.kind
    if kind in (IN, OUT) and i == 0 and j == last:  # a band over every value is constant
        return Const(kind == IN, BOOL)
    if kind == IN:
        if i == 0:
            return _below(feature, distinct, j)
        if j == last:
            return _above(feature, distinct, i - 1)
        if i == j and feature.type is INT:
            return _compare("eq", feature, distinct[i])
        return apply("and_", _above(feature, distinct, i - 1), _below(feature, distinct, j))
    if kind == OUT:
        if i == 0:
            return _above(feature, distinct, j)
        if j == last:
            return _below(feature, distinct, i - 1)
        if i == j and feature.type is INT:
            return _compare("ne", feature, distinct[i])
        return apply("or_", _below(feature, distinct, i - 1), _above(feature, distinct, j))
    if i == j and feature.type is INT and kind in (LE, GT):  # one value: x % 6 == 0
        return _compare("eq", feature, distinct[i])
    if kind == LE:
        return _below(feature, distinct, j)
    if kind == GT:
        return _above(feature, distinct, i - 1)
    raise ValueError(f"unknown split kind {kind!r}")


def _below(feature: Program, u: np.ndarray, j: int) -> Program:
    """``feature < t`` holding exactly on values up to ``u[j]``."""
    t = simplest_in(float(u[j]), float(u[j + 1]), lo_open=True, hi_open=False,
                    integer=feature.type is INT)
    return _compare("lt", feature, t)


def _above(feature: Program, u: np.ndarray, j: int) -> Program:
    """``feature > t`` holding exactly on values above ``u[j]``."""
    t = simplest_in(float(u[j]), float(u[j + 1]), lo_open=False, hi_open=True,
                    integer=feature.type is INT)
    return _compare("gt", feature, t)


def _compare(op: str, feature: Program, t: float) -> Program:
    if t == 0 and isinstance(feature, Apply) and feature.primitive.name == "sub":
        return apply(op, *feature.args)
    return apply(op, feature, _constant(t, feature))


def _constant(value: float, feature: Program) -> Const:
    if feature.type is INT and float(value).is_integer():
        return Const(int(value), INT)
    return Const(float(value), REAL)
