"""Optimal threshold and band predicates over many scalar features at once.

For a target labelling ``z`` and per-row weights ``w``, the best predicate of
the form ``f <= t``, ``f > t``, ``a <= f <= b`` or its complement is found for
every feature ``f`` by counting, per distinct value of ``f``, the weight of
positive and negative rows (one ``bincount`` over all features), then prefix
sums over each feature's sorted values give every threshold's accuracy.
Bands are maximum-sum segments (Kadane's recurrence, vectorised across
features).

Queries run in two stages: a coarse pass shortlists features -- on a fixed
random sample of rows, with each feature's distinct values grouped into at
most ``bins`` rank bins -- and an exact pass over every weighted row and
every distinct value ranks the shortlist.  This is the inner loop of the
search.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Kinds of fitted predicate, by which side of the cut is True.
LE, GT, IN, OUT = "le", "gt", "in", "out"
KINDS = (LE, GT, IN, OUT)


@dataclass(frozen=True)
class Split:
    """A fitted predicate on feature ``feature`` over its sorted distinct values ``u``.

    ``le``: True for values ``<= u[hi]`` (lo = 0); ``gt``: True for values
    ``>= u[lo]`` (hi = last); ``in``: True for ``u[lo] <= f <= u[hi]``;
    ``out``: True outside that band.  ``correct`` is the weight it gets right.
    """

    feature: int
    kind: str
    lo: int
    hi: int
    correct: float = field(compare=False)


class ThresholdIndex:
    """Features' values on the fit rows, indexed for fast predicate fitting."""

    def __init__(self, values: np.ndarray, coarse_rows: int = 1024, shortlist: int = 64,
                 bins: int = 128, seed: int = 0) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"feature values must be (features, rows), got shape {values.shape}")
        self.n_features, self.n = values.shape
        self.distinct: list[np.ndarray] = []
        self.inverse = np.empty(values.shape, dtype=np.int32)
        for f in range(self.n_features):
            u, inv = distinct_values(values[f])
            self.distinct.append(u)
            self.inverse[f] = inv
        self.counts = np.array([len(u) for u in self.distinct], dtype=np.int64)
        self.coarse_rows = coarse_rows
        self.shortlist = shortlist
        rng = np.random.default_rng(seed)
        self._coarse = np.sort(rng.choice(self.n, size=min(coarse_rows, self.n), replace=False))
        # rank bins: value slot v of a feature with c distinct values -> bin v*B//c
        self._bin_counts = np.minimum(self.counts, bins)
        self._bins = ((self.inverse[:, self._coarse].astype(np.int64) * self._bin_counts[:, None])
                      // self.counts[:, None]).astype(np.int32)

    def best(self, z: np.ndarray, w: np.ndarray, penalties: np.ndarray | None = None,
             top: int = 10, bands: bool = True) -> list[Split]:
        """The ``top`` best predicates across all features for target ``z``.

        ``penalties[f, k]`` (in units of weight) is subtracted from the correct
        weight of kind ``k`` on feature ``f`` when ranking.
        """
        z = np.asarray(z, dtype=bool)
        w = np.asarray(w, dtype=np.float64)
        rows = np.flatnonzero(w)
        if len(rows) == 0:
            return []
        everything = np.arange(self.n_features)
        if self.n_features > self.shortlist:
            keep = w[self._coarse] != 0
            if keep.sum() >= min(len(rows), 64):
                sample, codes = self._coarse[keep], self._bins[:, keep]
            else:  # the weight sits on rows the coarse sample barely sees: use them all
                sample = rows
                codes = ((self.inverse[:, rows].astype(np.int64) * self._bin_counts[:, None])
                         // self.counts[:, None])
            scale = w[rows].sum() / max(w[sample].sum(), 1e-12)
            table, _ = _table(codes, self._bin_counts, z[sample], w[sample], bands)
            ranked = table * scale - _penalty(penalties, everything, table.shape[1])
            order = np.argsort(-ranked.max(axis=1), kind="stable")
            candidates = np.sort(order[: max(self.shortlist, 2 * top)])
        else:
            candidates = everything
        table, located = _table(self.inverse[np.ix_(candidates, rows)], self.counts[candidates],
                                z[rows], w[rows], bands)
        ranked = table - _penalty(penalties, candidates, table.shape[1])
        kind = np.argmax(ranked, axis=1)  # one predicate per feature: the best kind
        score = ranked[np.arange(len(candidates)), kind]
        out = []
        for f in np.argsort(-score, kind="stable")[:top]:
            if not np.isfinite(score[f]):
                break
            k = int(kind[f])
            lo, hi = located(int(f), k)
            out.append(_normal(Split(int(candidates[f]), KINDS[k], lo, hi, float(table[f, k])),
                               int(self.counts[candidates[f]])))
        return out

    def feature_scores(self, z: np.ndarray, w: np.ndarray, bands: bool = True) -> np.ndarray:
        """Per feature, the weight its best predicate gets right, on the coarse
        rows and rank bins: a cheap screen of many features."""
        keep = w[self._coarse] != 0
        sample = self._coarse[keep]
        table, _ = _table(self._bins[:, keep], self._bin_counts, np.asarray(z, bool)[sample],
                          np.asarray(w, np.float64)[sample], bands)
        return table.max(axis=1)

    def truth(self, split: Split, values: np.ndarray) -> np.ndarray:
        """Where the predicate holds, for the feature's ``values`` (any rows)."""
        u = self.distinct[split.feature]
        lo = u[split.lo] if split.lo > 0 else -np.inf
        hi = u[split.hi] if split.hi < len(u) - 1 else np.inf
        inside = (values >= lo) & (values <= hi)
        return ~inside if split.kind == OUT else inside


def distinct_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``; by counting, not sorting, when the
    values are integers of a range at most a few times their number (most features
    over integer inputs: ``x * y``, ``x % 7``), several times faster."""
    if len(values) == 0:
        return np.unique(values, return_inverse=True)
    lo, hi = values.min(), values.max()
    if hi - lo <= 4 * len(values) and np.array_equal(values, np.floor(values)):
        offset = (values - lo).astype(np.int64)
        present = np.zeros(int(hi - lo) + 1, dtype=bool)
        present[offset] = True
        rank = np.cumsum(present) - 1
        return np.flatnonzero(present) + lo, rank[offset]
    return np.unique(values, return_inverse=True)


def _table(codes: np.ndarray, counts: np.ndarray, z: np.ndarray, w: np.ndarray, bands: bool):
    """Correct weight of each kind's best predicate per feature.

    ``codes[f, r]`` is the value slot (0..counts[f]-1) of row ``r`` under
    feature ``f``; ``z``/``w`` are the rows' targets and weights.  Returns the
    (features, kinds) table and a function locating a cell's slot range.
    """
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    total = int(counts.sum())
    # one count per (slot, label); unweighted when every row weighs the same
    keys = ((codes + starts[:, None]) * 2 + z).ravel()
    if len(w) and w.min() == w.max():
        per_label = np.bincount(keys, minlength=2 * total) * float(w[0])
    else:
        per_label = np.bincount(keys, np.tile(w, len(counts)), minlength=2 * total)
    pos = per_label[1::2]
    both = pos + per_label[0::2]
    gain = 2 * pos - both  # positive minus negative weight per slot
    segment = np.repeat(np.arange(len(counts)), counts)
    pos_tot = np.add.reduceat(pos, starts)
    neg_tot = np.add.reduceat(both, starts) - pos_tot
    prefix = np.cumsum(gain)
    prefix -= np.concatenate([[0.0], prefix])[starts][segment]  # within-segment P_j
    last = np.zeros(total, dtype=bool)
    last[starts + counts - 1] = True
    le = np.where(last, -np.inf, neg_tot[segment] + prefix)
    gt = np.where(last, -np.inf, pos_tot[segment] - prefix)
    columns = [le, gt]
    if bands:
        before = prefix - gain  # P_{j-1}, zero at each segment start
        span = 4.0 * (np.abs(gain).sum() + 1.0)
        shift = segment * span
        low = np.minimum.accumulate(before - shift) + shift  # min_{i<=j} P_{i-1}
        high = -np.minimum.accumulate(-(before + shift)) - shift  # max_{i<=j} P_{i-1}
        columns += [neg_tot[segment] + prefix - low, pos_tot[segment] - prefix + high]
    table = np.stack([np.maximum.reduceat(c, starts) for c in columns], axis=1)
    # a predicate no better than a constant one explains nothing
    constant = np.maximum(pos_tot, neg_tot)
    table[table <= constant[:, None] + 1e-9] = -np.inf

    def located(f: int, k: int) -> tuple[int, int]:
        s, c = int(starts[f]), int(counts[f])
        j = int(np.argmax(columns[k][s:s + c]))
        if KINDS[k] == LE:
            return 0, j
        if KINDS[k] == GT:
            return j + 1, c - 1
        # the band i..j sums to P_j - P_{i-1}; i is where that extremum was first met
        # (found directly: the shifted running extremes are exact for integer weights only)
        window = before[s:s + j + 1]
        i = int(np.argmin(window) if KINDS[k] == IN else np.argmax(window))
        return i, j

    return table, located


def _normal(split: Split, count: int) -> Split:
    """The one-sided form of a band that reaches an end of the value range."""
    last = count - 1
    f, kind, lo, hi, c = split.feature, split.kind, split.lo, split.hi, split.correct
    if kind == IN and lo == 0:
        return Split(f, LE, 0, hi, c)
    if kind == IN and hi == last:
        return Split(f, GT, lo, last, c)
    if kind == OUT and lo == 0:
        return Split(f, GT, hi + 1, last, c)
    if kind == OUT and hi == last:
        return Split(f, LE, 0, lo - 1, c)
    return split


def _penalty(penalties: np.ndarray | None, features: np.ndarray, kinds: int):
    return 0.0 if penalties is None else penalties[features, :kinds]


def best_threshold(values: np.ndarray, z: np.ndarray, w: np.ndarray | None = None) -> float:
    """Best weighted accuracy of any one-sided threshold on one feature."""
    z = np.asarray(z, dtype=bool)
    w = np.ones(len(z)) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(values)  # ties need no order: cuts fall only between distinct values
    v, zz, ww = values[order], z[order], w[order]
    gain = np.cumsum(np.where(zz, ww, -ww))
    cut = np.concatenate([v[1:] != v[:-1], [True]])  # valid cut after this row
    prefix = np.concatenate([[0.0], gain[cut]])
    pos_tot = float(ww[zz].sum())
    neg_tot = float(ww.sum() - pos_tot)
    return float(max((neg_tot + prefix).max(), (pos_tot - prefix).max()))


def best_thresholds(values: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`best_threshold` of every row of ``values`` (features, rows) at once."""
    z = np.asarray(z, dtype=bool)
    w = np.asarray(w, dtype=np.float64)
    order = np.argsort(values, axis=1)  # any order of ties (see best_threshold)
    v = np.take_along_axis(values, order, axis=1)
    prefix = np.cumsum(np.where(z, w, -w)[order], axis=1)
    cut = np.ones(v.shape, dtype=bool)
    cut[:, :-1] = v[:, 1:] != v[:, :-1]  # valid cut after this row
    high = np.maximum(np.where(cut, prefix, -np.inf).max(axis=1), 0.0)
    low = np.minimum(np.where(cut, prefix, np.inf).min(axis=1), 0.0)
    pos_tot = float(w[z].sum())
    neg_tot = float(w.sum() - pos_tot)
    return np.maximum(neg_tot + high, pos_tot - low)
