"""Rewrites that keep a program's meaning and make it smaller.

The search writes a conjunction of thresholds one comparison per side
(``y > 10 and x > 10``); the same set is ``min(x, y) > 10``, two nodes
fewer.  :func:`merge_comparisons` does that for every ``and``/``or`` chain:
two comparisons by one order against one constant become one comparison of
their sides' ``min`` or ``max``::

    a > c and b > c  ==  min(a, b) > c      a > c or b > c  ==  max(a, b) > c
    a < c and b < c  ==  max(a, b) < c      a < c or b < c  ==  min(a, b) < c

(``>=`` and ``<=`` alike).  Every row keeps its value, so a rewritten program
has the fidelity of the original.
"""
from __future__ import annotations

from functools import reduce

from dsl.primitives import ORDERED
from dsl.program import Apply, Const, Program, apply

#: The side-merging primitive for a comparison joined by a connective.
_MERGE = {("and_", "gt"): "min", ("and_", "ge"): "min", ("and_", "lt"): "max",
          ("and_", "le"): "max", ("or_", "gt"): "max", ("or_", "ge"): "max",
          ("or_", "lt"): "min", ("or_", "le"): "min"}


def merge_comparisons(program: Program) -> Program:
    """``program`` with the comparisons of each ``and``/``or`` chain that share
    an order and a constant merged into one (see the module docstring); the
    chain's other terms keep their order."""
    if not isinstance(program, Apply):
        return program
    args = tuple(merge_comparisons(a) for a in program.args)
    if args != program.args:
        program = Apply(program.primitive, args)
    connective = program.primitive.name
    if connective not in ("and_", "or_"):
        return program
    terms = _chain(program, connective)
    merged: list[Program] = []
    for term in terms:
        for i, kept in enumerate(merged):
            joined = _joined(connective, kept, term)
            if joined is not None:
                merged[i] = joined
                break
        else:
            merged.append(term)
    if len(merged) == len(terms):
        return program
    return reduce(lambda a, b: apply(connective, a, b), merged)


def _chain(program: Program, connective: str) -> list[Program]:
    """The terms of the ``connective`` chain rooted at ``program``, left to right."""
    if isinstance(program, Apply) and program.primitive.name == connective:
        return [t for arg in program.args for t in _chain(arg, connective)]
    return [program]


def _joined(connective: str, p: Program, q: Program) -> Program | None:
    """``p`` and ``q`` as one comparison, or None where they do not merge."""
    if not (isinstance(p, Apply) and isinstance(q, Apply)
            and p.primitive == q.primitive and p.primitive.name in ORDERED):
        return None
    (a, c), (b, d) = p.args, q.args
    if not (isinstance(c, Const) and c == d) or a == b:
        return None
    return apply(p.primitive.name, apply(_MERGE[connective, p.primitive.name], a, b), c)
