"""Simpler constants: a round number is worth a few disagreements.

A network's boundary is blurred, so a threshold fitted to its labels lands
near the true constant, not on it (``x * y > 1798`` for ``1800``).  Each
constant is shortened to fewer significant digits when that costs at most
``per_digit`` fidelity for every digit saved: a description-length trade of
digits against errors; a comparison with its constant then takes ``<`` or
``<=`` as the labels of the points on the constant say.  A difference
compared with a constant near zero (``x ** 2 - 50 * y < -1``) may compare its
sides instead (``x ** 2 < 50 * y``) for ``per_node`` fidelity per node saved.
Labels a program reproduces exactly are not blurred: such a program keeps
every constant that makes it so.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dsl.primitives import ORDERED
from dsl.program import Apply, Const, Program, apply, constant_paths, node_at, replace_at
from dsl.types import INT
from synth.numbers import round_significant


def significant_digits(value: float) -> int:
    """Digits of ``value`` as printed, without sign, exponent or trailing zeros."""
    mantissa = f"{abs(float(value)):.15g}".split("e")[0].replace(".", "").strip("0")
    return max(len(mantissa), 1)


def simpler_constants(value: float) -> list[float]:
    """``value`` rounded to each shorter number of significant digits, shortest first."""
    digits = significant_digits(value)
    out = []
    for d in range(1, digits):
        v = round_significant(float(value), d)
        if v not in out and v != value:
            out.append(v)
    return out


def simplify_constants(program: Program, env: Mapping[str, np.ndarray], target: np.ndarray,
                       per_digit: float, per_node: float | None = None,
                       weights: np.ndarray | None = None) -> Program:
    """Shorten constants one at a time while each digit saved costs at most
    ``per_digit``, then compare the sides of differences set against a constant
    while each node saved costs at most ``per_node`` (default: two digits).
    Fidelity is the share of ``target`` reproduced, weighted by ``weights``."""
    target = np.asarray(target, dtype=bool)

    def fidelity_of(trial: Program) -> float:
        pred = np.broadcast_to(np.asarray(trial.evaluate(env), dtype=bool), target.shape)
        return float(np.average(pred == target, weights=weights))

    base = fidelity_of(program)

    def cost(trial: Program) -> float:
        """Fidelity lost by ``trial``; infinite where it loses an exact fit."""
        fidelity = fidelity_of(trial)
        return np.inf if base == 1.0 and fidelity < 1.0 else base - fidelity

    for path in constant_paths(program):
        node = node_at(program, path)
        for v in simpler_constants(node.value):
            value = int(v) if node.type is INT else v
            if node.type is INT and not float(v).is_integer():
                continue
            trial = replace_at(program, path, Const(value, node.type))
            lost = cost(trial)
            if lost <= per_digit * (significant_digits(node.value) - significant_digits(v)):
                program, base = trial, base - lost
                break
        twin = _inclusive_twin(program, path[:-1])
        gained = -cost(twin) if twin is not None else 0.0
        if gained > 0:
            program, base = twin, base + gained
    per_node = 2 * per_digit if per_node is None else per_node
    for path in _difference_comparisons(program):
        node = node_at(program, path)
        sides = apply(node.primitive.name, *node.args[0].args)
        trial = replace_at(program, path, sides)
        lost = cost(trial)
        if lost <= per_node * (node.size - sides.size):
            program, base = trial, base - lost
    return program


#: Each ordering comparison and the one that differs only where its sides are equal.
_TWINS = {"lt": "le", "le": "lt", "gt": "ge", "ge": "gt"}


def _inclusive_twin(program: Program, path: tuple) -> Program | None:
    """The comparison at ``path`` with its twin (``<`` for ``<=``, ``>`` for
    ``>=``), or None where no comparison is there.  A round constant may fall
    on the queries themselves (``x ** 2 + y ** 2 < 4000`` at ``(20, 60)``):
    which side those points take is for the labels to say, at no cost in size."""
    node = node_at(program, path)
    if not isinstance(node, Apply) or node.primitive.name not in _TWINS:
        return None
    return replace_at(program, path, apply(_TWINS[node.primitive.name], *node.args))


def _difference_comparisons(program: Program, path: tuple = ()) -> list[tuple]:
    """Paths of ``a - b op c`` for an ordering ``op`` and a constant ``c``,
    deepest first (so replacing one leaves the paths after it valid)."""
    if not isinstance(program, Apply):
        return []
    out = []
    for i, child in enumerate(program.children):
        out += _difference_comparisons(child, path + (i,))
    left, right = (program.args + (None, None))[:2]
    if (program.primitive.name in ORDERED and isinstance(right, Const)
            and isinstance(left, Apply) and left.primitive.name == "sub"):
        out.append(path)
    return out
