"""Threshold fitting, readable constants and atoms: optimal and exact."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.program import Var, apply
from dsl.types import INT, REAL
from synth.atom_fitter import AtomFitter, LinePool
from synth.atoms import atom_program
from synth.linear import fit_linear_atoms, line_program, simple_ratios
from synth.numbers import round_significant, simplest_in
from synth.thresholds import ThresholdIndex, best_threshold, best_thresholds, distinct_values


def brute_force_best(values: np.ndarray, z: np.ndarray, w: np.ndarray) -> float:
    """Best correct weight over every threshold and band, by trying them all."""
    u = np.unique(values)
    best = max(float(w[z].sum()), float(w[~z].sum()))  # constants
    for i in range(len(u)):
        for j in range(i, len(u)):
            inside = (values >= u[i]) & (values <= u[j])
            for pred in (inside, ~inside):
                best = max(best, float(w[pred == z].sum()))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.integers(5, 60))
def test_index_finds_the_optimal_predicate_of_every_feature(seed, n_features, n):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 8, size=(n_features, n)).astype(float)
    z = rng.random(n) < 0.5
    w = rng.integers(1, 4, size=n).astype(float)
    index = ThresholdIndex(values)
    found = index.best(z, w, top=n_features)
    best_possible = max(brute_force_best(values[f], z, w) for f in range(n_features))
    constant = max(float(w[z].sum()), float(w[~z].sum()))
    if best_possible <= constant + 1e-9:
        assert found == []  # nothing beats a constant
        return
    assert math.isclose(found[0].correct, best_possible)
    for split in found:
        truth = index.truth(split, values[split.feature])
        assert math.isclose(float(w[truth == z].sum()), split.correct)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_atom_programs_hold_exactly_where_the_split_does(seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(-20, 20, size=50)
    values = raw.astype(float)
    z = rng.random(50) < 0.5
    index = ThresholdIndex(values[None, :])
    for split in index.best(z, np.ones(50), top=1):
        program = atom_program(Var("x", INT), split, index.distinct[0])
        assert np.array_equal(program.evaluate({"x": raw}), index.truth(split, values))


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=60),
       st.sampled_from([1.0, 0.5, 1000.0]), st.booleans())
def test_distinct_values_agree_with_numpy_unique(ints, scale, spread):
    """Counting (small integer ranges) and sorting (the rest) give np.unique's answer."""
    values = np.asarray(ints, dtype=np.float64) * scale
    if spread:
        values[0] = 1e9  # a range far beyond the row count: the sorting path
    u, inverse = distinct_values(values)
    expected_u, expected_inverse = np.unique(values, return_inverse=True)
    assert np.array_equal(u, expected_u) and np.array_equal(inverse, expected_inverse)


def test_best_threshold_matches_brute_force_for_one_sided_cuts():
    values = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    z = np.array([False, False, False, True, True])
    assert best_threshold(values, z) == 5.0


@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e6), st.booleans(), st.booleans())
def test_simplest_number_lies_inside_the_interval(lo, width, lo_open, hi_open):
    hi = lo + width
    v = simplest_in(lo, hi, lo_open=lo_open, hi_open=hi_open)
    assert (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def test_simplest_number_prefers_few_digits():
    assert simplest_in(4996, 5000, lo_open=True, hi_open=False) == 5000
    assert simplest_in(16, 17, lo_open=True, hi_open=False, integer=True) == 17
    assert simplest_in(-0.0213, -0.0187, lo_open=True, hi_open=True) == -0.02
    assert simplest_in(-3, 4, lo_open=True, hi_open=True) == 0


def test_round_significant_is_exact_as_printed():
    assert round_significant(0.0199999, 2) == 0.02
    assert repr(round_significant(1234.5678, 3)) == "1230.0"


def test_real_feature_atoms_print_real_constants():
    values = np.array([0.1, 0.2, 0.3, 0.4])
    index = ThresholdIndex(values[None, :])
    split = index.best(np.array([False, False, True, True]), np.ones(4), top=1)[0]
    program = atom_program(Var("r", REAL), split, index.distinct[0])
    assert str(program) == "r > 0.2"


def test_constants_are_rounded_when_a_digit_costs_almost_nothing():
    from dsl.domains import GridDomain
    from dsl.program import apply, const
    from synth.simplify import simplify_constants

    env = GridDomain((64, 64)).all_inputs()
    truth = env["x"] * env["y"] > 1800
    fitted = apply("gt", apply("mul", Var("x"), Var("y")), const(1798))
    simpler = simplify_constants(fitted, env, truth, per_digit=1e-3)
    assert str(simpler) == "x * y > 1800"
    # a constant that matters is kept: rounding 13 to 10 would cost far too much
    modular = apply("lt", apply("mod", Var("x"), const(13)), const(4))
    labels = modular.evaluate(env)
    assert simplify_constants(modular, env, labels, per_digit=1e-3) == modular


def test_a_threshold_on_a_flat_stretch_moves_to_its_roundest_number_not_only_the_nearest():
    """A blurred boundary: labels alternate from 1.1 to 3, so fidelity is flat
    there with a faint peak at the fitted ``1.1``.  Its rounding ``1`` costs
    eleven labels, ``3`` (as few digits) one, ``2`` two: ``3`` is taken where
    a digit is worth two and a half labels, nothing where it is worth half of one."""
    from dsl.program import apply, const
    from dsl.types import REAL
    from synth.simplify import simplify_constants

    r = np.arange(606) / 101
    labels = r < 3
    blurred = (r >= 1.1) & (r < 3)
    labels[blurred] = np.arange(blurred.sum()) % 2 == 1
    labels[(r >= 1.1) & (r < 1.13)] = False
    labels[np.flatnonzero((r >= 2) & (r < 3) & ~labels)[0]] = True
    env = {"r": r}
    errors = {t: int(((r < t) != labels).sum()) for t in (1, 1.1, 2, 3)}
    assert errors == {1: 106, 1.1: 95, 2: 97, 3: 96}
    fitted = apply("lt", Var("r", REAL), const(1.1))
    per_label = 1 / len(r)
    assert str(simplify_constants(fitted, env, labels, per_digit=2.5 * per_label)) == "r < 3.0"
    assert str(simplify_constants(fitted, env, labels, per_digit=0.5 * per_label)) == "r < 1.1"


def test_a_round_constant_on_the_queries_takes_the_side_their_labels_say():
    """``x * y <= 1800`` seen through a blurred boundary: the fitted ``1797``
    rounds to ``1800``, which pairs such as ``(30, 60)`` lie on; ``<`` or
    ``<=`` is the one their labels say."""
    from dsl.domains import GridDomain
    from dsl.program import apply, const
    from synth.simplify import simplify_constants

    env = GridDomain((64, 64)).all_inputs()
    product = env["x"] * env["y"]
    wrong = (product == 1798) | (product == 100)  # the blur, and an error far off
    fitted = apply("lt", apply("mul", Var("x"), Var("y")), const(1797))
    for labels, expected in (((product <= 1800) ^ wrong, "x * y <= 1800"),
                             ((product < 1800) ^ wrong, "x * y < 1800")):
        assert str(simplify_constants(fitted, env, labels, per_digit=1e-3)) == expected


def test_a_program_that_fits_every_label_keeps_the_constants_that_make_it_so():
    from dsl.domains import GridDomain
    from dsl.program import apply, const
    from synth.simplify import simplify_constants

    env = GridDomain((64, 64)).all_inputs()
    exact = apply("gt", apply("mul", Var("x"), Var("y")), const(1798))
    labels = exact.evaluate(env)  # 1800 = 30 * 60 would be one label off
    assert simplify_constants(exact, env, labels, per_digit=1e-3) == exact


def test_a_blurred_difference_against_a_constant_compares_its_sides():
    """A network's boundary moves a unit: ``x ** 2 - 50 * y < -1`` fits its
    labels, ``x ** 2 < 50 * y`` costs the few pairs on the boundary and two nodes less."""
    from dsl.domains import GridDomain
    from dsl.program import apply, const
    from synth.simplify import simplify_constants

    env = GridDomain((113, 113)).all_inputs()
    x, y = env["x"], env["y"]
    # the boundary pairs x**2 == 50*y labelled 0, and a few errors elsewhere
    network = (x ** 2 - 50 * y < -1) ^ (np.arange(len(x)) % 997 == 0)
    fitted = apply("lt", apply("sub", apply("square", Var("x")),
                               apply("mul", const(50), Var("y"))), const(-1))
    assert str(simplify_constants(fitted, env, network, per_digit=2.5e-4, per_node=5e-4)) \
        == "x ** 2 < 50 * y"
    # where the constant decides many labels, it stays
    far = apply("lt", fitted.args[0], const(-500))
    labels = far.evaluate(env)
    assert simplify_constants(far, env, labels ^ (np.arange(len(x)) % 997 == 0),
                              per_digit=2.5e-4, per_node=5e-4) == far


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(2, 60))
def test_batched_thresholds_match_one_feature_at_a_time(seed, n_features, n):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(n_features, n)).astype(float)
    z, w = rng.random(n) < 0.5, rng.random(n)
    expected = [best_threshold(v, z, w) for v in values]
    assert np.allclose(best_thresholds(values, z, w), expected)


def test_line_ratios_prefer_small_fractions_to_decimals():
    ratios = list(simple_ratios(0.6641))
    assert ratios.index(Fraction(2, 3)) < ratios.index(0.664)
    assert ratios[0] == Fraction(1)


def test_a_fractional_ratio_prints_integer_coefficients():
    x, y = Var("x", INT), Var("y", INT)
    assert str(line_program(x, y, Fraction(2, 3))) == "3 * x + 2 * y"
    assert str(line_program(x, y, Fraction(-1, 1))) == "x - y"
    assert str(line_program(x, y, -0.25)) == "x - 0.25 * y"


def test_a_line_between_two_inputs_gets_its_exact_integer_form():
    x, y = np.meshgrid(np.arange(113), np.arange(113), indexing="ij")
    f, g = x.ravel().astype(float), y.ravel().astype(float)
    z = 3 * f + 2 * g < 230
    (fit,) = fit_linear_atoms(np.stack([f, g]), [(0, 1)], z, np.ones(len(z)))
    assert fit.ratio == Fraction(2, 3) and fit.correct == len(z)


def test_conditional_queries_fit_lines_to_the_rows_they_weigh():
    x, y = (v.ravel() for v in np.meshgrid(np.arange(60), np.arange(60), indexing="ij"))
    env = {"x": x, "y": y}
    X, Y = Var("x", INT), Var("y", INT)
    pool = [X, Y, apply("square", X), apply("square", Y)]
    values = np.stack([p.evaluate(env) for p in pool]).astype(float)
    lines = LinePool(tuple(pool), values, ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)))
    fitter = AtomFitter(pool[:2], values[:2], env, size_weight=0.01, lines=lines)
    # the circle decides only the rows where x < y; elsewhere the weight is zero
    z = x * x + y * y > 2000
    (split,) = fitter.best(z, (x < y).astype(float), top=1)
    atom = fitter.atom(split)
    assert split.feature >= 2, "a new line, not an indexed feature"
    assert np.array_equal(atom.evaluate(env), fitter.truth(split))
    assert np.array_equal(fitter.truth(split)[x < y], z[x < y])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_a_difference_against_zero_prints_as_a_comparison_of_its_sides(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 30, size=80), rng.integers(0, 30, size=80)
    feature = apply("sub", apply("mul", apply("mul", Var("x", INT), Var("x", INT)),
                                 Var("x", INT)), apply("mul", Var("y", INT), Var("y", INT)))
    values = (x ** 3 - y ** 2).astype(float)
    z = values > 0
    index = ThresholdIndex(values[None, :])
    (split,) = index.best(z, np.ones(80), top=1)
    program = atom_program(feature, split, index.distinct[0])
    assert np.array_equal(program.evaluate({"x": x, "y": y}), z)
    if z.any() and not z.all():  # a cut exists, and zero lies in its gap
        assert str(program) == "x * x * x > y * y"


def test_modular_lines_are_the_residues_enumeration_does_not_reach():
    from synth.modular import modular_lines
    x, y = Var("x", INT), Var("y", INT)
    lines = modular_lines([x, y, Var("r", REAL)], moduli=[5, 11])
    printed = {str(p) for p in lines}
    assert {"(2 * x + y) % 11", "(x - 3 * y) % 5", "(3 * x - 2 * y) % 5"} <= printed
    assert not printed & {"(x + y) % 5", "(2 * x + 2 * y) % 5"}  # enumerated; not coprime
    assert all("r" not in p for p in printed)  # integer inputs only
    xs, ys = np.arange(-20, 20), np.arange(40)[::-1]
    for p in lines:  # evaluation agrees with the printed Python
        expected = eval(str(p), {"x": xs, "y": ys})
        assert np.array_equal(p.evaluate({"x": xs, "y": ys}), expected), str(p)


def test_a_conic_is_lifted_off_the_origin_by_integer_coefficients():
    """A circle, a hyperbola and a parabola moved off the origin: a quadratic
    term plus integer multiples of its lifts, cut once, reproduces each."""
    from dsl.domains import GridDomain
    from dsl.parse import parse
    from synth.lifts import conic_lifts, fit_lift, lift_program

    env = GridDomain((113, 113)).all_inputs()
    rows = np.random.default_rng(0).choice(12769, 2048, replace=False)
    lifts = {str(term): (term, others) for term, others in conic_lifts([Var("x"), Var("y")])}
    assert set(lifts) == {"x ** 2", "y ** 2", "x * y"}
    for hidden, term in [("(x - 56)**2 + (y - 40)**2 < 800", "x ** 2"),
                         ("(x - 30) * (y - 20) > 900", "x * y"),
                         ("x * x - 6 * x < 50 * y", "x ** 2")]:
        z = np.asarray(parse(hidden).evaluate(env), dtype=bool)[rows]
        term, others = lifts[term]
        coefficients, score = fit_lift(term.evaluate(env)[rows],
                                       np.vstack([t.evaluate(env)[rows] for t in others]),
                                       z, np.ones(2048))
        assert score == 2048, hidden
        program = lift_program(term, others, coefficients)
        assert set(program.inputs) == {"x", "y"} and program.size <= 13, str(program)


def test_a_lift_prints_centred_where_its_coefficients_allow():
    from synth.lifts import conic_lifts, lift_program

    lifts = {str(term): (term, others) for term, others in conic_lifts([Var("x"), Var("y")])}
    for term, coefficients, expected in [
            ("x ** 2", (1, -112, -80), "(x - 56) ** 2 + (y - 40) ** 2"),
            ("x ** 2", (3, 4, -12), "(x + 2) ** 2 + 3 * (y - 2) ** 2"),
            ("x ** 2", (0, -6, -50), "(x - 3) ** 2 - 50 * y"),
            ("x ** 2", (1, -111, 0), "x ** 2 - 111 * x + y ** 2"),  # odd: no integer centre
            ("x * y", (-20, -30), "(x - 30) * (y - 20)")]:
        assert str(lift_program(*lifts[term], coefficients)) == expected


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["x ** 2", "y ** 2", "x * y"]), st.data())
def test_a_lift_is_its_sum_of_terms_up_to_a_constant(term, data):
    """Centring changes a lift by a constant only, which a threshold absorbs."""
    from synth.lifts import conic_lifts, lift_program

    env = {"x": np.arange(-20, 21).repeat(41), "y": np.tile(np.arange(-20, 21), 41)}
    lifts = {str(t): (t, others) for t, others in conic_lifts([Var("x"), Var("y")])}
    feature, others = lifts[term]
    coefficients = data.draw(st.lists(st.integers(-9, 9), min_size=len(others),
                                      max_size=len(others)))
    program = lift_program(feature, others, coefficients)
    expanded = feature.evaluate(env) + sum(a * t.evaluate(env)
                                           for t, a in zip(others, coefficients))
    assert np.ptp(program.evaluate(env) - expanded) == 0, str(program)


def test_a_coefficient_and_its_threshold_round_together():
    """``2 * x - y > 10`` fitted as ``x - 0.51 * y > 4.84``: rounding the
    coefficient alone, or the threshold alone, moves the line off the labels;
    rounded together they are the line itself."""
    from dsl.domains import GridDomain
    from dsl.program import apply, const
    from synth.simplify import simplify_constants

    env = GridDomain((113, 113)).all_inputs()
    x, y = env["x"], env["y"]
    labels = (2 * x - y > 10) ^ (np.arange(len(x)) % 997 == 0)
    fitted = apply("gt", apply("sub", Var("x"), apply("mul", const(0.51), Var("y"))),
                   const(4.84))
    assert str(simplify_constants(fitted, env, labels, per_digit=2.5e-4)) == "x - 0.5 * y > 5.0"
