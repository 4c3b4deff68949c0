"""Readable constants: the simplest number inside an interval.

A fitted threshold is only determined up to the gap between two observed
feature values; any number in the gap gives the same labels on the queries.
We print the one with the fewest significant digits (``5000`` rather than
``4998.5``), which also generalises best to unseen points between them.
"""
from __future__ import annotations

import math


def simplest_in(lo: float, hi: float, *, lo_open: bool, hi_open: bool,
                integer: bool = False) -> float:
    """The number with fewest significant digits in the interval from lo to hi.

    Bounds are open or closed as given; ``lo`` may be ``-inf`` and ``hi``
    ``inf``.  With ``integer`` set only integers are considered (the interval
    must contain one).  Ties go to the number of smallest magnitude.
    """
    if not lo <= hi:
        raise ValueError(f"empty interval ({lo}, {hi})")
    if math.isinf(lo) and math.isinf(hi):
        return 0.0

    def inside(v: float) -> bool:
        above = v > lo if lo_open else v >= lo
        below = v < hi if hi_open else v <= hi
        return above and below

    if inside(0.0):
        return 0.0
    finite = hi if math.isinf(lo) else lo if math.isinf(hi) else max(abs(lo), abs(hi))
    top = math.floor(math.log10(abs(finite) or 1.0)) + 1  # (0, inf) has no other scale
    bottom = 0 if integer else -12
    for exponent in range(top, bottom - 1, -1):
        step = 10.0**exponent
        for v in _multiples_inside(lo, hi, step, exponent):
            if inside(v):
                return v
    if integer:
        raise ValueError(f"no integer in interval ({lo}, {hi})")
    return (lo + hi) / 2 if not (math.isinf(lo) or math.isinf(hi)) else (lo if hi == math.inf else hi)


def _multiples_inside(lo: float, hi: float, step: float, exponent: int):
    """Multiples of ``10**exponent`` nearest to zero within [lo, hi], in order of magnitude."""
    def exact(k: int) -> float:
        return float(f"{k}e{exponent}")

    if lo >= 0:
        k = math.ceil(lo / step)
        yield from (exact(k), exact(k + 1))
    elif hi <= 0:
        k = math.floor(hi / step)
        yield from (exact(k), exact(k - 1))
    else:
        yield 0.0


def round_significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits, exactly as printed."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits - 1}e}")


def significant_digits(value: float) -> int:
    """Digits of ``value`` as printed, without sign, exponent or trailing zeros."""
    mantissa = f"{abs(float(value)):.15g}".split("e")[0].replace(".", "").strip("0")
    return max(len(mantissa), 1)
