"""Active queries: ask the oracle only where the answer tells candidates apart.

Labelling a whole domain is the expensive part when the oracle is a live
network on a large grid (a 1000x1000 grid is a million forward passes), and
most of those labels say nothing new: far from any decision boundary every
plausible program agrees.  :class:`ActiveSynthesizer` starts from a small
random sample of the domain, searches, and then, round after round, queries
the points where the current hypotheses could still be wrong:

* **undetermined** -- unqueried points where a threshold of the best program
  is not yet pinned down: for each comparison ``f < c`` whose truth decides
  the label (flipping it flips the program's answer), the queried points
  where it decides bound the threshold to an interval of ``f`` values; an
  unqueried point whose ``f`` falls inside that interval, and where the atom
  decides too, has a label no answer so far implies.  A threshold one column
  off next to a residue atom (``x > 178 and (x + y) % 3 == 0``) is wrong on
  a few hundred of a million points, which uniform or boundary samples
  rarely hit; these points find it.  A coefficient inside an atom
  (``y ** 2 < 722 * x`` for ``722.49``) is bounded likewise, jointly with the
  threshold, by the vertices of its version space
  (:mod:`synth.version_space`);
* **around mistakes** -- unqueried points on the grid lines (axes and
  diagonals, at distances 1, 2, 4, ...) through a queried point the best
  program still gets wrong: a missed thin atom (``x != y``) is wrong on the
  few of its points a random sample holds and nowhere else any query looks,
  and a line through such a point runs along it if it is a line;
* **disagreement** -- unqueried points on which the best program and the
  other leading candidates of the Pareto front (top-k by penalised fidelity)
  give different labels;
* **boundary** -- unqueried points next to the best program's decision
  boundary (a grid neighbour gets the other label): a threshold or an offset
  that is slightly off, or a near-miss such as ``y + x // 2 > 124`` for
  ``x + 2*y > 250``, is wrong exactly there;
* **exploration** -- a few uniformly random unqueried points, for regions no
  candidate has an opinion about.

Candidates are evaluated vectorised on a large random pool of unqueried
points (the whole rest of the domain when it is small enough).  When the best
program mispredicts any label of a batch, the search is refitted on everything
queried so far; otherwise every program any search has put on a front (the
hall of fame) is just rescored on all labels, so a refit cut short by its time
limit never loses a program that still explains everything.  It stops when
the query budget is spent, after ``rounds`` rounds, or once the best program
has predicted ``patience`` consecutive batches of such adversarial queries
without a single mistake, with no undetermined point left unqueried.  No
point is queried twice, so ``queries_`` (the oracle's own counter, read
before and after) equals the number of labelled points.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dsl.domains import GridDomain
from dsl.primitives import ORDERED
from dsl.program import Apply, Const, Program
from synth.pareto import pareto_front, pick_best
from synth.results import Candidate, SearchResult
from synth.version_space import coefficient_rivals, is_comparison, pivotal, polish


MAX_ESCALATION = 8.0  # a refit gets at most this many times the base's time limit
WHOLE_DOMAIN = 4_000_000  # undetermined points are looked for everywhere up to this size
MISTAKES_EXPANDED = 4  # mistakes of the best program whose grid lines a round queries


@dataclass
class Round:
    """What one round of active querying did."""

    round: int
    queried: int  # points labelled so far, after this round
    new: dict  # points added this round, by how they were chosen
    best: str  # expression of the best program before this round's queries
    correct: float | None  # share of this round's new labels the best predicted
    disagreement_pool: int  # pool points where the leading candidates disagree
    boundary_pool: int  # pool points next to the best program's boundary
    refit: bool
    seconds: float

    def to_json(self) -> dict:
        return dict(self.__dict__)


class ActiveSynthesizer:
    """Search a grid domain by querying an oracle only where it matters.

    Parameters
    ----------
    base: the :class:`~synth.search.Synthesizer` refitted after mistakes (copied;
        default ``Synthesizer(time_limit=10)``).
    initial: size of the first, uniformly random sample.
    batch: points queried per round.
    budget: most points queried in all (the initial sample included).
    rounds: most rounds after the initial sample.
    top_k: leading Pareto candidates (by penalised fidelity) compared for
        disagreement.
    pool: unqueried points candidates are evaluated on per round (the whole
        rest of the domain when it holds no more than this); undetermined
        points are looked for among all unqueried points of a domain of up to
        ``WHOLE_DOMAIN`` points.
    shares: parts of a batch given to (undetermined, disagreement, boundary,
        exploration) points; a share left unused passes to the next kind.
    patience: stop once the best program predicted this many consecutive
        batches without an error (``None``: never stop early).
    holdout: holdout fraction for the refits (``None`` keeps the base's); by
        default 0, since every query is precious and the disagreement and
        boundary queries check the program better than held-out random rows.
    escalation: a refit that spends its whole time limit without finding a
        program that explains every label queried makes the next refit's limit
        this many times longer (1: every refit gets the base's limit), up to
        ``MAX_ESCALATION`` times the base's limit.  Short refits are enough while
        the sample is small or the program easy; a program the search cannot
        find in the base's limit gets more time instead of many refits that are
        each cut short.
    time_limit: seconds for the whole active search (``None``: no limit): no round
        starts after it, and a refit gets at most what is left (but at least a
        fifth of the base's own limit), so it overruns by little.
    clock: what ``time_limit`` counts, ``"wall"`` or ``"cpu"`` seconds (as for
        :class:`~synth.search.Synthesizer`).
    """

    def __init__(self, base=None, *, initial: int = 256, batch: int = 128, budget: int = 4096,
                 rounds: int = 20, top_k: int = 6, pool: int = 200_000,
                 shares: tuple[float, ...] = (0.5, 0.2, 0.225, 0.075),
                 patience: int | None = 2, holdout: float | None = 0.0, seed: int = 0,
                 escalation: float = 2.0, time_limit: float | None = None, clock: str = "wall",
                 verbose: bool = False) -> None:
        self.base = base
        self.initial = initial
        self.batch = batch
        self.budget = budget
        self.rounds = rounds
        self.top_k = top_k
        self.pool = pool
        self.shares = shares
        self.patience = patience
        self.holdout = holdout
        self.seed = seed
        self.escalation = escalation
        self.time_limit = time_limit
        self.clock = clock
        self.verbose = verbose

    # -- public API ----------------------------------------------------------
    def fit(self, domain: GridDomain, oracle) -> ActiveSynthesizer:
        """Query ``oracle`` on points of ``domain`` and search for its program."""
        if self.budget < 1 or self.initial < 1 or self.batch < 1:
            raise ValueError("initial, batch and budget must be positive")
        if not self.escalation >= 1:
            raise ValueError(f"escalation must be at least 1, got {self.escalation}")
        from synth.search import CLOCKS
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {self.clock!r}")
        self._now = CLOCKS[self.clock]
        self._start = self._now()
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        self.domain_ = domain
        before = int(oracle.queries)
        first = sample_flat(domain, min(self.initial, self.budget, domain.size), rng)
        self.queried_ = np.sort(first)
        self.labels_ = _ask(oracle, domain, self.queried_)
        self.history_: list[Round] = []
        self.hall_: dict[str, object] = {}  # python source -> program, from every front
        self._refit_limit = None  # the next refit's limit; None: the base's
        self._expanded: set[int] = set()  # mistakes whose lines were queried
        self._refit()
        stable = 0
        self.stopped_ = "budget"
        for r in range(1, self.rounds + 1):
            t = time.perf_counter()
            if self._left() <= 0:
                self.stopped_ = "time"
                break
            remaining = min(self.budget - len(self.queried_), domain.size - len(self.queried_))
            if remaining <= 0:
                self.stopped_ = "budget" if len(self.queried_) < domain.size else "domain"
                break
            chosen, kinds, n_dis, n_bound, n_open = self._choose(min(self.batch, remaining), rng)
            if len(chosen) == 0:
                self.stopped_ = "domain"
                break
            labels = _ask(oracle, domain, chosen)
            pred = self.best_.program.evaluate(points(domain, chosen)).astype(np.int64)
            correct = float((pred == labels).mean())
            order = np.argsort(np.concatenate([self.queried_, chosen]), kind="stable")
            self.queried_ = np.concatenate([self.queried_, chosen])[order]
            self.labels_ = np.concatenate([self.labels_, labels])[order]
            best_text = str(self.best_.program)
            # converged only once no threshold or coefficient is left undetermined
            stable = stable + 1 if correct == 1.0 and n_open == 0 else 0
            done = self.patience is not None and stable >= self.patience
            # a best program that predicted every new label still explains them all:
            # rescoring the hall of fame is enough, a new search is only for mistakes
            refit = correct < 1.0
            if refit:
                self._refit()
            else:
                self._rescore()
                self._polish()  # the new labels may have pinned down what was loose
            self.history_.append(Round(r, len(self.queried_), kinds, best_text, correct, n_dis,
                                       n_bound, refit, time.perf_counter() - t))
            self._log(f"round {r}: +{len(chosen)} {kinds} -> {len(self.queried_)} queried; "
                      f"best predicted {correct:.1%}; now {self.best_.program}")
            if done:
                self.stopped_ = "converged"
                break
        else:
            self.stopped_ = "rounds"
        self.queries_ = int(oracle.queries) - before
        self.seconds_ = time.perf_counter() - start
        return self

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Labels (0/1) of the best program on ``inputs``."""
        if not hasattr(self, "best_"):
            raise RuntimeError("call fit() before predict()")
        return self.best_.program.evaluate(dict(inputs)).astype(np.int64)

    def to_json(self) -> dict:
        """The last search's JSON (as ``synth search --json`` writes it) plus an
        ``active`` section (queries, rounds) and a ``data`` section with the
        queried points and their labels, which ``synth report`` draws."""
        from synth.report import encode_array
        data = self.result_.to_json()
        data["active"] = {
            "queries": self.queries_, "budget": self.budget, "domain_size": self.domain_.size,
            "fraction_queried": len(self.queried_) / self.domain_.size,
            "stopped": self.stopped_, "seconds": self.seconds_,
            "settings": {k: v for k, v in self.get_params().items() if k != "base"},
            "rounds": [r.to_json() for r in self.history_],
        }
        known = np.zeros(self.domain_.size, dtype=bool)
        known[self.queried_] = True
        labels = np.zeros(self.domain_.size, dtype=np.int64)
        labels[self.queried_] = self.labels_
        shape = tuple(self.domain_.shape)
        data["data"] = {"domain": str(self.domain_),
                        "names": list(self.domain_.names),
                        "labels": encode_array(labels.reshape(shape)),
                        "known": encode_array(known.reshape(shape))}
        return data

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("base", "initial", "batch", "budget", "rounds",
                                              "top_k", "pool", "shares", "patience",
                                              "holdout", "seed", "escalation", "time_limit",
                                              "clock")}

    # -- rounds --------------------------------------------------------------
    def _refit(self) -> None:
        from synth.search import Synthesizer
        synthesizer = copy.copy(self.base) if self.base is not None else Synthesizer(
            time_limit=10.0)
        if self.holdout is not None:
            synthesizer.holdout = self.holdout
        base_limit = synthesizer.time_limit
        limit = self._refit_limit or base_limit
        if self.time_limit is not None:
            limit = min(limit, max(self._left(), 0.2 * base_limit))
        synthesizer.time_limit = limit
        # a new seed each round: other signature samples, other near-ties broken
        # otherwise, so the hall of fame gathers more diverse rivals
        synthesizer.seed = int(getattr(synthesizer, "seed", 0)) + len(self.history_)
        env = points(self.domain_, self.queried_)
        synthesizer.fit(env, self.labels_, input_types=self.domain_.input_types)
        self.synthesizer_ = synthesizer
        for c in synthesizer.result_.pareto:
            self.hall_.setdefault(c.python, c.program)
        self._rescore()
        self._polish()
        if self.best_.fidelity < 1.0 and synthesizer.result_.stats.seconds >= 0.85 * limit:
            grown = max(limit, self._refit_limit or base_limit) * self.escalation
            self._refit_limit = min(grown, MAX_ESCALATION * base_limit)

    def _polish(self) -> None:
        """Add to the hall of fame the leading candidates with their coefficients
        moved to the simplest values that fit every label where their atoms
        decide (:func:`~synth.version_space.polish`): a search fits a line's
        ratio to a few digits, the labels of a million-point grid can ask for
        five."""
        env = points(self.domain_, self.queried_)
        added = False
        for leader in self._leaders():
            if leader.fidelity < 1.0:
                polished = polish(leader.program, env, self.labels_)
                if polished != leader.program:
                    key = Candidate.of(polished, self.domain_.names, 0.0, None).python
                    added |= self.hall_.setdefault(key, polished) is polished
        if added:
            self._rescore()

    def _rescore(self) -> None:
        """Score every program any search has put on a front (the hall of fame) on
        all points queried so far, and keep the front and best of those.

        A refit under a time limit may miss a program an earlier one found; a
        program that still explains every label must not be lost to that."""
        synthesizer, last = self.synthesizer_, self.synthesizer_.result_
        env = points(self.domain_, self.queried_)
        z = self.labels_.astype(bool)
        scored = []
        with np.errstate(all="ignore"):
            for program in self.hall_.values():
                pred = np.asarray(program.evaluate(env), dtype=bool)
                scored.append((program, float((pred == z).mean())))
        self._scored = scored
        front = [Candidate.of(p, self.domain_.names, f, None) for p, f in pareto_front(scored)]
        best = pick_best(front, synthesizer.complexity_penalty, (len(z), 0))
        stats = dataclasses.replace(last.stats, queries=len(z))
        self.result_: SearchResult = SearchResult(best, tuple(front), stats, last.settings)
        self.best_: Candidate = best

    def _left(self) -> float:
        """Seconds left of ``time_limit`` (infinite without one)."""
        if self.time_limit is None:
            return float("inf")
        return self.time_limit - (self._now() - self._start)

    def _leaders(self) -> list[Candidate]:
        """The best program first, then the other top-k front members."""
        penalty = self.synthesizer_.complexity_penalty
        ranked = sorted(self._scored, key=lambda t: (t[1] - penalty * t[0].size, -t[0].size),
                        reverse=True)
        others = [Candidate.of(p, self.domain_.names, f, None) for p, f in ranked
                  if p != self.best_.program]
        return [self.best_, *others[: max(0, self.top_k - 1)]]

    def _choose(self, size: int, rng) -> tuple[np.ndarray, dict, int, int, int]:
        """``size`` unqueried points: around mistakes, then undetermined, disagreement,
        boundary and random ones; with the sizes of the disagreement and boundary
        sets and how many undetermined points are left unqueried."""
        domain = self.domain_
        around = self._around_mistakes(rng)[:size]
        pool = sample_flat(domain, min(self.pool, domain.size - len(self.queried_)), rng,
                           exclude=self.queried_)
        env = points(domain, pool)
        leaders = self._leaders()
        with np.errstate(all="ignore"):
            preds = np.stack([np.asarray(c.program.evaluate(env), dtype=bool)
                              for c in leaders])
        best = preds[0]
        # few points are undetermined, and a pool would miss most of them: they are
        # looked for among all unqueried points while the domain is small enough
        everywhere = domain.size <= WHOLE_DOMAIN
        unqueried = np.setdiff1d(np.arange(domain.size), self.queried_, assume_unique=True) \
            if everywhere else pool
        undetermined = unqueried[_undetermined(
            self.best_.program, points(domain, unqueried) if everywhere else env,
            points(domain, self.queried_), self.labels_, rng)]
        # disagreement with rivals that explain the labels (nearly) as well as the
        # best: a rival refuted by k more queried labels counts exp(-k/2)
        n = len(self.labels_)
        excess = np.array([max(0.0, (self.best_.fidelity - c.fidelity) * n)
                           for c in leaders[1:]])
        weights = np.exp(-excess / 2)
        alive = weights > 1e-4
        score = ((preds[1:][alive] != best) * weights[alive, None]).sum(axis=0)
        boundary = _boundary_mask(self.best_.program, domain, pool, best)
        n_dis, n_bound = int((score > 0).sum()), int(boundary.sum())
        # disagreement points, most disputed first, ties in random order
        dis = np.flatnonzero(score > 0)
        dis = dis[np.lexsort((rng.random(len(dis)), -score[dis]))]
        ranked = (undetermined, pool[dis], pool[rng.permutation(np.flatnonzero(boundary))],
                  pool[rng.permutation(len(pool))])
        chosen, rest = around, size - len(around)
        counts, quota = [len(around)], 0
        for share, order in zip(self.shares, ranked):
            quota += int(round(share * rest))
            fresh = order[~np.isin(order, chosen)]
            fresh = fresh[: max(0, min(quota, size - len(chosen)))]
            chosen = np.concatenate([chosen, fresh])
            counts.append(len(fresh))
            quota -= len(fresh)
        kinds = dict(zip(("around_mistakes", "undetermined", "disagreement", "boundary",
                          "random"), counts))
        n_open = int((~np.isin(undetermined, chosen)).sum())
        return np.sort(chosen), kinds, n_dis, n_bound, n_open

    def _around_mistakes(self, rng) -> np.ndarray:
        """Unqueried points on the grid lines (along each axis and both diagonals, at
        distances 1, 2, 4, ...) through up to ``MISTAKES_EXPANDED`` queried points the
        best program gets wrong, each mistake once.  A program that misses a thin
        atom (``x != y``: a thousand of a million points) is wrong on the few of its
        points a random sample holds, and nowhere any other query looks; the lines
        through such a point run along the thin set if it is a line."""
        pred = np.asarray(self.best_.program.evaluate(points(self.domain_, self.queried_)),
                          dtype=bool)
        wrong = self.queried_[pred != self.labels_.astype(bool)]
        wrong = [int(w) for w in rng.permutation(wrong) if int(w) not in self._expanded]
        shape = np.array(self.domain_.shape)
        steps = 2 ** np.arange(int(np.log2(shape.max())) + 1)
        out = []
        for flat in wrong[:MISTAKES_EXPANDED]:
            self._expanded.add(flat)
            centre = np.array(np.unravel_index(flat, tuple(shape)))
            for direction in _line_directions(len(shape)):
                for sign in (1, -1):
                    at = centre + sign * steps[:, None] * np.array(direction)
                    at = at[np.all((at >= 0) & (at < shape), axis=1)]
                    out.append(np.ravel_multi_index(tuple(at.T), tuple(shape)))
        if not out:
            return np.zeros(0, dtype=np.int64)
        found = np.unique(np.concatenate(out))
        return found[~np.isin(found, self.queried_)]

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)


# -- grid helpers ----------------------------------------------------------------
def _line_directions(dimension: int) -> list[tuple[int, ...]]:
    """The grid's axes and diagonals: steps in {-1, 0, 1} per axis, one of each
    pair of opposites ((1, 0), (0, 1), (1, 1), (1, -1) on a plane)."""
    return [d for d in itertools.product((-1, 0, 1), repeat=dimension)
            if any(d) and d[next(i for i, v in enumerate(d) if v)] > 0]


def points(domain: GridDomain, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The environment ``{name: values}`` of grid points given by flat (C-order) indices."""
    coords = np.unravel_index(np.asarray(flat, dtype=np.int64), tuple(domain.shape))
    return {name: c.astype(np.int64) for name, c in zip(domain.names, coords)}


def sample_flat(domain: GridDomain, n: int, rng, exclude: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct flat indices of the grid, uniformly at random, none in the
    sorted array ``exclude``; never materialises the grid (rejection sampling),
    except when ``n`` is a large part of what is left (then it enumerates)."""
    size = domain.size
    exclude = np.zeros(0, dtype=np.int64) if exclude is None else np.asarray(exclude, np.int64)
    left = size - len(exclude)
    n = min(int(n), left)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n > left // 4 and size <= 50_000_000:
        free = np.setdiff1d(np.arange(size, dtype=np.int64), exclude, assume_unique=True)
        return np.sort(rng.choice(free, size=n, replace=False))
    out = np.zeros(0, dtype=np.int64)
    while len(out) < n:
        draw = rng.integers(0, size, size=2 * (n - len(out)) + 16, dtype=np.int64)
        draw = draw[~np.isin(draw, exclude, assume_unique=False)]
        out = np.union1d(out, draw)
    return np.sort(rng.choice(out, size=n, replace=False))


def _undetermined(program: Program, pool_env: Mapping[str, np.ndarray],
                  queried_env: Mapping[str, np.ndarray], labels: np.ndarray,
                  rng) -> np.ndarray:
    """Pool indices where a threshold or a coefficient of ``program`` is not
    pinned down by the queried points, round-robin over them, each in random
    order.

    For an atom ``f op c`` (a feature against a constant) only the points where
    the atom is pivotal -- the program with the atom set True and set False
    disagree -- say anything about ``c``; the queried pivotal points on either
    side of it bound the true threshold to the open interval between their
    nearest ``f`` values, and a pivotal pool point inside that interval has a
    label the answers so far do not imply.  Coefficients inside an atom are
    bounded the same way, by the extreme rivals of their version space
    (:func:`~synth.version_space.coefficient_rivals`)."""
    per_atom = []
    with np.errstate(all="ignore"):
        for atom in {a for a in program.walk() if is_comparison(a)}:
            per_atom += [rng.permutation(found) for found in
                         coefficient_rivals(program, atom, queried_env, labels, pool_env)]
            if not _is_threshold(atom):
                continue
            feature, rising = _threshold_parts(atom)
            on_queried = pivotal(program, atom, queried_env)
            f_queried = np.asarray(feature.evaluate(queried_env), float)[on_queried]
            truth = np.asarray(atom.evaluate(queried_env), dtype=bool)[on_queried]
            below, above = (f_queried[~truth], f_queried[truth]) if rising else \
                (f_queried[truth], f_queried[~truth])
            low = below.max() if len(below) else -np.inf
            high = above.min() if len(above) else np.inf
            f_pool = np.asarray(feature.evaluate(pool_env), float)
            inside = np.flatnonzero((f_pool > low) & (f_pool < high))
            if len(inside) == 0:
                continue
            sub = {k: v[inside] for k, v in pool_env.items()}
            per_atom.append(rng.permutation(inside[pivotal(program, atom, sub)]))
    if not per_atom:
        return np.zeros(0, dtype=np.int64)
    longest = max(len(p) for p in per_atom)
    spread = np.full((len(per_atom), longest), -1, dtype=np.int64)
    for i, p in enumerate(per_atom):
        spread[i, : len(p)] = p
    order = spread.T.ravel()  # one point of each threshold in turn
    order = order[order >= 0]
    return order[np.sort(np.unique(order, return_index=True)[1])]


def _is_threshold(node: Program) -> bool:
    return (isinstance(node, Apply) and node.primitive.name in ORDERED
            and sum(isinstance(a, Const) for a in node.args) == 1)


def _threshold_parts(atom: Apply) -> tuple[Program, bool]:
    """The compared feature, and whether the atom holds above the constant."""
    const_left = isinstance(atom.args[0], Const)
    return atom.args[1 if const_left else 0], (atom.primitive.name in ("gt", "ge")) != const_left


def _boundary_mask(program, domain: GridDomain, pool: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pool points with a grid neighbour (one step along one axis) of the other label."""
    coords = np.unravel_index(pool, tuple(domain.shape))
    mask = np.zeros(len(pool), dtype=bool)
    for axis, side in enumerate(domain.shape):
        for step in (-1, 1):
            moved = coords[axis] + step
            inside = (moved >= 0) & (moved < side)
            env = {name: (np.where(inside, moved, coords[i]) if i == axis else coords[i])
                   .astype(np.int64) for i, name in enumerate(domain.names)}
            with np.errstate(all="ignore"):
                other = np.asarray(program.evaluate(env), dtype=bool)
            mask |= inside & (other != pred)
    return mask


def _ask(oracle, domain: GridDomain, flat: np.ndarray) -> np.ndarray:
    labels = np.asarray(oracle.labels(points(domain, flat))).astype(np.int64)
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"active search needs binary labels; the oracle answered "
                         f"{sorted(values)[:10]}")
    return labels


# -- command line ------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    """``synth active``: ``synth search`` that queries the oracle only where it matters."""
    from synth.cli import add_search_options

    parser = sub.add_parser("active", help="search a label table or network by active "
                                           "queries, labelling only a small part of the domain")
    parser.add_argument("--domain", default="grid:113x113",
                        help="input domain, e.g. grid:1000x1000")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="label table: .npy, or .pkl with --key")
    source.add_argument("--model", help="trained network: checkpoint or state dict")
    parser.add_argument("--key", help="key of the label array inside a .pkl file")
    parser.add_argument("--arch", help="architecture of --model (e.g. mlp)")
    parser.add_argument("--query-budget", type=int, default=4096,
                        help="most oracle queries in all (default 4096)")
    parser.add_argument("--initial", type=int, default=256, help="first random sample")
    parser.add_argument("--batch", type=int, default=128, help="queries per round")
    parser.add_argument("--rounds", type=int, default=20, help="most rounds")
    parser.add_argument("--escalation", type=float, default=2.0,
                        help="a refit cut short by --time-limit makes the next one this many "
                             "times longer (default 2; 1 keeps every refit at --time-limit)")
    add_search_options(parser, time_limit=10.0)
    parser.set_defaults(run=_run)


def _run(args) -> int:
    from dsl.domains import parse_domain
    from synth.cli import _oracle, report, synthesizer_from
    from synth.results import write_json_atomic

    domain = parse_domain(args.domain)
    base = synthesizer_from(args)
    base.progress = False
    oracle = _oracle(args, domain)
    active = ActiveSynthesizer(base, initial=args.initial, batch=args.batch,
                               budget=args.query_budget, rounds=args.rounds, seed=args.seed,
                               escalation=args.escalation,
                               verbose=not args.quiet).fit(domain, oracle)
    report(active.result_, None)
    print(f"\n{active.queries_:,} oracle queries ({active.queries_ / domain.size:.2%} of "
          f"{domain}) in {len(active.history_)} rounds, {active.seconds_:.1f} s; "
          f"stopped: {active.stopped_}")
    if args.json:
        write_json_atomic(args.json, active.to_json())
        print(f"wrote {args.json}")
    return 0
