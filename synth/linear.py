"""Two-feature linear atoms: ``f + c * g > d`` with the ratio ``c`` fitted.

The boundary of many labelling programs is a line in the plane of two
features (``y > 0.02 * x**2 + 5`` in the plane of ``y`` and ``x**2``;
``max(x, y) > 2 * min(x, y)``).  For a pair of features we start from the
Fisher discriminant direction, refine the angle by a local scan that
maximises threshold accuracy, then round ``c`` to the fewest significant
digits that lose no accuracy.  ``d`` is left to the threshold fitter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.numbers import round_significant
from synth.thresholds import best_threshold


@dataclass(frozen=True)
class LinearFit:
    """``first + ratio * second`` separates the labels with ``correct`` weight right."""

    first: int
    second: int
    ratio: float
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


def ratio_candidates(a: float, b: float, f: np.ndarray, g: np.ndarray, z, w,
                     target: float, tolerance: float) -> float | None:
    """The simplest ratio ``c`` with ``f + c*g`` scoring within ``tolerance`` of ``target``."""
    if a == 0:
        return None
    c = b / a
    for digits in (1, 2, 3, 4, 6):
        rounded = round_significant(c, digits)
        if rounded != 0 and best_threshold(f + rounded * g, z, w) >= target - tolerance:
            return rounded
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
        if ratio is None or not np.isfinite(ratio):
            continue
        fits.append(LinearFit(i, j, ratio, best_threshold(f + ratio * g, z, w)))
    return fits
