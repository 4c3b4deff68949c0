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
"""
from __future__ import annotations

from collections.abc import Iterable

from dsl.program import Program
from synth.results import Candidate


def pareto_front(candidates: Iterable[tuple[Program, float]]) -> list[tuple[Program, float]]:
    """``(program, fidelity)`` pairs not dominated in (smaller size, higher
    fidelity), by increasing size."""
    best_by_size: dict[int, tuple[Program, float]] = {}
    for program, fidelity in candidates:
        kept = best_by_size.get(program.size)
        if kept is None or fidelity > kept[1]:
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
    """The front member with the highest ``fidelity - penalty * size``, or the
    smallest exact one (every fit and held-out label) within ``EXACT_SLACK``
    nodes of it, plus one per label it gets wrong of ``rows`` (fit rows,
    held-out rows)."""
    if not front:
        raise ValueError("empty Pareto front")
    best = max(front, key=lambda c: (c.fidelity - penalty * c.size, -c.size))
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
