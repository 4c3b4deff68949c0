"""Conditional atom fitting over indexed features and lines fitted on demand.

Composition asks one question over and over: for a target ``z`` and row
weights ``w`` (the rows where the rest of a formula leaves an atom slot the
decision), which predicates explain the most weight?  The threshold index
answers it over every enumerated feature at once.  Two-feature lines
``f + c*g`` cannot all be indexed in advance -- the ratio ``c`` is
continuous -- and the line fitted to the global labels is often not the one
a slot needs: in ``x*x + y*y > 6000 and x < y`` the circle decides only the
rows where ``x < y``.  So each query also screens pairs of small features on
its own rows, fits the most promising few lines there, and indexes every
new line as a feature of its own, available to all later queries.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from dsl.program import Program
from synth.atoms import atom_program, atom_size
from synth.linear import fit_linear_atoms, line_program
from synth.thresholds import KINDS, Split, ThresholdIndex, best_thresholds

#: Rows a conditional line is screened on, and fitted on.
_SCREEN_ROWS = 256
_FIT_ROWS = 1536
#: Directions per pair in the coarse screen of lines.
_ANGLES = 12
#: Units of size a line's simpler ratio may cost in fit (a network's boundary
#: is not exactly the program's: ``2/3`` should beat ``0.653`` by a row or two).
RATIO_SLACK = 2.0
#: Screen scores closer than this share of the weight count as a tie.
_SCREEN_TIE = 0.01


@dataclass(frozen=True)
class LinePool:
    """Small features whose pairs may form lines, with their values on the fit rows."""

    programs: tuple[Program, ...]
    values: np.ndarray  # (pool, fit rows)
    pairs: tuple[tuple[int, int], ...]

    @cached_property
    def first(self) -> np.ndarray:
        return np.array([i for i, _ in self.pairs], dtype=np.int64)

    @cached_property
    def second(self) -> np.ndarray:
        return np.array([j for _, j in self.pairs], dtype=np.int64)

    @cached_property
    def sizes(self) -> np.ndarray:
        """Total size of each pair's two features."""
        return np.array([self.programs[i].size + self.programs[j].size for i, j in self.pairs])

    @cached_property
    def planes(self) -> list[tuple[int, int]]:
        """Pairs of two inputs (features of size one)."""
        return [(i, j) for i, j in self.pairs
                if self.programs[i].size == 1 and self.programs[j].size == 1]

    def screen(self, values: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Per pair, the best threshold accuracy over ``_ANGLES`` directions in the
        standardised plane of its features: a coarse fit of every line at once
        (Fisher's direction alone misses lines between skewed classes)."""
        spread = values.std(axis=1, keepdims=True)
        scaled = (values - values.mean(axis=1, keepdims=True)) / np.where(spread == 0, 1, spread)
        theta = np.linspace(0, np.pi, _ANGLES, endpoint=False)
        projections = (np.cos(theta)[None, :, None] * scaled[self.first][:, None, :]
                       + np.sin(theta)[None, :, None] * scaled[self.second][:, None, :])
        scores = best_thresholds(projections.reshape(-1, values.shape[1]), z, w)
        return scores.reshape(len(self.pairs), _ANGLES).max(axis=1)


class AtomFitter:
    """Best predicates for conditional targets.

    ``programs``/``values`` are the indexed features (values on the fit rows,
    whose inputs are ``env``);
    ``size_weight`` is the weight one unit of printed size costs; ``lines``
    the pool conditional lines are fitted from (none: indexed features only);
    ``fit_top`` how many screened pairs each query fits.
    """

    def __init__(self, programs: Sequence[Program], values: np.ndarray,
                 env: Mapping[str, np.ndarray], size_weight: float, lines: LinePool | None = None,
                 fit_top: int = 5, seed: int = 0) -> None:
        self.programs = list(programs)
        self.env = env
        self.values = np.asarray(values, dtype=np.float64)
        self.index = ThresholdIndex(self.values)
        self.size_weight = size_weight
        self.penalties = self._penalties(self.programs)
        self.lines, self.fit_top = lines, fit_top
        self._seed = seed
        self._known = {p: i for i, p in enumerate(self.programs)}
        self._extra: list[tuple[np.ndarray, ThresholdIndex]] = []  # lines added on demand
        self._truths: dict[Split, np.ndarray] = {}
        self._atoms: dict[Split, Program] = {}
        self._answered: dict[int, list[int]] = {}
        self.lines_added = 0

    # -- queries --------------------------------------------------------------
    def best(self, z: np.ndarray, w: np.ndarray, top: int) -> list[Split]:
        """The ``top`` best predicates for target ``z`` under weights ``w``, by
        correct weight less size penalty, conditional lines included."""
        found = self.index.best(z, w, self.penalties, top)
        for feature in self._conditional_lines(z, w):
            if feature < len(self.penalties):
                continue  # an indexed line: the index has answered for it
            _, index = self._column(feature)
            found += [replace(s, feature=feature)
                      for s in index.best(z, w, self._penalty_rows([feature]), top=1)]
        found.sort(key=lambda s: -(s.correct - self.penalty(s)))
        return list(dict.fromkeys(found))[:top]

    def best_indexed(self, z: np.ndarray, w: np.ndarray, top: int,
                     penalties: np.ndarray | None = None) -> list[Split]:
        """Best predicates over the indexed features only, under ``penalties``
        (default: the size penalties)."""
        return self.index.best(z, w, self.penalties if penalties is None else penalties, top)

    def penalty(self, split: Split) -> float:
        """The size penalty of the atom as printed (a difference against zero
        prints as a comparison of its sides, smaller than ``atom_size`` says)."""
        return self.size_weight * self.atom(split).size

    def bounds(self, split: Split) -> tuple[float, float]:
        """The band of feature values the split keeps (or, for ``out``, drops);
        an open end is infinite."""
        u = self._distinct(split.feature)
        return (u[split.lo] if split.lo > 0 else -np.inf,
                u[split.hi] if split.hi < len(u) - 1 else np.inf)

    def split_of(self, program: Program, kind: str, bounds: tuple[float, float]) -> Split:
        """The split of ``kind`` on the feature ``program`` (indexed first if
        new) over the band ``bounds``: another fitter's split, on these rows."""
        feature = self._feature_number(program)
        u = self._distinct(feature)
        low, high = bounds
        lo = 0 if low == -np.inf else int(np.searchsorted(u, low, side="left"))
        hi = len(u) - 1 if high == np.inf else int(np.searchsorted(u, high, side="right")) - 1
        return Split(feature, kind, lo, max(lo, hi), 0.0)

    def feature(self, i: int) -> Program:
        return self.programs[i]

    def truth(self, split: Split) -> np.ndarray:
        """Where the atom holds on the fit rows."""
        if split not in self._truths:
            values, index = self._column(split.feature)
            self._truths[split] = index.truth(self._local(split), values)
        return self._truths[split]

    def atom(self, split: Split) -> Program:
        """The atom as a program with readable constants."""
        if split not in self._atoms:
            self._atoms[split] = atom_program(self.programs[split.feature], split,
                                              self._distinct(split.feature))
        return self._atoms[split]

    # -- internals ------------------------------------------------------------
    def _penalties(self, programs: Sequence[Program]) -> np.ndarray:
        sizes = [p.size for p in programs]
        return np.array([[self.size_weight * atom_size(s, k) for k in KINDS] for s in sizes]
                        ).reshape(len(sizes), len(KINDS))

    def _penalty_rows(self, features: list[int]) -> np.ndarray:
        return self._penalties([self.programs[f] for f in features])

    def _column(self, feature: int) -> tuple[np.ndarray, ThresholdIndex]:
        if feature < len(self.penalties):
            return self.values[feature], self.index
        return self._extra[feature - len(self.penalties)]

    def _distinct(self, feature: int) -> np.ndarray:
        """The feature's sorted distinct values on the fit rows."""
        _, index = self._column(feature)
        return index.distinct[0 if feature >= len(self.penalties) else feature]

    def _local(self, split: Split) -> Split:
        """The split as its own index numbers it."""
        return split if split.feature < len(self.penalties) else replace(split, feature=0)

    def _conditional_lines(self, z: np.ndarray, w: np.ndarray) -> list[int]:
        """Features (added if new) for the lines that best fit ``z`` on the rows of ``w``;
        a query met before (refits ask the same ones often) is answered from memory."""
        if self.lines is None:
            return []
        key = hash((np.asarray(z, bool).tobytes(), np.asarray(w, np.float64).tobytes()))
        if key not in self._answered:
            self._answered[key] = self._fit_lines(z, w)
        return self._answered[key]

    def _fit_lines(self, z: np.ndarray, w: np.ndarray) -> list[int]:
        pool = self.lines
        rows = np.flatnonzero(w)
        if not pool.pairs or len(rows) < 16:
            return []
        # rows drawn from the query itself: a line fit never depends on which
        # queries came before it, so extra moves elsewhere leave it unchanged
        zb, wb = np.asarray(z, bool), np.asarray(w, np.float64)
        rng = np.random.default_rng([self._seed, zlib.crc32(zb.tobytes() + wb.tobytes())])
        if len(rows) > _FIT_ROWS:
            rows = rng.choice(rows, _FIT_ROWS, replace=False)
        else:
            rows = rng.permutation(rows)
        zz, ww = zb[rows], wb[rows]
        if zz.all() or not zz.any():
            return []
        values = pool.values[:, rows]
        few = slice(0, _SCREEN_ROWS)
        alone = best_thresholds(values[:, few], zz[few], ww[few])
        joint = pool.screen(values[:, few], zz[few], ww[few])
        beats = np.flatnonzero(joint > np.maximum(alone[pool.first], alone[pool.second]))
        # a coarse screen cannot rank near-equal lines: within a few rows of the
        # best, the smaller pair goes first (x**2 - 50*y before a bent imitation)
        tied = np.round(joint[beats] / (_SCREEN_TIE * ww[few].sum()))
        ranked = beats[np.lexsort((-joint[beats], pool.sizes[beats], -tied))][: self.fit_top]
        # lines in the plane of two inputs always compete: the plainest lines of all
        chosen = list(dict.fromkeys([*pool.planes, *(pool.pairs[k] for k in ranked)]))
        # a simpler ratio may cost what RATIO_SLACK units of size are worth
        slack = RATIO_SLACK * self.size_weight / len(z) * ww.sum()
        fits = fit_linear_atoms(values, chosen, zz, ww, tolerance=slack)
        lines = [line_program(pool.programs[f.first], pool.programs[f.second], f.ratio)
                 for f in fits]
        return list(dict.fromkeys(self._feature_number(line) for line in lines))

    def _feature_number(self, program: Program) -> int:
        """The feature number of a program (a line, or another fitter's feature),
        indexing it first if it is new."""
        if program not in self._known:
            with np.errstate(all="ignore"):
                values = np.asarray(program.evaluate(self.env), dtype=np.float64)
            self._known[program] = len(self.programs)
            self.programs.append(program)
            self._extra.append((values, ThresholdIndex(values[None, :])))
            self.lines_added += 1
        return self._known[program]
