"""The hall of fame: the Pareto front of program size against fidelity.

As in PySR, the front keeps, for each size, the most faithful program, and
only if it beats every smaller program.  The best program on the front is the
one with the highest penalised fidelity ``fidelity - penalty * size``: the
simplest program that explains the oracle, not the one that copies its
mistakes.
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


def pick_best(front: list[Candidate], penalty: float) -> Candidate:
    """The front member with the highest ``fidelity - penalty * size``."""
    if not front:
        raise ValueError("empty Pareto front")
    return max(front, key=lambda c: (c.fidelity - penalty * c.size, -c.size))
