"""Composition of fitted atoms into boolean labelling formulas.

A formula is a tree of ``and``/``or``/``xor`` and ``at least k of`` (an m-of-n
rule, ``int(a) + int(b) + int(c) >= 2``) over atom slots.  The search is a
beam over formulas: each step grows a formula at one of its nodes ``S`` into
``S op B`` with a new atom ``B`` (and a node counting its children, an
``and``/``or`` chain too, into one counting ``B`` as well), and every atom
slot can be refitted.  Both moves are one *conditional fit*: with the rest of
the formula fixed, the output at each row is ``p1`` when the slot is True and
``p0`` when False, so the best atom for the slot is the best predicate for
target ``z == p1`` on the rows where ``p0 != p1`` -- one query to the
threshold index, optimal over all features and thresholds at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from synth.thresholds import Split

OPS = ("and", "or", "xor")
#: Connectives grown by a pair of atoms joined by the dual connective.
_PAIRED = {"or": "and", "and": "or"}
_NP = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
#: When a slot grows by a pair of atoms: at every growth (two atoms may help more
#: than the best one; and where a level's growth stalls, the best formula has its
#: atoms tried as new pairs), or only where no single atom helps (half the queries).
PAIRS = ("always", "fallback")
#: The node "at least k of its children" (2 <= k < n: k = n is an and, k = 1 an or).
COUNT = "atleast"

# A tree is ("atom", i), (op, left, right) or (COUNT, k, child, child, child, ...);
# a path is the positions of the children taken, in those tuples.
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
    fraction of the total weight; ``pairs`` when a slot grows by a pair of
    atoms (:data:`PAIRS`).
    """

    def __init__(self, best_atoms: Callable, truth: Callable[[Split], np.ndarray],
                 size_of: Callable[[Tree, tuple[Split, ...]], int], z: np.ndarray,
                 w: np.ndarray, penalty: float, beam_width: int = 4, max_atoms: int = 4,
                 refit_passes: int = 2, passes: int = 1, pairs: str = "always",
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {pairs!r}")
        self.best_atoms, self.truth, self.size_of = best_atoms, truth, size_of
        self.z = np.asarray(z, dtype=bool)
        self.w = np.asarray(w, dtype=np.float64)
        self.total = float(self.w.sum())
        self._positive = float(self.w[self.z].sum())
        self.penalty = penalty
        self.beam_width, self.max_atoms, self.refit_passes = beam_width, max_atoms, refit_passes
        self.passes = passes
        self.pairs = pairs
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
        values = [self.evaluate(tree[i], atoms, override, path + (i,)) for i in _slots(tree)]
        if tree[0] == COUNT:
            return np.count_nonzero(values, axis=0) >= tree[1]
        return _NP[tree[0]](*values)

    # -- moves --------------------------------------------------------------
    def conditional(self, p0: np.ndarray, p1: np.ndarray, top: int) -> list[Split]:
        """Best atoms for a slot whose False/True settings give outputs p0/p1."""
        differs = p0 != p1
        if not differs.any():
            return []
        return self.best_atoms(self.z == p1, self.w * differs, top)

    def _slot_outputs(self, tree: Tree, atoms: tuple[Split, ...],
                      path: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of the formula with the slot at ``path`` all False and all True."""
        n = len(self.z)
        return (self.evaluate(tree, atoms, {path: np.zeros(n, bool)}),
                self.evaluate(tree, atoms, {path: np.ones(n, bool)}))

    def _fit_new(self, tree: Tree, atoms: tuple[Split, ...], path: tuple,
                 top: int) -> list[Formula]:
        """``tree`` with the best atoms in its new last slot, at ``path``."""
        p0, p1 = self._slot_outputs(tree, atoms + atoms[:1], path)  # any atom holds the place
        return [self.make(tree, atoms + (atom,)) for atom in self.conditional(p0, p1, top)]

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
                if op in _PAIRED and (self.pairs == "always"
                                      or all(self.score(g) <= self.score(f) for g in grown)):
                    grown += self._grow_pair(f, path, sub, op)
                out.extend(grown)
        return out

    def grow_counts(self, beam: list[Formula], top: int, majorities: bool,
                    deadline: float = float("inf")) -> list[Formula]:
        """Every node of the formulas of ``beam`` that counts its children grown to
        count a new atom too; with ``majorities``, the simplest atoms of ``beam``
        (all of them would cost much) grown into majorities."""
        out = []
        for f in beam:
            for path, (need, children) in _counters(f.tree):
                if self.clock() > deadline:
                    return out
                out.extend(self._grow_count(f, path, need, children, top))
        for f in sorted(beam, key=lambda f: f.size)[: self.beam_width] if majorities else []:
            if self.clock() > deadline:
                break
            out.extend(self._grow_majority(f))
        return out

    def _grow_count(self, f: Formula, path: tuple, k: int, children: tuple[Tree, ...],
                    top: int) -> list[Formula]:
        """At least ``k`` of ``children`` grown into at least ``k`` (or ``k + 1``) of
        them and a new atom ``B``: ``a and b`` into "two of a, b, B", one step
        nearer an m-of-n rule, whose every part alone is a poor fit."""
        n, new = len(children), ("atom", len(f.atoms))
        return [formula for m in (k, k + 1) if 1 < m <= n
                for formula in self._fit_new(_replace(f.tree, path, (COUNT, m, *children, new)),
                                             f.atoms, path + (n + 2,), top)]

    def _grow_majority(self, f: Formula) -> list[Formula]:
        """The atom ``f`` grown into "two of A, B1, B2": every part of a majority
        may be a poor fit alone, and so never grow into an and/or of two."""
        return self._fit_pair((COUNT, 2, f.tree, ("atom", 1), ("atom", 2)), f.atoms, (3,), (4,))

    def _grow_pair(self, f: Formula, path: tuple, sub: Tree, op: str) -> list[Formula]:
        """``S or (B1 and B2)`` (dually ``S and (B1 or B2)``) where no single atom
        helps: a rare conjunction (``x % 8 == 0 and y % 8 == 0``) has no atom
        that adds more right rows than wrong ones."""
        k = len(f.atoms)
        tree = _replace(f.tree, path, (op, sub, (_PAIRED[op], ("atom", k), ("atom", k + 1))))
        return self._fit_pair(tree, f.atoms, path + (2, 1), path + (2, 2))

    def _fit_pair(self, tree: Tree, atoms: tuple[Split, ...], first: tuple,
                  second: tuple) -> list[Formula]:
        """``tree`` with the best atoms in its two new last slots, at paths ``first``
        and ``second``.  The first is fitted as a necessary condition of the rows
        the pair must make True where one of the pair is not enough (as a
        sufficient one where it is), the second conditionally on it."""
        no, yes = np.zeros(len(self.z), bool), np.ones(len(self.z), bool)
        held = atoms + atoms[:1] * 2  # any atoms hold the places
        none, one, both = (self.evaluate(tree, held, {first: a, second: b})
                           for a, b in ((no, no), (yes, no), (yes, yes)))
        target = self.z == both
        emphasis = np.where(one == none, target, ~target)
        # the first, fitted before its partner, is refitted given it: a stand-in
        # for the pair alone (``x - (y // 20) ** 2 < -15``) may be beside the
        # partner (``y > 100``) no better than a plain atom (``x < 10``)
        return [self._refit_slot(formula, formula.atoms.index(b1))
                for b1 in self.best_atoms(target, self.w * (none != both) * (1 + 9 * emphasis), 1)
                for formula in self._fit_new(tree, atoms + (b1,), second, 1)]

    def refit(self, f: Formula, passes: int | None = None) -> Formula:
        """Coordinate ascent: refit each atom slot given the others."""
        for _ in range(self.refit_passes if passes is None else passes):
            before = f
            for k in range(len(f.atoms)):
                f = self._refit_slot(f, k)
            if f is before:
                break
        return f

    def _refit_slot(self, f: Formula, k: int) -> Formula:
        """``f`` with its ``k``-th atom refitted given the others, if that scores higher."""
        p0, p1 = self._slot_outputs(f.tree, f.atoms, _atom_path(f.tree, k))
        for atom in self.conditional(p0, p1, 1):
            candidate = self.make(f.tree, f.atoms[:k] + (atom,) + f.atoms[k + 1:])
            if self.score(candidate) > self.score(f) + 1e-12:
                f = candidate
        return f

    def split_atoms(self, f: Formula) -> Formula:
        """Each atom replaced by a new pair ``B1 and B2`` or ``B1 or B2`` where
        that scores higher: a stand-in that the beam settled on early (the
        wedge ``max(x, y) - 0.7 * min(x, y) <= 28`` for the two curves
        ``9 * sqrt(x) > y and 9 * sqrt(y) > x``) is no worse than either curve
        alone, so neither refitting it nor growing beside it reaches the pair."""
        k = 0
        while k < len(f.atoms):
            for op in _PAIRED:
                path, n = _atom_path(f.tree, k), len(f.atoms)
                tree = _replace(f.tree, path, (op, ("atom", n), ("atom", n + 1)))
                for g in self._fit_pair(tree, f.atoms, path + (1,), path + (2,)):
                    g = self.refit(g, passes=1)
                    if self.score(g) > self.score(f) + 1e-12:
                        f = g
            k += 1
        return f

    def mutate(self, f: Formula) -> Formula:
        """Try each other connective at each inner node, refitting the atoms:
        ``A and B`` may be ``A xor B'`` in disguise, which growth alone misses;
        and a count of the atoms of ``f`` in place of its connectives."""
        counted = self._count_atoms(f) if len(set(f.atoms)) > 2 else f
        for path, _ in list(_subtrees(f.tree)):
            for op in OPS:
                sub = _node(f.tree, path)  # in f as changed so far: None where it is gone
                if sub is None or sub[0] not in OPS or op == sub[0]:
                    continue
                candidate = self.refit(self.make(_replace(f.tree, path, (op, sub[1], sub[2])),
                                                 f.atoms), passes=1)
                if self.score(candidate) > self.score(f) + 1e-12:
                    f = candidate
        return max(f, counted, key=self.score)

    def _count_atoms(self, f: Formula) -> Formula:
        """At least k of the distinct atoms of ``f``, for the best k, less the
        atoms whose loss helps most: the right atoms of an m-of-n rule are often
        found first in and/or formulas (``a and b or (a or b) and c`` is two of
        a, b, c), beside wrong ones (``a or b`` in one atom)."""
        atoms = tuple(dict.fromkeys(f.atoms))
        slots = tuple(("atom", i) for i in range(len(atoms)))
        best = max((self.make(_at_least(k, slots), atoms) for k in range(1, len(atoms) + 1)),
                   key=self.score)
        while best.tree[0] == COUNT:
            smaller = max((self.make(t, best.atoms) for t in _shrunk(best.tree)), key=self.score)
            if self.score(smaller) <= self.score(best):
                break
            best = smaller
        return best

    def prune(self, f: Formula) -> Formula:
        """Drop operands that do not help: ``S op B`` becomes ``S`` or ``B``,
        "at least k of" loses a child (and needs k or k - 1 of the rest),
        whenever that loses no correct weight."""
        changed = True
        while changed:
            changed = False
            for path, sub in _subtrees(f.tree):
                for child in _shrunk(sub):
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
            # counts grow from the beam as it entered this level
            counted = self.grow_counts(beam, 2, n_atoms == 2, deadline)
            before = max(map(self.score, beam))
            beam = self._top(refined + counted + beam)
            # growth stalled: a stand-in atom may hold the best formula back; trying
            # each atom as a pair is costly, so only here (deep searches keep their time)
            if (self.pairs == "always" and self.score(beam[0]) <= before + 1e-12
                    and self.clock() <= deadline):
                beam = self._top([self.prune(self.split_atoms(beam[0])), *beam])
            if on_level:
                on_level(n_atoms, beam)
        return beam

    def perfect(self, f: Formula) -> bool:
        """Whether the formula gets every row right."""
        return f.correct >= self.total - 1e-9

    def _perfect(self, beam: list[Formula]) -> bool:
        """Whether a formula in the beam already gets every row right."""
        return any(map(self.perfect, beam))

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


def _slots(tree: Tree) -> range:
    """Positions of a node's children in its tuple: the steps of paths."""
    if tree[0] == "atom":
        return range(0)
    return range(2 if tree[0] == COUNT else 1, len(tree))


def _subtrees(tree: Tree, path: tuple = ()) -> Iterator[tuple[tuple, Tree]]:
    yield path, tree
    for i in _slots(tree):
        yield from _subtrees(tree[i], path + (i,))


def _node(tree: Tree, path: tuple) -> Tree | None:
    """The node at ``path``, or None where ``tree`` has no such path."""
    for i in path:
        if i not in _slots(tree):
            return None
        tree = tree[i]
    return tree


def _replace(tree: Tree, path: tuple, new: Tree) -> Tree:
    if not path:
        return new
    i = path[0]
    return tree[:i] + (_replace(tree[i], path[1:], new),) + tree[i + 1:]


def _atom_path(tree: Tree, k: int, path: tuple = ()) -> tuple | None:
    if tree[0] == "atom":
        return path if tree[1] == k else None
    found = (_atom_path(tree[i], k, path + (i,)) for i in _slots(tree))
    return next((p for p in found if p is not None), None)


def _at_least(k: int, children: tuple[Tree, ...]) -> Tree:
    """The node "at least ``k`` of ``children``" (1 <= k <= n): an and-chain
    when k = n, an or-chain when k = 1 (smaller printed, equal in value)."""
    if 1 < k < len(children):
        return (COUNT, k, *children)
    op = "and" if k == len(children) else "or"
    tree = children[0]
    for child in children[1:]:
        tree = (op, tree, child)
    return tree


def _chain(tree: Tree, op: str) -> tuple[Tree, ...]:
    """The operands of a chain of ``op``: ``(a and b) and c`` -> a, b, c."""
    if tree[0] != op:
        return (tree,)
    return _chain(tree[1], op) + _chain(tree[2], op)


def _counters(tree: Tree, path: tuple = (),
              parent: str = "") -> Iterator[tuple[tuple, tuple[int, tuple[Tree, ...]]]]:
    """``(path, (k, children))`` of each node that holds when at least k of its
    children do: count nodes, and whole ``and`` (k = n) and ``or`` (k = 1) chains."""
    if tree[0] == COUNT:
        yield path, (tree[1], tree[2:])
    elif tree[0] in _PAIRED and tree[0] != parent:
        children = _chain(tree, tree[0])
        yield path, (len(children) if tree[0] == "and" else 1, children)
    for i in _slots(tree):
        yield from _counters(tree[i], path + (i,), tree[0])


def _shrunk(tree: Tree) -> list[Tree]:
    """``tree`` with one operand fewer: each operand of a binary connective;
    at least k, or k - 1, of all the children of a count node but one."""
    if tree[0] in OPS:
        return [tree[1], tree[2]]
    if tree[0] != COUNT:
        return []
    k, children = tree[1], tree[2:]
    return [_at_least(m, children[:i] + children[i + 1:])
            for i in range(len(children)) for m in (k, k - 1) if 1 <= m < len(children)]


def _canonical(tree: Tree, atoms: tuple[Split, ...]) -> tuple[Tree, tuple[Split, ...]]:
    """Renumber atoms in order of first appearance and order commutative operands,
    so that equal formulas compare equal."""
    order: list[int] = []

    def visit(t: Tree) -> Tree:
        if t[0] == "atom":
            return t
        children = sorted((visit(t[i]) for i in _slots(t)), key=lambda c: repr(_key(c, atoms)))
        return (*t[:_slots(t).start], *children)

    tree = visit(tree)
    for _, t in _subtrees(tree):
        if t[0] == "atom" and t[1] not in order:
            order.append(t[1])
    mapping = {old: new for new, old in enumerate(order)}

    def renumber(t: Tree) -> Tree:
        if t[0] == "atom":
            return ("atom", mapping[t[1]])
        return (*t[:_slots(t).start], *(renumber(t[i]) for i in _slots(t)))

    return renumber(tree), tuple(atoms[old] for old in order)


def _key(tree: Tree, atoms: tuple[Split, ...]):
    if tree[0] == "atom":
        a = atoms[tree[1]]
        return (a.feature, a.kind, a.lo, a.hi)
    return (*tree[:_slots(tree).start], *(_key(tree[i], atoms) for i in _slots(tree)))
