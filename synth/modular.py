"""Modular lines: residues of small integer combinations of two inputs.

``(x + y) % 7`` is enumerated by size (five nodes), but ``(2*x + y) % 11``
takes seven, beyond the sizes enumeration can afford to complete.  Residues
of linear forms are a family of their own -- lattices, wrap-around stripes,
checkerboards of any slope -- so they are generated directly: ``(a*u + b*v) % m``
for every pair of integer inputs, coprime coefficients up to ``max_coefficient``
in absolute value (the forms enumeration does not reach), and every modulus
of the grammar.  The feature bank then ranks them with everything else.
"""
from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from dsl.program import Const, Program, Var, apply
from dsl.types import INT


def linear_form(u: Program, v: Program, a: int, b: int) -> Program:
    """``a*u + b*v`` (``a > 0``, ``b != 0``) as printed: ``2 * x - y``, ``x + 3 * y``."""
    def times(k: int, p: Program) -> Program:
        return p if k == 1 else apply("mul", Const(k, INT), p)
    return apply("add" if b > 0 else "sub", times(a, u), times(abs(b), v))


def modular_lines(inputs: Sequence[Program], moduli: Sequence[int],
                  max_coefficient: int = 3) -> list[Program]:
    """``(a*u + b*v) % m`` for integer inputs ``u`` before ``v``, ``1 <= a``,
    ``b != 0``, ``|a|, |b| <= max_coefficient``, ``gcd(a, b) == 1`` and not both 1
    in absolute value (those are enumerated), each modulus ``m``."""
    ints = [p for p in inputs if isinstance(p, Var) and p.type is INT]
    out = []
    for i, u in enumerate(ints):
        for v in ints[i + 1:]:
            for a in range(1, max_coefficient + 1):
                for b in range(-max_coefficient, max_coefficient + 1):
                    if b == 0 or gcd(a, abs(b)) != 1 or max(a, abs(b)) == 1:
                        continue
                    form = linear_form(u, v, a, b)
                    out += [apply("mod", form, Const(int(m), INT)) for m in moduli]
    return out
