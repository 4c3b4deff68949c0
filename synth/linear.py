"""Two-feature linear atoms: ``f + c * g > d`` with the ratio ``c`` fitted.

The boundary of many labelling programs is a line in the plane of two
features (``y > 0.02 * x**2 + 5`` in the plane of ``y`` and ``x**2``;
``max(x, y) > 2 * min(x, y)``).  For a pair of features we start from the
Fisher discriminant direction, refine the angle by a local scan that
maximises threshold accuracy, then replace ``c`` by the simplest number
that loses no accuracy: a fraction of small denominator (``3*x + 2*y``
rather than ``x + 0.664*y``), else the fewest significant digits.  ``d`` is
left to the threshold fitter.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dsl.program import Const, Program, apply
from dsl.types import INT, REAL
from synth.numbers import round_significant
from synth.thresholds import best_threshold


@dataclass(frozen=True)
class LinearFit:
    """``first + ratio * second`` separates the labels with ``correct`` weight right."""

    first: int
    second: int
    ratio: Fraction | float
    correct: float


def _standardise(f: np.ndarray, g: np.ndarray):
    sf, sg = f.std(), g.std()
    if sf == 0 or sg == 0:
        return None
    return (f - f.mean()) / sf, (g - g.mean()) / sg, sf, sg


def fisher_angle(fs: np.ndarray, gs: np.ndarray, z: np.ndarray) -> float | None:
    """Angle of Fisher's discriminant direction in the standardised plane."""
    if z.all() or not z.any():
        return None
    diff = np.array([fs[z].mean() - fs[~z].mean(), gs[z].mean() - gs[~z].mean()])
    cov = np.cov(np.stack([fs, gs])) + 1e-6 * np.eye(2)
    lda = np.linalg.solve(cov, diff)
    return float(np.arctan2(lda[1], lda[0]))


def screen_pair(f: np.ndarray, g: np.ndarray, z: np.ndarray, w: np.ndarray) -> float:
    """Cheap score of a pair: threshold accuracy along the Fisher direction."""
    std = _standardise(f, g)
    zb = np.asarray(z, dtype=bool)
    if std is None:
        return -np.inf
    fs, gs, _, _ = std
    theta = fisher_angle(fs, gs, zb)
    if theta is None:
        return -np.inf
    return best_threshold(np.cos(theta) * fs + np.sin(theta) * gs, zb, w)


def fit_pair(f: np.ndarray, g: np.ndarray, z: np.ndarray, w: np.ndarray,
             refinements: int = 3, coarse: int = 12) -> tuple[float, float, float] | None:
    """Best direction ``(a, b)`` for ``a*f + b*g`` (raw units) and its accuracy."""
    std = _standardise(f, g)
    zb = np.asarray(z, dtype=bool)
    if std is None:
        return None
    fs, gs, sf, sg = std
    start = fisher_angle(fs, gs, zb)
    if start is None:
        return None

    def score(theta: float) -> float:
        return best_threshold(np.cos(theta) * fs + np.sin(theta) * gs, zb, w)

    angles = [start + k * np.pi / coarse for k in range(coarse)]
    best_theta = max(angles, key=score)
    width = np.pi / coarse
    for _ in range(refinements):
        local = [best_theta + width * t for t in np.linspace(-1, 1, 9)]
        best_theta = max(local, key=score)
        width /= 4
    a, b = np.cos(best_theta) / sf, np.sin(best_theta) / sg
    return float(a), float(b), score(best_theta)


#: Largest denominator tried for a fractional ratio.
MAX_DENOMINATOR = 12


def simple_ratios(c: float):
    """Numbers near ``c`` from simplest up: fractions of denominator 1, 2, ...,
    ``MAX_DENOMINATOR``, then ``c`` rounded to 1, 2, 3, 4 and 6 significant digits."""
    seen = set()
    exact = Fraction(c)
    for d in range(1, MAX_DENOMINATOR + 1):
        r = exact.limit_denominator(d)
        if r not in seen:
            seen.add(r)
            yield r
    for digits in (1, 2, 3, 4, 6):
        rounded = round_significant(c, digits)
        if rounded not in seen:
            seen.add(rounded)
            yield rounded


def ratio_candidates(a: float, b: float, f: np.ndarray, g: np.ndarray, z, w,
                     target: float, tolerance: float) -> Fraction | float | None:
    """The simplest ratio ``c`` with ``f + c*g`` scoring within ``tolerance`` of ``target``."""
    if a == 0:
        return None
    c = b / a
    for ratio in simple_ratios(c):
        if ratio != 0 and best_threshold(f + float(ratio) * g, z, w) >= target - tolerance:
            return ratio
    return c


def fit_linear_atoms(values: np.ndarray, pairs: list[tuple[int, int]], z: np.ndarray,
                     w: np.ndarray, tolerance: float = 0.0) -> list[LinearFit]:
    """Fit every pair ``(i, j)`` of rows of ``values``; orientation picks the stabler ratio."""
    fits = []
    for i, j in pairs:
        f, g = values[i], values[j]
        direction = fit_pair(f, g, z, w)
        if direction is None:
            continue
        a, b, correct = direction
        if abs(a) * f.std() < abs(b) * g.std():  # express as g + c * f
            i, j, f, g, a, b = j, i, g, f, b, a
        ratio = ratio_candidates(a, b, f, g, z, w, correct, tolerance)
        if ratio is None or not np.isfinite(float(ratio)):
            continue
        fits.append(LinearFit(i, j, ratio, best_threshold(f + float(ratio) * g, z, w)))
    return fits


def line_program(f: Program, g: Program, ratio: Fraction | float) -> Program:
    """``f + ratio * g`` as a program; a fraction ``p/q`` prints as ``q*f + p*g``."""
    if isinstance(ratio, Fraction):
        p, q = ratio.numerator, ratio.denominator
        left = f if q == 1 else apply("mul", Const(q, INT), f)
        if abs(p) == 1:
            return apply("add" if p > 0 else "sub", left, g)
        return apply("add" if p > 0 else "sub", left, apply("mul", Const(abs(p), INT), g))
    c = abs(ratio)
    coeff = Const(int(c), INT) if float(c).is_integer() and f.type is INT and g.type is INT \
        else Const(float(c), REAL)
    return apply("add" if ratio > 0 else "sub", f, apply("mul", coeff, g))
