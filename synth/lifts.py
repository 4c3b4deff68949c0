"""Conic lifts: a quadratic term plus integer multiples of other terms.

``(x - 56)**2 + (y - 40)**2 < 800`` is ``x**2 + y**2 - 112*x - 80*y < -3936``:
the square ``x ** 2`` lifted by ``y ** 2``, ``x`` and ``y`` -- a circle moved
off the origin.  A parabola's vertex (``x**2 - 6*x - 50*y``) and a
hyperbola's centre (``x*y - 20*x - 30*y``) move the same way.  Enumeration
with small constants cannot reach such coefficients, and a two-feature line
cannot hold four terms; here they are fitted.  A logistic regression over
the term and its lifts gives a direction, scaled so that the term's
coefficient is one and rounded to integers; a local search over neighbouring
integer coefficients then keeps the one whose best threshold explains the
most weight.  The fitted lift is printed centred again where its
coefficients allow (``(x - 56) ** 2 + (y - 40) ** 2``).
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np

from dsl.program import Apply, Const, Program, apply
from dsl.types import INT
from synth.thresholds import best_thresholds

#: Local-search steps over integer coefficients, at most.
_STEPS = 60


def conic_lifts(inputs: Sequence[Program]) -> list[tuple[Program, list[Program]]]:
    """Each quadratic term of the inputs with the terms a lift adds to it: the
    square ``x ** 2`` with the other squares and the inputs (circles, ellipses,
    hyperbolas and parabolas with axes along the inputs), the product
    ``x * y`` with the inputs (hyperbolas about any centre)."""
    squares = [apply("square", v) for v in inputs]
    out = [(sq, [t for t in squares if t != sq] + list(inputs)) for sq in squares]
    out += [(apply("mul", a, b), list(inputs))
            for i, a in enumerate(inputs) for b in inputs[i + 1:]]
    return out


def fit_lift(feature: np.ndarray, inputs: np.ndarray, z: np.ndarray,
             w: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """Integer coefficients ``a`` making ``feature + a @ inputs`` the best
    one-cut predicate of ``z`` (weights ``w``), with that cut's correct weight;
    ``None`` when the direction barely uses the feature or all of ``a`` is zero.

    ``inputs`` is (k, rows).
    """
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(z, dtype=bool)
    if z.all() or not z.any():
        return None
    columns = np.vstack([feature, inputs]).astype(np.float64)
    spread = columns.std(axis=1)
    if (spread == 0).any():
        return None
    scaled = ((columns - columns.mean(axis=1, keepdims=True)) / spread[:, None]).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separable labels: the fit need not converge
        model = LogisticRegression(C=1e4, max_iter=300).fit(scaled, z, sample_weight=w)
    raw = model.coef_[0] / spread
    if abs(model.coef_[0][0]) < 1e-3 * np.abs(model.coef_[0]).max():
        return None
    start = tuple(int(v) for v in np.round(raw[1:] / raw[0]))
    coefficients, score = _climb(start, np.asarray(feature, np.float64),
                                 np.asarray(inputs, np.float64), z, w)
    if not any(coefficients):
        return None
    return coefficients, score


def _climb(start: tuple[int, ...], feature: np.ndarray, inputs: np.ndarray, z: np.ndarray,
           w: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Pattern search over integer coefficient vectors: hill-climb with steps of
    eight units, then four, two and one (a plateau of single steps can hide a
    better fit a few units away)."""
    unit = np.array([m for m in itertools.product((-1, 0, 1), repeat=len(start)) if any(m)])
    current = np.array(start)
    score = float(best_thresholds((feature + current @ inputs)[None, :], z, w)[0])
    for step in (8, 4, 2, 1):
        for _ in range(_STEPS):
            trial = current + step * unit
            scores = best_thresholds(feature[None, :] + trial @ inputs, z, w)
            best = int(np.argmax(scores))
            if scores[best] <= score + 1e-9:
                break
            current, score = trial[best], float(scores[best])
    return tuple(int(v) for v in current), score


def lift_program(feature: Program, inputs: Sequence[Program],
                 coefficients: Sequence[int]) -> Program:
    """``feature + a1 * x1 + ...`` up to a constant (which a threshold absorbs),
    in centred form where the coefficients allow: ``x ** 2 - 112 * x`` as
    ``(x - 56) ** 2``, ``x * y - 20 * x - 30 * y`` as ``(x - 30) * (y - 20)``.
    The centred form is smaller, and its constants are the ones a person
    writes, so rounding them (:mod:`synth.simplify`) rounds the right numbers."""
    nonzero = [(t, int(a)) for t, a in zip(inputs, coefficients) if a]
    linear = {t: a for t, a in nonzero if not isinstance(t, Apply)}
    squares = {t.args[0]: a for t, a in nonzero if isinstance(t, Apply)}
    terms: list[tuple[Program, int]] = []
    if feature.primitive.name == "mul":  # x * y + p * x + q * y: (x + q) * (y + p)
        first, second = feature.args
        terms.append((apply("mul", _shifted(first, linear.pop(second, 0)),
                            _shifted(second, linear.pop(first, 0))), 1))
    else:
        squares = {feature.args[0]: 1, **squares}
    for var, a in squares.items():
        b = linear.pop(var, 0)
        if b % (2 * a) == 0:
            terms.append((apply("square", _shifted(var, b // (2 * a))), a))
        else:
            terms += [(apply("square", var), a), (var, b)]
    terms += list(linear.items())
    out = terms[0][0]
    for term, a in terms[1:]:
        scaled = term if abs(a) == 1 else apply("mul", Const(abs(a), INT), term)
        out = apply("add" if a > 0 else "sub", out, scaled)
    return out


def _shifted(var: Program, k: int) -> Program:
    """``var + k``, written ``var - |k|`` for negative ``k``."""
    if k == 0:
        return var
    return apply("add" if k > 0 else "sub", var, Const(abs(k), INT))
