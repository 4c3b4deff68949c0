"""The hall of fame: the Pareto front of program size against fidelity.

As in PySR, the front keeps, for each size, the most faithful program, and
only if it beats every smaller program.  The best program on the front is the
one with the highest penalised fidelity ``fidelity - penalty * size``: the
simplest program that explains the oracle, not the one that copies its
mistakes -- unless the front holds a program that explains *every* label,
the held-out ones included, at most ``EXACT_SLACK`` nodes larger, plus a node
for each label the best gets wrong.  Labels a program reproduces exactly are
not noise: a missing ``x > 5`` that decides four of ten thousand pairs costs
less fidelity than its four nodes are worth under the penalty, yet the exact
program is the answer.  In description-length terms the best's wrong labels
are exceptions it must list, and an exception (a row among thousands, about
14 bits) costs more to state than a node (a choice among a few dozen
primitives and features): a node per exception is the cautious exchange rate.
A network's labels (a few percent off any small program) never trigger this
rule.

Size is counted in nodes, and a constant's digits beyond its first cost
``DIGIT_COST`` of a node each: ``3 * x + 2 * y < 230`` and the hyperbola
``(x + 2006) * (y + 3009) < 6266400`` have nine nodes each, but the
hyperbola states three fitted numbers to four or five digits, and buys a
few labels with them (a network's blurred line is bent a little).
Simplifying constants trades digits against fidelity at the same rate.
"""
from __future__ import annotations

from collections.abc import Iterable

from dsl.program import Const, Program
from dsl.types import BOOL
from synth.numbers import significant_digits
from synth.results import Candidate

#: What each significant digit of a constant beyond its first costs, in nodes.
DIGIT_COST = 0.5


def spare_digits(program: Program) -> int:
    """Significant digits of the numeric constants of ``program`` beyond the
    first of each (``2006`` has three, ``2000`` none)."""
    return sum(significant_digits(n.value) - 1 for n in program.walk()
               if isinstance(n, Const) and n.type is not BOOL)


def pareto_front(candidates: Iterable[tuple[Program, float]], penalty: float = 0.0
                 ) -> list[tuple[Program, float]]:
    """``(program, fidelity)`` pairs not dominated in (smaller size, higher
    fidelity), by increasing size.  Of one size the program kept is the one
    with the highest fidelity less ``penalty * DIGIT_COST`` for each spare
    digit, unless another reproduces every label."""
    def merit(program: Program, fidelity: float) -> tuple[bool, float]:
        return fidelity == 1.0, fidelity - penalty * DIGIT_COST * spare_digits(program)

    best_by_size: dict[int, tuple[Program, float]] = {}
    for program, fidelity in candidates:
        kept = best_by_size.get(program.size)
        if kept is None or merit(program, fidelity) > merit(*kept):
            best_by_size[program.size] = (program, fidelity)
    front: list[tuple[Program, float]] = []
    for size in sorted(best_by_size):
        program, fidelity = best_by_size[size]
        if not front or fidelity > front[-1][1]:
            front.append((program, fidelity))
    return front


#: Nodes a program that reproduces every label may add over the penalised best.
EXACT_SLACK = 8


def pick_best(front: list[Candidate], penalty: float, rows: tuple[int, int] = (0, 0)
              ) -> Candidate:
    """The front member with the highest ``fidelity - penalty * size`` (spare
    digits counted in the size at ``DIGIT_COST``), or the
    smallest exact one (every fit and held-out label) within ``EXACT_SLACK``
    nodes of it, plus one per label it gets wrong of ``rows`` (fit rows,
    held-out rows)."""
    if not front:
        raise ValueError("empty Pareto front")
    best = max(front, key=lambda c: (c.fidelity - penalty * (c.size + DIGIT_COST
                                                             * spare_digits(c.program)),
                                     -c.size))
    slack = EXACT_SLACK + _errors(best, rows)
    exact = [c for c in front if is_exact(c) and c.size <= best.size + slack]
    return best if is_exact(best) or not exact else min(exact, key=lambda c: c.size)


def is_exact(candidate: Candidate) -> bool:
    """Whether the candidate reproduces every label, fit and held out."""
    return candidate.fidelity == 1.0 and candidate.holdout_fidelity in (None, 1.0)


def _errors(candidate: Candidate, rows: tuple[int, int]) -> int:
    """Labels the candidate gets wrong among ``rows`` (fit, held out)."""
    fit, held = rows
    held_out = 1.0 if candidate.holdout_fidelity is None else candidate.holdout_fidelity
    wrong = (1 - candidate.fidelity) * fit + (1 - held_out) * held
    return int(round(wrong))
