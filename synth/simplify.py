"""Simpler constants: a round number is worth a few disagreements.

A network's boundary is blurred, so a threshold fitted to its labels lands
near the true constant, not on it (``x * y > 1798`` for ``1800``).  The
constants of each comparison are shortened to fewer significant digits,
together, when that costs at most ``per_digit`` fidelity for every digit
saved: a description-length trade of digits against errors; a comparison with its constant then takes ``<`` or
``<=`` as the labels of the points on the constant say.  A difference
compared with a constant near zero (``x ** 2 - 50 * y < -1``) may compare its
sides instead (``x ** 2 < 50 * y``) for ``per_node`` fidelity per node saved.
Labels a program reproduces exactly are not blurred: such a program keeps
every constant that makes it so.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

from dsl.primitives import ORDERED
from dsl.program import Apply, Const, Program, apply, constant_paths, node_at, replace_at
from dsl.types import BOOL, INT
from synth.numbers import round_significant, significant_digits


def simpler_constants(value: float, reach: int = 0) -> list[float]:
    """``value`` rounded to each shorter number of significant digits, shortest
    first, each rounding followed by the numbers of as many digits up to
    ``reach`` steps of its last digit away on either side (of ``value``'s sign
    or zero): ``1.1`` gives ``1``, and with reach 2 also ``0``, ``2`` and ``3``."""
    digits = significant_digits(value)
    out = []
    for d in range(1, digits):
        step = 10.0 ** (math.floor(math.log10(abs(value))) - d + 1)
        nearest = round(value / step)
        for k in sorted(range(-reach, reach + 1), key=abs):
            v = round_significant((nearest + k) * step, d)
            if (v not in out and v != value and v * value >= 0
                    and significant_digits(v) <= d):
                out.append(v)
    return out


def simplify_constants(program: Program, env: Mapping[str, np.ndarray], target: np.ndarray,
                       per_digit: float, per_node: float | None = None,
                       weights: np.ndarray | None = None) -> Program:
    """Shorten the constants of each comparison together (a coefficient with its
    threshold) while each digit saved costs at most ``per_digit``, then compare the sides of differences set against a constant
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

    for owner, paths in _constant_groups(program):
        nodes = [node_at(program, path) for path in paths]
        best, best_saved, best_lost = None, 0, np.inf
        for saved, values in _roundings(nodes):
            if saved < best_saved:
                break
            trial = program
            for path, node, value in zip(paths, nodes, values):
                trial = replace_at(trial, path, Const(value, node.type))
            lost = cost(trial)
            if lost <= per_digit * saved and lost < best_lost:
                best, best_saved, best_lost = trial, saved, lost
        if best is not None:
            program, base = best, base - best_lost
        twin = _inclusive_twin(program, owner)
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


#: At most this many constants are rounded together (their roundings multiply).
_JOINT = 3


def _constant_groups(program: Program) -> list[tuple[tuple, list[tuple]]]:
    """The numeric constants of ``program`` grouped by the comparison (or other
    truth-valued node) they sit under, in runs of at most ``_JOINT``: each as
    that node's path and the constants' paths.  A coefficient and its threshold
    round together (``x ** 2 - 98 * y > -5860`` to ``x ** 2 - 100 * y > -6000``),
    where rounding either alone moves the boundary off the labels."""
    groups: dict[tuple, list[tuple]] = {}
    for path in constant_paths(program):
        owner = path[:-1]
        while owner and node_at(program, owner).type is not BOOL:
            owner = owner[:-1]
        groups.setdefault(owner, []).append(path)
    return [(owner, paths[i:i + _JOINT]) for owner, paths in groups.items()
            for i in range(0, len(paths), _JOINT)]


#: A constant alone in its comparison (a threshold) also tries the round numbers this many
#: steps from its roundings: where a blurred boundary leaves fidelity flat over a range
#: (``ink < 1.1`` to ``ink < 3``), the roundest number in it, not only the nearest.
_REACH = 2


def _roundings(nodes: list[Const]) -> list[tuple[int, tuple]]:
    """Every way of shortening some of ``nodes``' values, as the digits it
    saves and the values, most digits saved first (a lone constant also to its
    rounding's near neighbours, see ``_REACH``)."""
    reach = _REACH if len(nodes) == 1 else 0
    options = [[node.value] + [int(v) if node.type is INT else v
                               for v in simpler_constants(node.value, reach)
                               if node.type is not INT or float(v).is_integer()]
               for node in nodes]
    out = []
    for values in itertools.product(*options):
        saved = sum(significant_digits(n.value) - significant_digits(v)
                    for n, v in zip(nodes, values))
        if saved > 0:
            out.append((saved, values))
    return sorted(out, key=lambda t: -t[0])


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
