"""Version spaces of an atom's constants: rival coefficients, and polishing."""
from __future__ import annotations

import operator

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dsl.parse import parse
from synth.version_space import _threshold_between, coefficient_rivals, polish, quotient_as_line

def test_a_coefficient_off_in_its_last_digits_is_found_by_its_version_space():
    """``y ** 2 < 722 * x`` fits 4,000 random labels of ``y ** 2 < 722.49 * x``;
    the extreme rivals of the coefficient's version space point at the few pool
    points where the two differ, and at little else."""
    program = parse("y ** 2 < 722 * x and x + y > 356")
    rng = np.random.default_rng(1)

    def grid_sample(n):
        return {"x": rng.integers(0, 1000, n), "y": rng.integers(0, 1000, n)}

    def truth(env):
        return (env["y"] ** 2 < 722.49 * env["x"]) & (env["x"] + env["y"] > 356)

    queried, pool = grid_sample(4000), grid_sample(300_000)
    labels = truth(queried)
    assert np.array_equal(program.evaluate(queried), labels)  # fits every label so far
    wrong = np.flatnonzero(program.evaluate(pool) != truth(pool))
    assert len(wrong) > 0
    atom = next(a for a in program.walk() if str(a) == "y ** 2 < 722 * x")
    (found,) = coefficient_rivals(program, atom, queried, labels, pool)
    assert set(wrong.tolist()) <= set(found.tolist())
    assert len(found) < 0.01 * 300_000
    # the other atom has no coefficient to move (its only constant is the threshold)
    other = next(a for a in program.walk() if str(a) == "x + y > 356")
    assert coefficient_rivals(program, other, queried, labels, pool) == []



def _random_grid(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(0, 1000, n), "y": rng.integers(0, 1000, n)}


def test_polish_moves_a_ratio_to_the_simplest_value_that_fits_every_label():
    """The search fits ``446``; the labels of ``x ** 2 < 445.98 * y`` ask for a ratio in
    a narrow interval, whose simplest number polishing finds; the other atom stays."""
    env = _random_grid(200_000, 2)
    labels = (env["x"] ** 2 < 445.98 * env["y"]) | (env["x"] > 891)
    program = parse("x ** 2 < 446 * y or x // 4 > 222")
    assert (program.evaluate(env) != labels).sum() > 0
    polished = polish(program, env, labels)
    assert np.array_equal(polished.evaluate(env), labels)
    assert polished.size == program.size
    assert "x // 4 > 222" in str(polished) and "446 *" not in str(polished)


def test_polish_refits_the_threshold_beside_the_coefficient():
    env = _random_grid(50_000, 3)
    labels = 3 * env["x"] + 2 * env["y"] < 2052
    polished = polish(parse("3 * x + 2 * y < 2050"), env, labels)
    assert str(polished) == "3 * x + 2 * y < 2052"


def test_polish_leaves_a_fitting_program_and_never_makes_one_worse():
    env = _random_grid(20_000, 4)
    fitting = parse("x + 2 * y > 700")
    assert polish(fitting, env, fitting.evaluate(env)) is fitting
    # labels no line explains: whatever polishing moves, it fits no fewer of them
    stripes = (env["x"] + env["y"]) % 7 == 0
    polished = polish(fitting, env, stripes)
    assert polished.size <= fitting.size
    assert (polished.evaluate(env) != stripes).sum() <= (fitting.evaluate(env) != stripes).sum()


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=40), st.integers(-60, 60),
       st.sampled_from(["lt", "le", "gt", "ge"]))
def test_threshold_between_separates_what_a_threshold_separated(values, c0, op):
    compare = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}[op]
    side = np.array(values, dtype=float)
    holds = compare(side, c0)
    c = _threshold_between(side, holds, op)
    assert c is not None and np.array_equal(compare(side, c), holds)


@given(st.sampled_from(["<", "<=", ">", ">="]), st.integers(-30, 30), st.booleans(),
       st.lists(st.tuples(st.integers(-500, 500), st.integers(1, 40)), min_size=1, max_size=30))
def test_a_quotient_against_a_constant_is_its_line_where_the_divisor_is_positive(
        op, c, constant_left, pairs):
    text = f"{c} {op} x // y" if constant_left else f"x // y {op} {c}"
    atom = parse(text)
    env = {"x": np.array([a for a, _ in pairs]), "y": np.array([b for _, b in pairs])}
    line = quotient_as_line(atom)
    assert "floordiv" not in str(line)
    assert np.array_equal(line.evaluate(env), atom.evaluate(env)), (text, str(line))


def test_the_ratio_a_quotient_hides_is_found_and_polished():
    """``y ** 3 // x ** 2 > 356`` can only say 357; the labels of ``y ** 3 > 356.786 * x ** 2``
    differ on a few points, which the rivals of its line point at and polishing fits."""
    rng = np.random.default_rng(5)
    # x > 0: where the divisor is 0 the quotient is 0 and no line (x = 0 is another atom)
    env = {"x": rng.integers(1, 1000, 300_000), "y": rng.integers(0, 1000, 300_000)}
    labels = (env["y"] ** 3 > 356.786 * env["x"] ** 2) & (env["y"] < 892)
    program = parse("y ** 3 // x ** 2 > 356 and y < 892")
    wrong = np.flatnonzero(program.evaluate(env) != labels)
    assert len(wrong) > 0
    atom = next(a for a in program.walk() if str(a) == "_floordiv(y ** 3, x ** 2) > 356")
    queried = {k: v[:5000] for k, v in env.items()}
    pool = {k: v[5000:] for k, v in env.items()}
    (found,) = coefficient_rivals(program, atom, queried, labels[:5000], pool)
    missed = set((wrong[wrong >= 5000] - 5000).tolist()) - set(found.tolist())
    assert not missed and len(found) < 0.01 * len(pool["x"])
    polished = polish(program, env, labels)
    assert np.array_equal(polished.evaluate(env), labels)
    assert polished.size == program.size and "floordiv" not in str(polished)


def test_polish_moves_a_threshold_alone_when_that_fits():
    x, y = (a.ravel() for a in np.meshgrid(np.arange(1000), np.arange(1000), indexing="ij"))
    env = {"x": x, "y": y}
    labels = (x ** 3 + y ** 3 < 354_824_000) & (np.minimum(x, y) > 89) | (x % 20 == 0)
    program = parse("x ** 3 + y ** 3 < 354820000 and min(x, y) > 89 or x % 20 == 0")
    assert (program.evaluate(env) != labels).sum() == 2
    polished = polish(program, env, labels)
    assert np.array_equal(polished.evaluate(env), labels)
    # the simplest threshold with these labels on the grid; the rest as it was
    assert str(polished) == "x ** 3 + y ** 3 < 354821000 and min(x, y) > 89 or x % 20 == 0"
