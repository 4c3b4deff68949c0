"""Composition of fitted atoms into boolean labelling formulas.

A formula is a tree of ``and``/``or``/``xor`` over atom slots.  The search is
a beam over formulas: each step grows a formula at one of its nodes ``S`` into
``S op B`` with a new atom ``B``, and every atom slot can be refitted.  Both
moves are one *conditional fit*: with the rest of the formula fixed, the
output at each row is ``p1`` when the slot is True and ``p0`` when False, so
the best atom for the slot is the best predicate for target ``z == p1`` on the
rows where ``p0 != p1`` -- one query to the threshold index, optimal over all
features and thresholds at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from synth.thresholds import Split

OPS = ("and", "or", "xor")
#: Connectives grown by a pair of atoms joined by the dual connective.
_PAIRED = {"or": "and", "and": "or"}
_NP = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}

# A tree is ("atom", k) or (op, left, right); paths are tuples of 1/2 steps.
Tree = tuple


@dataclass(frozen=True)
class Formula:
    tree: Tree
    atoms: tuple[Split, ...]
    correct: float = field(compare=False)
    size: int = field(compare=False)
    balanced: float = field(compare=False, default=0.0)  # mean of the two class recalls

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


class Composer:
    """Beam search over formulas of up to ``max_atoms`` atoms.

    ``best_atoms(z, w, top)`` answers conditional fits; ``truth(split)`` gives
    an atom's truth vector on the fit rows; ``size_of(tree, atoms)`` the
    printed size; ``penalty`` is the score cost of one unit of size as a
    fraction of the total weight.
    """

    def __init__(self, best_atoms: Callable, truth: Callable[[Split], np.ndarray],
                 size_of: Callable[[Tree, tuple[Split, ...]], int], z: np.ndarray,
                 w: np.ndarray, penalty: float, beam_width: int = 4, max_atoms: int = 4,
                 refit_passes: int = 2, passes: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.best_atoms, self.truth, self.size_of = best_atoms, truth, size_of
        self.z = np.asarray(z, dtype=bool)
        self.w = np.asarray(w, dtype=np.float64)
        self.total = float(self.w.sum())
        self._positive = float(self.w[self.z].sum())
        self.penalty = penalty
        self.beam_width, self.max_atoms, self.refit_passes = beam_width, max_atoms, refit_passes
        self.passes = passes
        self.clock = clock
        self.seen: dict[tuple, Formula] = {}
        self.evaluated = 0

    # -- scoring ------------------------------------------------------------
    def score(self, f: Formula) -> float:
        return f.correct / self.total - self.penalty * f.size

    def make(self, tree: Tree, atoms: tuple[Split, ...]) -> Formula:
        tree, atoms = _canonical(tree, atoms)
        key = (tree, atoms)
        if key in self.seen:
            return self.seen[key]
        pred = self.evaluate(tree, atoms)
        right = self.w * (pred == self.z)
        correct = float(right.sum())
        balanced = 0.5 * (float(right[self.z].sum()) / max(self._positive, 1e-12)
                          + float(right[~self.z].sum()) / max(self.total - self._positive, 1e-12))
        formula = Formula(tree, atoms, correct, self.size_of(tree, atoms), balanced)
        self.seen[key] = formula
        self.evaluated += 1
        return formula

    def evaluate(self, tree: Tree, atoms: tuple[Split, ...],
                 override: dict[tuple, np.ndarray] | None = None, path: tuple = ()) -> np.ndarray:
        if override and path in override:
            return override[path]
        if tree[0] == "atom":
            return self.truth(atoms[tree[1]])
        left = self.evaluate(tree[1], atoms, override, path + (1,))
        right = self.evaluate(tree[2], atoms, override, path + (2,))
        return _NP[tree[0]](left, right)

    # -- moves --------------------------------------------------------------
    def conditional(self, p0: np.ndarray, p1: np.ndarray, top: int) -> list[Split]:
        """Best atoms for a slot whose False/True settings give outputs p0/p1."""
        differs = p0 != p1
        if not differs.any():
            return []
        return self.best_atoms(self.z == p1, self.w * differs, top)

    def grow(self, f: Formula, top: int, deadline: float = float("inf")) -> list[Formula]:
        """Every ``S op B`` for nodes ``S`` of ``f`` and the best new atoms ``B``."""
        out = []
        k = len(f.atoms)
        for path, sub in _subtrees(f.tree):
            if self.clock() > deadline:
                break
            value = self.evaluate(sub, f.atoms)
            for op in OPS:
                when_false, when_true = _settings(op, value)
                p0 = self.evaluate(f.tree, f.atoms, {path: when_false})
                p1 = self.evaluate(f.tree, f.atoms, {path: when_true})
                grown = [self.make(_replace(f.tree, path, (op, sub, ("atom", k))),
                                   f.atoms + (atom,))
                         for atom in self.conditional(p0, p1, top)]
                if op in _PAIRED and all(self.score(g) <= self.score(f) for g in grown):
                    grown += self._grow_pair(f, path, sub, op, p0, p1)
                out.extend(grown)
        return out

    def _grow_pair(self, f: Formula, path: tuple, sub: Tree, op: str, p0: np.ndarray,
                   p1: np.ndarray) -> list[Formula]:
        """``S or (B1 and B2)`` (dually ``S and (B1 or B2)``) where no single atom
        helps: a rare conjunction (``x % 8 == 0 and y % 8 == 0``) has no atom
        that adds more right rows than wrong ones.  ``B1`` is fitted as a
        necessary condition of the rows the pair must make True (as a
        sufficient one, dually), ``B2`` conditionally on it."""
        inner = _PAIRED[op]
        target = self.z == p1
        emphasis = target if inner == "and" else ~target
        k = len(f.atoms)
        tree = _replace(f.tree, path, (op, sub, (inner, ("atom", k), ("atom", k + 1))))
        second = path + (2, 2)
        out = []
        for first in self.best_atoms(target, self.w * (p0 != p1) * (1 + 9 * emphasis), 1):
            atoms = f.atoms + (first, first)  # the second slot is overridden below
            q0 = self.evaluate(tree, atoms, {second: np.zeros(len(self.z), bool)})
            q1 = self.evaluate(tree, atoms, {second: np.ones(len(self.z), bool)})
            out += [self.make(tree, f.atoms + (first, atom)) for atom in self.conditional(q0, q1, 1)]
        return out

    def refit(self, f: Formula, passes: int | None = None) -> Formula:
        """Coordinate ascent: refit each atom slot given the others."""
        for _ in range(self.refit_passes if passes is None else passes):
            improved = False
            for k in range(len(f.atoms)):
                path = _atom_path(f.tree, k)
                p0 = self.evaluate(f.tree, f.atoms, {path: np.zeros(len(self.z), bool)})
                p1 = self.evaluate(f.tree, f.atoms, {path: np.ones(len(self.z), bool)})
                for atom in self.conditional(p0, p1, 1):
                    atoms = f.atoms[:k] + (atom,) + f.atoms[k + 1:]
                    candidate = self.make(f.tree, atoms)
                    if self.score(candidate) > self.score(f) + 1e-12:
                        f, improved = candidate, True
            if not improved:
                break
        return f

    def mutate(self, f: Formula) -> Formula:
        """Try each other connective at each inner node, refitting the atoms:
        ``A and B`` may be ``A xor B'`` in disguise, which growth alone misses."""
        for path, sub in _subtrees(f.tree):
            if sub[0] == "atom":
                continue
            for op in OPS:
                if op == sub[0]:
                    continue
                candidate = self.refit(self.make(_replace(f.tree, path, (op, sub[1], sub[2])),
                                                 f.atoms), passes=1)
                if self.score(candidate) > self.score(f) + 1e-12:
                    f = candidate
        return f

    def prune(self, f: Formula) -> Formula:
        """Drop operands that do not help: ``S op B`` becomes ``S`` or ``B``
        whenever that loses no correct weight."""
        changed = True
        while changed:
            changed = False
            for path, sub in _subtrees(f.tree):
                if sub[0] == "atom":
                    continue
                for child in (sub[1], sub[2]):
                    candidate = self.make(_replace(f.tree, path, child), f.atoms)
                    if candidate.correct >= f.correct - 1e-9:
                        f, changed = candidate, True
                        break
                if changed:
                    break
        return f

    # -- search -------------------------------------------------------------
    def search(self, initial: list[Split], deadline: float,
               on_level: Callable[[int, list[Formula]], None] | None = None) -> list[Formula]:
        """All formulas met, best first; stops at ``deadline`` (on ``clock``).

        A pass grows the beam one atom at a time up to ``max_atoms``; while
        time remains and no formula is perfect, the search passes again with
        the beam twice as wide (formulas already met cost nothing twice), up
        to ``passes`` passes.
        """
        width = self.beam_width
        for _ in range(self.passes):
            beam = self._pass(initial, deadline, on_level)
            if self.clock() > deadline or self._perfect(beam):
                break
            self.beam_width *= 2
        self.beam_width = width
        return sorted(self.seen.values(), key=self.score, reverse=True)

    def _pass(self, initial: list[Split], deadline: float, on_level) -> list[Formula]:
        # every initial atom is grown once: a weak atom alone may be half of the answer
        beam = [self.make(("atom", 0), (a,)) for a in initial]
        if on_level:
            on_level(1, self._top(beam))
        for n_atoms in range(2, self.max_atoms + 1):
            if self.clock() > deadline or self._perfect(beam):
                break
            grown: list[Formula] = []
            for f in beam:
                if self.clock() > deadline:
                    break
                grown.extend(self.grow(f, top=2, deadline=deadline))
            if not grown:
                break
            refined = []
            for rank, f in enumerate(self._top(grown)):
                if self.clock() > deadline:
                    refined.append(f)
                    continue
                f = self.refit(f)
                if rank < 2:  # connective changes for the two best: costly, often decisive
                    f = self.mutate(f)
                refined.append(self.prune(f))
            beam = self._top(refined + beam)
            if on_level:
                on_level(n_atoms, beam)
        return beam

    def _perfect(self, beam: list[Formula]) -> bool:
        """Whether a formula in the beam already gets every row right."""
        return any(f.correct >= self.total - 1e-9 for f in beam)

    def _top(self, formulas: list[Formula]) -> list[Formula]:
        """The best by penalised fidelity, and beside them the best by penalised
        balanced accuracy: with rare positives, a promising partial conjunction
        (every positive kept, many negatives cut) scores below the constant."""
        unique = list({(f.tree, f.atoms): f for f in formulas}.values())
        by_fidelity = sorted(unique, key=self.score, reverse=True)[: self.beam_width]
        by_balance = sorted(unique, key=lambda f: f.balanced - self.penalty * f.size,
                            reverse=True)[: max(1, self.beam_width // 2)]
        return list(dict.fromkeys(by_fidelity + by_balance))


def _settings(op: str, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``value op B`` for B all False and all True."""
    if op == "and":
        return np.zeros_like(value), value
    if op == "or":
        return value, np.ones_like(value)
    return value, ~value


def _subtrees(tree: Tree, path: tuple = ()):
    yield path, tree
    if tree[0] != "atom":
        yield from _subtrees(tree[1], path + (1,))
        yield from _subtrees(tree[2], path + (2,))


def _replace(tree: Tree, path: tuple, new: Tree) -> Tree:
    if not path:
        return new
    op, left, right = tree
    if path[0] == 1:
        return (op, _replace(left, path[1:], new), right)
    return (op, left, _replace(right, path[1:], new))


def _atom_path(tree: Tree, k: int, path: tuple = ()) -> tuple | None:
    if tree[0] == "atom":
        return path if tree[1] == k else None
    return _atom_path(tree[1], k, path + (1,)) or _atom_path(tree[2], k, path + (2,))


def _canonical(tree: Tree, atoms: tuple[Split, ...]) -> tuple[Tree, tuple[Split, ...]]:
    """Renumber atoms in order of first appearance and order commutative operands,
    so that equal formulas compare equal."""
    order: list[int] = []

    def visit(t: Tree) -> Tree:
        if t[0] == "atom":
            return t
        left, right = visit(t[1]), visit(t[2])
        if repr(_key(right, atoms)) < repr(_key(left, atoms)):
            left, right = right, left
        return (t[0], left, right)

    tree = visit(tree)

    def collect(t: Tree) -> None:
        if t[0] == "atom":
            if t[1] not in order:
                order.append(t[1])
        else:
            collect(t[1])
            collect(t[2])

    collect(tree)
    mapping = {old: new for new, old in enumerate(order)}

    def renumber(t: Tree) -> Tree:
        if t[0] == "atom":
            return ("atom", mapping[t[1]])
        return (t[0], renumber(t[1]), renumber(t[2]))

    return renumber(tree), tuple(atoms[old] for old in order)


def _key(tree: Tree, atoms: tuple[Split, ...]):
    if tree[0] == "atom":
        a = atoms[tree[1]]
        return (a.feature, a.kind, a.lo, a.hi)
    return (tree[0], _key(tree[1], atoms), _key(tree[2], atoms))
