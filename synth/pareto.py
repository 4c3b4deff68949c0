"""The hall of fame: the Pareto front of program size against fidelity.

As in PySR, the front keeps, for each size, the most faithful program, and
only if it beats every smaller program.  The best program on the front is the
one with the highest penalised fidelity ``fidelity - penalty * size``: the
simplest program that explains the oracle, not the one that copies its
mistakes.
"""
from __future__ import annotations

from collections.abc import Iterable

from synth.results import Candidate


def pareto_front(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates not dominated in (smaller size, higher fidelity), by increasing size."""
    best_by_size: dict[int, Candidate] = {}
    for c in candidates:
        kept = best_by_size.get(c.size)
        if kept is None or c.fidelity > kept.fidelity:
            best_by_size[c.size] = c
    front: list[Candidate] = []
    for size in sorted(best_by_size):
        c = best_by_size[size]
        if not front or c.fidelity > front[-1].fidelity:
            front.append(c)
    return front


def pick_best(front: list[Candidate], penalty: float) -> Candidate:
    """The front member with the highest ``fidelity - penalty * size``."""
    if not front:
        raise ValueError("empty Pareto front")
    return max(front, key=lambda c: (c.fidelity - penalty * c.size, -c.size))
