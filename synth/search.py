"""The synthesizer: from an oracle's labels to a Pareto front of programs.

Pipeline (each stage a module of its own):

1. enumerate scalar features bottom-up on a signature sample of the queries,
   one per behaviour (:mod:`synth.enumerate`);
2. group features that order the rows identically -- a threshold cannot tell
   ``x`` from ``x**3`` -- and index one per group over the fit rows
   (:mod:`synth.thresholds`);
3. fit two-feature linear atoms ``f + c*g`` on the most promising pairs
   (:mod:`synth.linear`), and conics off the origin (:mod:`synth.lifts`);
4. compose fitted atoms into boolean formulas by beam search with conditional
   refits (:mod:`synth.compose`), and where the labels are ``g(x) xor h(y)``,
   search each factor on its own (:mod:`synth.decompose`);
5. refit the atoms of the best formulas on every labelled row, keeping those
   that then reproduce every label (exact repair);
6. grow a decision tree over the features, its prefixes written as programs:
   the large end of the front (:mod:`synth.trees`);
7. keep the Pareto front of size against fidelity, score held-out rows, and
   pick the best by penalised fidelity (:mod:`synth.pareto`).

The estimator follows scikit-learn: parameters in ``__init__``, ``fit``
learns from (inputs, labels), ``predict`` applies the best program.
"""
from __future__ import annotations

import copy
import inspect
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dsl.primitives import ARITHMETIC, BUILTIN, REGISTRY
from dsl.program import Apply, Const, Program, Var, apply, const, substitute
from dsl.rewrite import merge_comparisons
from dsl.types import BOOL, IMAGE, INT, NUM, REAL, Type
from synth.compose import COUNT, PAIRS, Composer, Formula, Tree
from synth.decompose import xor_split
from synth.enumerate import Enumerator, Grammar
from synth.atom_fitter import RATIO_SLACK, AtomFitter, LinePool
from synth.lifts import conic_lifts, fit_lift, lift_program
from synth.linear import fit_linear_atoms, line_program, screen_pair
from synth.modular import modular_lines
from synth.pareto import DIGIT_COST, is_exact, pareto_front, pick_best
from synth.results import Candidate, SearchResult, SearchStats
from synth.simplify import simplify_constants
from synth.thresholds import Split, ThresholdIndex, best_threshold
from synth.trees import affordable_features, tree_programs

#: What a time limit may count: wall-clock or this process's CPU seconds.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_MIX = np.array([0xBF58476D1CE4E5B9], dtype=np.uint64)
#: Most pairs of small features that composition refits lines between.
_REFIT_PAIRS = 256
#: Signature points used to group features by ordering and to screen them.
_SCREEN_POINTS = 512
#: Share of the time limit each factor of an xor decomposition is searched for.
_FACTOR_SHARE = 0.3
#: Most inputs whose conics are lifted (each lift fits one coefficient per input and square).
_LIFT_INPUTS = 3

#: The least share of the time limit the decision trees get, even when the
#: stages before them ran to the limit.
TREE_SHARE = 0.05


@dataclass(frozen=True)
class FeatureBank:
    """Indexed features: one program per ordering class."""

    programs: list[Program]
    values: np.ndarray  # (features, fit rows)


class Synthesizer:
    """Search for the simplest program that explains binary labels.

    Parameters
    ----------
    time_limit: seconds for the whole search (enumeration takes at most
        ``enumeration_share`` of it).
    max_feature_size: largest scalar feature enumerated.
    max_atoms: largest number of atoms in a formula.
    passes: composition passes, each with a beam twice as wide as the last,
        while time remains and no formula fits every row.
    pairs: when composition grows a slot by a pair of atoms, ``"always"``
        (and where a level's growth stalls, the best formula has each atom
        tried as a new pair) or
        ``"fallback"`` (only where no single atom helps: cheaper where each
        query is costly, as over image features).
    complexity_penalty: fidelity one unit of size must buy to be worth it.
    clock: what ``time_limit`` counts: ``"wall"`` seconds, or ``"cpu"`` seconds
        of this process -- the same search on a busy machine then finds the
        same programs, only later.
    holdout: fraction of rows never fitted, used to report held-out fidelity.
    primitives: names of registered primitives to build features from
        (default: the arithmetic grammar plus every user-registered primitive).
    constants / moduli: literal leaves; moduli only as divisors of ``%`` and ``//``.
    features: extra leaves, scalar programs over the inputs (e.g. image
        features from :func:`dsl.images.image_features`); arithmetic is then
        enumerated over them as over input variables.  Inputs that are not
        scalar (images) enter programs only through such features.
    tree_leaves / tree_features: the largest decision tree written onto the
        front (:mod:`synth.trees`), and the most indexed features it splits on
        (the best alone, and those of the composed formulas; fewer where the
        time left affords fewer); 0 leaves for none.

    After ``fit``: ``best_`` (the chosen :class:`Candidate`), ``result_`` (the
    front and the search's statistics), ``input_names_``, and ``holdout_rows_``
    (the indices of the rows held out of fitting, on which held-out fidelity is
    measured).
    """

    def __init__(self, *, time_limit: float = 60.0, max_feature_size: int = 6,
                 max_atoms: int = 12, beam_width: int = 4, passes: int = 4,
                 pairs: str = "always",
                 complexity_penalty: float = 5e-4,
                 holdout: float = 0.2, signature_size: int = 2048, max_features: int = 2500,
                 linear_pairs: int = 24, primitives: Sequence[str] | None = None,
                 constants: Sequence[int | float] = (1, 2), moduli: Sequence[int] = range(2, 21),
                 features: Sequence[Program] = (), enumeration_share: float = 0.4,
                 tree_leaves: int = 256, tree_features: int = 256, seed: int = 0,
                 clock: str = "wall", progress: bool = False) -> None:
        self.time_limit = time_limit
        self.max_feature_size = max_feature_size
        self.max_atoms = max_atoms
        self.beam_width = beam_width
        self.passes = passes
        self.pairs = pairs
        self.complexity_penalty = complexity_penalty
        self.holdout = holdout
        self.signature_size = signature_size
        self.max_features = max_features
        self.linear_pairs = linear_pairs
        self.primitives = primitives
        self.constants = constants
        self.moduli = moduli
        self.features = tuple(features)
        self.enumeration_share = enumeration_share
        self.tree_leaves = tree_leaves
        self.tree_features = tree_features
        self.seed = seed
        self.clock = clock
        self.progress = progress

    # -- public API ----------------------------------------------------------
    def fit(self, inputs: Mapping[str, np.ndarray], labels: np.ndarray,
            input_types: Mapping[str, Type] | None = None,
            sample_weight: np.ndarray | None = None) -> Synthesizer:
        """Search for programs over ``inputs`` (name -> array of N) explaining ``labels``.

        ``sample_weight`` (N positive numbers) says how much each label
        counts: fidelity is then the weighted share of labels reproduced, in
        the search and on the front (e.g. a network's confidence, see
        :func:`synth.confidence.confidence_weights`).  Exactness still means
        every label."""
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {self.clock!r}")
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {self.pairs!r}")
        now = self._now = CLOCKS[self.clock]
        start = self._start = now()
        deadline = start + 0.88 * self.time_limit  # the rest repairs, scores and reports
        env, z = _validate(inputs, labels)
        weights = _validate_weights(sample_weight, len(z))
        types = dict(input_types or {name: _infer_type(v) for name, v in env.items()})
        self.input_names_ = tuple(env)
        rng = np.random.default_rng(self.seed)
        hold_rows, fit_rows = holdout_split(len(z), self.holdout, rng)
        self.holdout_rows_ = hold_rows
        fit_env = {k: v[fit_rows] for k, v in env.items()}
        zf = z[fit_rows]
        w = weights[fit_rows]
        sig_rows = rng.choice(len(fit_rows), size=min(self.signature_size, len(fit_rows)),
                              replace=False)
        sig_env = {k: v[sig_rows] for k, v in fit_env.items()}

        factored = self._xor_factors(fit_env, zf, types)
        interrupted = False
        enumerator = Enumerator(self._grammar(types), sig_env, seed=self.seed, clock=now)
        self._log(f"enumerating features up to size {self.max_feature_size} "
                  f"on {len(sig_rows)} signature points")
        try:
            enum_deadline = start + self.enumeration_share * self.time_limit
            for _ in enumerator.run(self.max_feature_size, enum_deadline):
                pass
        except KeyboardInterrupt:
            interrupted = True
        self._log(f"  {enumerator.kept} distinct features of {enumerator.candidates} "
                  f"candidates, complete to size {enumerator.max_size_completed}")

        bank = self._feature_bank(enumerator, sig_rows, zf, fit_env, w)
        small = _affine_representatives(
            [p for p in enumerator.programs([INT, REAL]) if _shallow(p) and _continuous(p)],
            sig_env)
        bank, lines = self._add_linear_atoms(bank, small, sig_rows, zf, fit_env, w)
        bank = self._add_lifts(bank, enumerator.grammar, sig_rows, zf, fit_env, w)
        fitter = AtomFitter(bank.programs, bank.values, fit_env,
                            self.complexity_penalty * w.sum(), lines, seed=self.seed)
        self._log(f"indexed {len(bank.programs)} features over {len(zf)} fit rows")

        def size_of(tree: Tree, atoms: tuple[Split, ...]) -> int:
            return _tree_program(tree, atoms, fitter.atom).size

        composer = Composer(fitter.best, fitter.truth, size_of, zf, w, self.complexity_penalty,
                            self.beam_width, self.max_atoms, passes=self.passes,
                            pairs=self.pairs, clock=now)
        initial = self._initial_atoms(fitter, bank, zf, w)
        try:
            formulas = composer.search(initial, deadline, self._on_level(composer, fitter.atom))
        except KeyboardInterrupt:
            interrupted = True
            formulas = sorted(composer.seen.values(), key=composer.score, reverse=True)

        chosen = _formula_front(formulas)
        fitted = [(_tree_program(f.tree, f.atoms, fitter.atom), f.correct / w.sum())
                  for f in chosen]
        fitted += [(p, _agreement(p, fit_env, zf, w)) for p in factored]
        repair = (self._exact_repair(_formula_front(formulas, per_size=1), fitter, lines, env, z,
                                     start + 0.95 * self.time_limit) if len(hold_rows) else [])
        trees = self._trees(fitter, chosen, zf, w,
                            max(start + self.time_limit, now() + TREE_SHARE * self.time_limit))
        front, as_fitted = self._front(fitted, (fit_env, zf, w),
                                       ({k: v[hold_rows] for k, v in env.items()},
                                        z[hold_rows], weights[hold_rows]), repair, trees)
        best = pick_best(front, self.complexity_penalty, (len(zf), len(hold_rows)))
        seconds = now() - start
        stats = SearchStats(programs_evaluated=enumerator.kept + composer.evaluated,
                            candidates_generated=enumerator.candidates + composer.evaluated,
                            seconds=seconds, max_feature_size=enumerator.max_size_completed,
                            features_indexed=len(fitter.programs), queries=len(z),
                            interrupted=interrupted)
        self._close_progress()
        self.result_ = SearchResult(best, tuple(front), stats, self.get_params(),
                                    as_fitted=tuple(as_fitted))
        self.best_ = best
        return self

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Labels (0/1) of the best program on ``inputs``."""
        if not hasattr(self, "best_"):
            raise RuntimeError("call fit() before predict()")
        return self.best_.program.evaluate(dict(inputs)).astype(np.int64)

    def get_params(self) -> dict:
        """The constructor's parameters, as JSON-friendly values."""
        names = inspect.signature(type(self).__init__).parameters
        out = {}
        for name in names:
            if name == "self":
                continue
            value = getattr(self, name)
            if isinstance(value, (range, tuple, list)):
                value = [str(v) if isinstance(v, Program) else v for v in value]
            out[name] = value
        return out

    # -- stages --------------------------------------------------------------
    def _grammar(self, types: Mapping[str, Type]) -> Grammar:
        names = self.primitives
        if names is None:  # the arithmetic grammar plus every registered extension
            names = [*ARITHMETIC, *(p.name for p in REGISTRY if p.name not in BUILTIN)]
        prims = tuple(p for p in REGISTRY.select(names) if p.search and _numeric(p))
        inputs = tuple(Var(name, t) for name, t in types.items() if t in (INT, REAL))
        inputs += tuple(f for f in self.features if f not in inputs)
        if not inputs:
            raise ValueError("nothing to build programs from: no scalar input and no features")
        consts = tuple(const(c) for c in self.constants)
        lits = tuple(const(int(m)) for m in self.moduli)
        return Grammar(inputs, consts, prims, (("mod", lits), ("floordiv", lits)))

    def _feature_bank(self, enumerator: Enumerator, sig_rows, zf, fit_env,
                      w_fit: np.ndarray) -> FeatureBank:
        """One feature per ordering class, the most promising first."""
        programs, sig_values = enumerator.values_of([INT, REAL], points=_SCREEN_POINTS)
        if not programs:
            raise ValueError("the grammar produced no numeric feature: check inputs and primitives")
        grammar = enumerator.grammar
        if any(p.name == "mod" for p in grammar.primitives):
            residues = modular_lines(grammar.inputs, self.moduli)
            screen_env = {k: v[sig_rows[:_SCREEN_POINTS]] for k, v in fit_env.items()}
            programs = programs + residues
            sig_values = np.concatenate([sig_values, _evaluate_all(residues, screen_env)])
        keys = _ordering_keys(sig_values)
        classes: dict[int, list[int]] = {}
        for i, key in enumerate(keys.tolist()):
            classes.setdefault(key, []).append(i)
        reps = [members[0] for members in classes.values()]
        # rank classes: small ones always, then by how well one cut explains the
        # labels, or how close it comes to a necessary or sufficient condition --
        # each as its gain over the constant answer under the same weights, so a
        # skewed weighting's high baseline does not drown the others
        z_sig = zf[sig_rows[:_SCREEN_POINTS]]
        scout = ThresholdIndex(sig_values[reps], coarse_rows=len(z_sig))
        w = w_fit[sig_rows[:_SCREEN_POINTS]]
        scores = np.full(len(reps), -np.inf)
        for weights in (w, w * (1 + 9 * z_sig), w * (1 + 9 * ~z_sig)):
            total = weights.sum()
            base = max(weights[z_sig].sum(), weights[~z_sig].sum()) / total
            gain = (scout.feature_scores(z_sig, weights) / total - base) / max(1 - base, 1e-12)
            scores = np.maximum(scores, gain)
        sizes = np.array([programs[r].size for r in reps])
        # every feature up to size 4 (a conjunct may explain nothing alone), then
        # larger ones by how much one cut of them explains
        priority = np.lexsort((-scores, np.minimum(sizes, 5)))
        chosen = priority[: self.max_features]
        chosen_programs = [programs[reps[c]] for c in chosen]
        values = _evaluate_all(chosen_programs, fit_env)
        return FeatureBank(chosen_programs, values)

    def _add_linear_atoms(self, bank: FeatureBank, small: list[Program], sig_rows, zf,
                          fit_env, w_fit: np.ndarray) -> tuple[FeatureBank, LinePool | None]:
        """Add ``f + c*g`` features for the best-screened pairs of small features,
        and return the pool of pairs that composition refits lines from.

        Only small features pair up: a line through two large features is
        flexible enough to imitate a conjunction, which composition states
        more plainly."""
        if self.linear_pairs <= 0:
            return bank, None
        pool = list(dict.fromkeys(small))
        pairs = [(i, j) for i in range(len(pool)) for j in range(i + 1, len(pool))
                 if not _same_inputs_single(pool[i], pool[j])]
        fit_values = _evaluate_all(pool, fit_env)
        pool_values = fit_values[:, sig_rows]
        z_sig, w = zf[sig_rows], w_fit[sig_rows]
        few = slice(0, 512)  # screening needs only a rough score
        alone = [best_threshold(v[few], z_sig[few], w[few]) for v in pool_values]

        joint = {(i, j): screen_pair(pool_values[i, few], pool_values[j, few], z_sig[few],
                                     w[few]) for i, j in pairs}
        # composition refits lines on every query: only the most promising pairs
        # (all of them for a few inputs; a bounded share of many image features)
        refit = sorted(pairs, key=lambda p: -joint[p])[:_REFIT_PAIRS]
        lines = LinePool(tuple(pool), fit_values, tuple(sorted(refit)))
        # best lines first, among those that beat both their features alone; no
        # feature in more than two pairs, so one strong feature cannot crowd out the rest
        ranked = sorted((p for p in pairs if joint[p] > max(alone[p[0]], alone[p[1]])),
                        key=lambda p: -joint[p])
        uses: dict[int, int] = {}
        # lines in the plane of two inputs always compete: the plainest atoms of all
        chosen = [p for p in ranked if pool[p[0]].size == 1 and pool[p[1]].size == 1]
        for i, j in ranked:
            if (i, j) in chosen:
                continue
            if uses.get(i, 0) < 2 and uses.get(j, 0) < 2:
                chosen.append((i, j))
                uses[i], uses[j] = uses.get(i, 0) + 1, uses.get(j, 0) + 1
            if len(chosen) == self.linear_pairs:
                break
        fits = fit_linear_atoms(pool_values, chosen, z_sig, w,
                                tolerance=RATIO_SLACK * self.complexity_penalty * w.sum())
        new = [line_program(pool[fit.first], pool[fit.second], fit.ratio) for fit in fits]
        new = [p for p in dict.fromkeys(new) if p not in set(bank.programs)]
        if not new:
            return bank, lines
        values = np.concatenate([bank.values, _evaluate_all(new, fit_env)])
        self._log(f"  added {len(new)} linear two-feature atoms")
        return FeatureBank(bank.programs + new, values), lines

    def _add_lifts(self, bank: FeatureBank, grammar: Grammar, sig_rows, zf,
                   fit_env, w_fit: np.ndarray) -> FeatureBank:
        """Add conics ``x ** 2 + a * y ** 2 + b * x + c * y`` and
        ``x * y + b * x + c * y`` for integer coefficients (:mod:`synth.lifts`):
        shapes moved off the origin, where each beats its quadratic term alone by
        more than its extra nodes are worth."""
        inputs = [v for v in grammar.inputs if isinstance(v, Var) and v.type in (INT, REAL)]
        if not 1 <= len(inputs) <= _LIFT_INPUTS:
            return bank
        sig_env = {k: v[sig_rows] for k, v in fit_env.items()}
        z_sig, w = zf[sig_rows], w_fit[sig_rows]
        fitted = []
        for term, lifts in conic_lifts(inputs):
            values = _evaluate_all([term, *lifts], sig_env)
            lift = fit_lift(values[0], values[1:], z_sig, w)
            if lift is None:
                continue
            coefficients, score = lift
            program = lift_program(term, lifts, coefficients)
            worth = self.complexity_penalty * w.sum() * (program.size - term.size)
            if score > best_threshold(values[0], z_sig, w) + worth:
                fitted.append(program)
        new = [p for p in dict.fromkeys(fitted) if p not in set(bank.programs)]
        if not new:
            return bank
        self._log(f"  added {len(new)} conic lifts")
        return FeatureBank(bank.programs + new,
                           np.concatenate([bank.values, _evaluate_all(new, fit_env)]))

    def _initial_atoms(self, fitter: AtomFitter, bank: FeatureBank, z, w) -> list[Split]:
        """Diverse first atoms: the most accurate; the best necessary and
        sufficient conditions (positives, resp. negatives, weighted heavily);
        the best small ones; and the best cut of each input alone, which may explain nothing by
        itself yet be half of the answer (``(x > 40) != (y < 70)``)."""
        out: list[Split] = []
        per = max(2, self.beam_width)
        for weights in (w, w * (1 + 9 * z), w * (1 + 9 * ~z)):
            out.extend(fitter.best(z, weights, top=per))
        # Occam's share: the best atoms when size costs twenty times more
        out.extend(fitter.best_indexed(z, w, per, 20 * fitter.penalties))
        inputs = [i for i, p in enumerate(bank.programs) if p.size == 1]
        for i in inputs:
            out.extend(fitter.best_indexed(z, w, 1, _only(fitter.penalties, i)))
        return list(dict.fromkeys(out))

    def _xor_factors(self, fit_env: Mapping[str, np.ndarray], zf: np.ndarray,
                     types: Mapping[str, Type]) -> list[Program]:
        """``g(x) != h(y)``, each factor searched on its own input's values, when
        the labels decompose so (:mod:`synth.decompose`): an xor of conditions
        on different inputs has no marginal signal for composition to grow from.
        Each factor's search has ``_FACTOR_SHARE`` of the time limit."""
        split = xor_split(fit_env, zf)
        if split is None:
            return []
        self._log(f"  labels are g({split.first}) xor h({split.second}) on "
                  f"{split.agreement:.4f} of the fit rows: searching each factor")
        factors = []
        for name, values, labels in ((split.first, split.first_values, split.first_labels),
                                     (split.second, split.second_values, split.second_labels)):
            sub = copy.copy(self)
            # only the factor's best program is used: no trees for its front
            sub.time_limit, sub.holdout, sub.progress, sub.tree_leaves = (
                _FACTOR_SHARE * self.time_limit, 0.0, False, 0)
            sub.features = tuple(f for f in self.features if set(f.inputs) <= {name})
            sub.fit({name: values}, labels.astype(np.int64), {name: types[name]})
            factors.append(sub.best_.program)
        return [apply("xor", *factors)]

    def _exact_repair(self, formulas: list[Formula], fitter: AtomFitter, lines: LinePool | None,
                      env: Mapping[str, np.ndarray], z: np.ndarray,
                      deadline: float) -> list[Program]:
        """Programs reproducing every label, fit and held out, from refitting
        the atoms of the front's formulas on all rows, and growing each by one
        more atom there.

        The fit rows alone may not tell near-equivalent atoms apart: where the
        rest of a formula leaves ``sqrt(x) + sqrt(y) < 18`` and ``x * y < 6600``
        a few pairs to decide, all of them may be held out; and an atom that
        decides a few pairs (``x > 5``) is worth less than its nodes under the
        penalty, so the search need not have tried it.  A refit on every
        row can, and a program that then reproduces every label is exact however
        it was found.  An inexact refit is dropped, so held-out fidelity stays
        an estimate for every other program."""
        if not formulas or self._now() > deadline:
            return []
        indexed = fitter.programs[:len(fitter.penalties)]
        # the formulas' own features, and the plainest ones they may trade for
        programs = list(dict.fromkeys([p for p in indexed if p.size <= 3]
                                      + [fitter.feature(s.feature)
                                         for f in formulas for s in f.atoms]))
        pool = None if lines is None else LinePool(
            lines.programs, _evaluate_all(list(lines.programs), env), lines.pairs)
        full = AtomFitter(programs, _evaluate_all(programs, env), env,
                          self.complexity_penalty * len(z), pool, seed=self.seed)

        def size_of(tree: Tree, atoms: tuple[Split, ...]) -> int:
            return _tree_program(tree, atoms, full.atom).size

        # a light size penalty: only exact results are kept, whatever their atoms cost
        composer = Composer(full.best, full.truth, size_of, z, np.ones(len(z)),
                            self.complexity_penalty / 16, pairs=self.pairs, clock=self._now)
        found = []
        for f in sorted(formulas, key=lambda f: -f.correct):
            if self._now() > deadline:
                break
            atoms = tuple(full.split_of(fitter.feature(s.feature), s.kind, fitter.bounds(s))
                          for s in f.atoms)
            g = composer.prune(composer.refit(composer.make(f.tree, atoms)))
            grown = [] if composer.perfect(g) else composer.grow(g, top=1, deadline=deadline)
            grown = sorted(grown, key=lambda h: -h.correct)[:3]
            found += [_tree_program(h.tree, h.atoms, full.atom)
                      for h in [g, *grown, *map(composer.refit, grown)] if composer.perfect(h)]
        self._log(f"  exact repair: {len(found)} of {len(formulas)} formulas reproduce every label")
        return found

    def _trees(self, fitter: AtomFitter, formulas: list[Formula], zf: np.ndarray,
               w: np.ndarray, deadline: float) -> list[Program]:
        """Decision trees (:mod:`synth.trees`) over the indexed features -- the
        features best alone and those of ``formulas``, as many as the time to
        ``deadline`` affords -- and over the inputs alone, whose splits are
        coarser but many more fit in the same size."""
        budget = min(self.tree_features,
                     affordable_features(deadline - self._now(), len(zf)))
        if self.tree_leaves < 2 or budget < 2:
            return []
        indexed = len(fitter.penalties)
        scores = fitter.index.feature_scores(zf, w)
        used = [s.feature for f in formulas for s in f.atoms if s.feature < indexed]
        chosen = list(dict.fromkeys(used + np.argsort(-scores, kind="stable").tolist()))[:budget]
        inputs = [i for i in range(indexed) if isinstance(fitter.feature(i), Var)]
        trees = []
        for group in (chosen, inputs):
            grown = tree_programs([fitter.feature(i) for i in group], fitter.values[group],
                                  zf, w, self.tree_leaves, self.seed)
            self._log(f"  {len(grown)} decision trees over {len(group)} features, up to "
                      f"{grown[-1].size if grown else 0} nodes")
            trees += grown
        return trees

    def _front(self, fitted: list[tuple[Program, float]], fit: tuple, held: tuple,
               exact: Sequence[Program] = (), trees: Sequence[Program] = ()
               ) -> tuple[list[Candidate], list[Candidate]]:
        """Pareto front of the fitted programs, constants simplified, and of
        ``trees`` (their constants already the simplest), comparisons merged
        (:func:`dsl.rewrite.merge_comparisons`), held-out scored (``fit`` and
        ``held`` are each inputs, labels, weights); with ``exact``
        programs (every label, fit and held out), the smallest of them, which
        dominates every larger inexact program.  Second, the front by fidelity
        alone of the same programs with their constants simplified or as
        fitted (``SearchResult.as_fitted``)."""
        fit_env, zf, w = fit
        majority = Const(bool(np.average(zf, weights=w) >= 0.5), BOOL)
        fitted = [(majority, _agreement(majority, fit_env, zf, w)), *fitted]
        lower, lift, lowered_env = _feature_variables([p for p, _ in fitted] + list(trees),
                                                      self.features, fit_env)
        simpler, as_fitted = [], []
        for program, fidelity in fitted:
            as_fitted.append((merge_comparisons(program), fidelity))
            program = simplify_constants(lower(program), lowered_env, zf,
                                         DIGIT_COST * self.complexity_penalty,
                                         self.complexity_penalty, weights=w)
            simpler.append((merge_comparisons(lift(program)),
                            _agreement(program, lowered_env, zf, w)))
        simpler += [(merge_comparisons(tree), _agreement(lower(tree), lowered_env, zf, w))
                    for tree in trees]
        front = pareto_front(simpler, self.complexity_penalty)
        faithful = pareto_front(simpler + as_fitted, 0.0)
        scored = [Candidate.of(program, self.input_names_, fidelity, holdout)
                  for (program, fidelity), holdout
                  in zip(front + faithful, self._held_out(front + faithful, held))]
        out, faithful = scored[:len(front)], scored[len(front):]
        if exact:
            smallest = min(map(merge_comparisons, exact), key=lambda p: p.size)
            out = [c for c in out if c.size < smallest.size or is_exact(c)]
            if not any(is_exact(c) and c.size <= smallest.size for c in out):
                out.append(Candidate.of(smallest, self.input_names_, 1.0, 1.0))
            out.sort(key=lambda c: c.size)
        return out, faithful

    def _held_out(self, front: list[tuple[Program, float]], held: tuple) -> list[float | None]:
        """Each program's fidelity on the held-out rows (none without them),
        each feature computed once."""
        if not len(held[1]):
            return [None] * len(front)
        lower, _, env = _feature_variables([p for p, _ in front], self.features, held[0])
        return [_agreement(lower(p), env, *held[1:]) for p, _ in front]

    def _on_level(self, composer: Composer, program_of):
        def report(n_atoms: int, beam: list[Formula]) -> None:
            if beam:
                top = beam[0]
                self._log(f"  {n_atoms} atoms: best fidelity {top.correct / composer.total:.4f} "
                          f"size {top.size}: {_tree_program(top.tree, top.atoms, program_of)}")
        return report

    def _log(self, message: str) -> None:
        """A progress line above the time bar (stderr), when ``progress`` is set."""
        if self.progress:
            bar = getattr(self, "_bar", None)
            if bar is None:
                self._bar = bar = tqdm(total=round(self.time_limit), unit="s", file=sys.stderr,
                                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s",
                                       leave=False, desc="search")
            bar.write(message)
            bar.n = min(round(self._now() - self._start), bar.total)
            bar.refresh()

    def _close_progress(self) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
            self._bar = None


# -- helpers -------------------------------------------------------------------
def _numeric(prim) -> bool:
    """Whether a primitive maps numbers to a number (what features are built from)."""
    return prim.ret_type in (INT, REAL, NUM) and all(t in (INT, REAL, NUM)
                                                     for t in prim.arg_types)


def holdout_split(n: int, holdout: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The held-out and the fit rows of ``n`` (sorted), as :meth:`Synthesizer.fit` draws them.

    ``Synthesizer(seed=s, holdout=h).fit`` holds out
    ``holdout_split(n, h, np.random.default_rng(s))[0]``, so features built outside
    the search can leave the same rows unread."""
    order = rng.permutation(n)
    n_hold = int(round(holdout * n)) if n > 10 else 0
    return np.sort(order[:n_hold]), np.sort(order[n_hold:])


def _validate(inputs: Mapping[str, np.ndarray], labels) -> tuple[dict, np.ndarray]:
    if not inputs:
        raise ValueError("no inputs given: pass a mapping from input name to array")
    env = {}
    for name, v in inputs.items():
        arr = np.asarray(v)
        if arr.ndim not in (1, 3):
            raise ValueError(f"input {name!r} must hold one value (shape (N,)) or one image "
                             f"(shape (N, H, W)) per row, got shape {arr.shape}")
        env[name] = arr
    labels = np.asarray(labels)
    lengths = {name: len(v) for name, v in env.items()}
    if labels.ndim != 1 or any(n != len(labels) for n in lengths.values()):
        raise ValueError(f"labels of shape {labels.shape} do not match inputs of lengths "
                         f"{lengths}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError("labels contain NaN or inf")
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be binary 0/1, found values {sorted(values)[:10]}")
    return env, labels.astype(bool)


#: Weights count in steps of 1/WEIGHT_STEPS of the largest: sums of such numbers
#: are exact in floating point, which the threshold index's comparisons rely on.
WEIGHT_STEPS = 64


def _validate_weights(sample_weight, n: int) -> np.ndarray:
    """Per-row weights: ones by default, else N finite positive numbers, scaled to
    a largest of 1 and rounded to steps of ``1 / WEIGHT_STEPS`` (at least one step)."""
    if sample_weight is None:
        return np.ones(n)
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"sample_weight of shape {weights.shape} does not match {n} labels")
    if not np.isfinite(weights).all() or (weights <= 0).any():
        raise ValueError("sample_weight must be finite and positive (a label that should not "
                         "count is better left out of the queries)")
    steps = np.maximum(np.round(weights / weights.max() * WEIGHT_STEPS), 1)
    return steps / WEIGHT_STEPS


def _agreement(program: Program, env: Mapping[str, np.ndarray], z: np.ndarray,
               w: np.ndarray) -> float:
    """The weighted share of rows where ``program`` gives the label ``z``."""
    with np.errstate(all="ignore"):
        pred = np.asarray(program.evaluate(env), dtype=bool)
    return float(np.average(np.broadcast_to(pred, z.shape) == z, weights=w))


def _infer_type(values: np.ndarray) -> Type:
    values = np.asarray(values)
    if values.ndim == 3:
        return IMAGE
    return INT if values.dtype.kind in "iub" else REAL


def _ordering_keys(values: np.ndarray, columns: int = 256) -> np.ndarray:
    """A key per row, equal for rows that order the first ``columns`` points
    identically (up to reversal): a threshold cannot tell such features apart."""
    values = values[:, :columns]
    order = np.argsort(values, axis=1)  # tied values share a dense rank in any order
    sorted_vals = np.take_along_axis(values, order, axis=1)
    steps = np.concatenate([np.zeros((len(values), 1)), np.diff(sorted_vals, axis=1) > 0], axis=1)
    dense_sorted = np.cumsum(steps, axis=1).astype(np.int64)
    dense = np.empty_like(dense_sorted)
    np.put_along_axis(dense, order, dense_sorted, axis=1)
    reverse = dense.max(axis=1, keepdims=True) - dense
    return np.minimum(_row_hash(dense), _row_hash(reverse))


def _row_hash(rows: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(12345)
    mult = rng.integers(1, 2**63, size=rows.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) * _MIX[0]
        z ^= z >> np.uint64(29)
        return (z * mult).sum(axis=1, dtype=np.uint64)


def _formula_front(formulas: list[Formula], per_size: int = 3) -> list[Formula]:
    """The ``per_size`` most faithful formulas of each size seen: the front is
    built from all of them, not only from the best-scoring ones, and of one
    size the simplest constants may decide (a line before a hyperbola that
    bends to a few more labels)."""
    by_size: dict[int, list[Formula]] = {}
    for f in formulas:
        by_size.setdefault(f.size, []).append(f)
    return [f for group in by_size.values()
            for f in sorted(group, key=lambda f: -f.correct)[:per_size]]


def _shallow(program: Program) -> bool:
    """An input, or one primitive applied to inputs and constants (``x**2``,
    ``x*y``, ``sqrt(x)``): the features lines are drawn between.  Deeper ones
    (``sqrt(sqrt(x))``, ``(y**2)**2``) bend a line into a curve flexible enough
    to imitate any boundary roughly, crowding out the plain line that fits it
    exactly."""
    return all(not isinstance(c, Apply) for c in program.children)


def _continuous(program: Program) -> bool:
    """Free of ``%`` and ``//``: a line through periodic or stepped features
    imitates a boolean combination, which composition states plainly."""
    return not any(isinstance(n, Apply) and n.primitive.name in ("mod", "floordiv")
                   for n in program.walk())


def _affine_representatives(programs: list[Program], env) -> list[Program]:
    """The first program of each class of features equal up to ``a*f + b``: a
    line ``f + c*g > d`` absorbs scale and shift, so ``y + 2`` adds nothing to ``y``."""
    if not programs:
        return []
    values = _evaluate_all(programs, {k: v[:256] for k, v in env.items()})
    spread = values.std(axis=1, keepdims=True)
    z = (values - values.mean(axis=1, keepdims=True)) / np.where(spread == 0, 1, spread)
    sign = np.sign(z[np.arange(len(z)), np.argmax(np.abs(z) > 1e-9, axis=1)])[:, None]
    keys = np.round(z * np.where(sign == 0, 1, sign), 6)
    seen: dict[bytes, Program] = {}
    for program, key, s in zip(programs, keys, spread[:, 0]):
        if s > 0:
            seen.setdefault(key.tobytes(), program)
    return list(seen.values())


def _only(penalties: np.ndarray, feature: int) -> np.ndarray:
    """Penalties that rule out every feature but ``feature``."""
    out = np.full_like(penalties, np.inf)
    out[feature] = penalties[feature]
    return out


def _feature_variables(programs: Sequence[Program], features: Sequence[Program],
                       env: Mapping[str, np.ndarray]):
    """Each feature that ``programs`` use as a variable holding its values on
    ``env``: simplifying a program evaluates it many times, and an image
    feature (holes, a template's cosine) is costly to compute each time.
    Returns the map from a program to its lowered form, the map back, and
    ``env`` with the features' values."""
    used = {n for p in programs for n in p.walk()} & set(features)
    # the largest first: a feature inside another is lowered with it
    names = {f: Var(f"_feature{i}", f.type)
             for i, f in enumerate(sorted(used, key=lambda f: -f.size))}
    lowered_env = {**env, **{v.name: f.evaluate(env) for f, v in names.items()}}

    def lower(program: Program) -> Program:
        for f, v in names.items():
            program = substitute(program, f, v)
        return program

    def lift(program: Program) -> Program:
        for f, v in names.items():
            program = substitute(program, v, f)
        return program

    return lower, lift, lowered_env


def _evaluate_all(programs: list[Program], env: Mapping[str, np.ndarray]) -> np.ndarray:
    n = len(next(iter(env.values())))
    out = np.empty((len(programs), n))
    with np.errstate(all="ignore"):
        for i, p in enumerate(programs):
            out[i] = p.evaluate(env)
    return out


def _same_inputs_single(a: Program, b: Program) -> bool:
    """Two functions of one and the same scalar input: a line in their plane is a
    curve in one variable, which bands on that variable already express."""
    return (len(a.inputs) == 1 and a.inputs == b.inputs
            and all(isinstance(v, Var) and v.type in (INT, REAL)
                    for v in a.walk() if isinstance(v, Var)))


def _tree_program(tree: Tree, atoms: tuple[Split, ...], program_of) -> Program:
    """A composed formula as a program; "at least k of" (``synth.compose.COUNT``)
    is ``int(a) + int(b) + ... >= k``."""
    if tree[0] == "atom":
        return program_of(atoms[tree[1]])
    if tree[0] == COUNT:
        counts = [apply("int_", _tree_program(child, atoms, program_of)) for child in tree[2:]]
        total = counts[0]
        for count in counts[1:]:
            total = apply("add", total, count)
        return apply("ge", total, const(tree[1]))
    op = {"and": "and_", "or": "or_", "xor": "xor"}[tree[0]]
    return apply(op, _tree_program(tree[1], atoms, program_of),
                 _tree_program(tree[2], atoms, program_of))
