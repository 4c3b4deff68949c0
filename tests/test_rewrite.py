"""Meaning-preserving rewrites: smaller programs, the same value on every input."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.program import Program, Var, apply, const
from dsl.rewrite import merge_comparisons
from dsl.types import INT

X, Y = Var("x", INT), Var("y", INT)
SIDES = [X, Y, apply("mod", X, const(7)), apply("add", X, Y), apply("abs", apply("sub", X, Y))]
GRID = {"x": np.repeat(np.arange(-20, 21), 41), "y": np.tile(np.arange(-20, 21), 41)}


@st.composite
def chains(draw, depth: int = 3) -> Program:
    """And/or chains of comparisons of a few sides against a few constants."""
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return apply(draw(st.sampled_from(["lt", "le", "gt", "ge", "eq"])),
                     draw(st.sampled_from(SIDES)), const(draw(st.sampled_from([0, 3, 10]))))
    return apply(draw(st.sampled_from(["and_", "or_"])), draw(chains(depth - 1)),
                 draw(chains(depth - 1)))


@settings(max_examples=300, deadline=None)
@given(chains())
def test_merging_comparisons_keeps_every_value_and_never_grows(program):
    merged = merge_comparisons(program)
    assert np.array_equal(merged.evaluate(GRID), program.evaluate(GRID))
    assert merged.size <= program.size


def test_thresholds_of_two_sides_against_one_constant_become_one_of_their_min_or_max():
    both_big = apply("and_", apply("gt", Y, const(10)), apply("gt", X, const(10)))
    assert str(merge_comparisons(both_big)) == "min(y, x) > 10"
    assert merge_comparisons(both_big).size == both_big.size - 2
    either_small = apply("or_", apply("le", X, const(3)), apply("le", Y, const(3)))
    assert str(merge_comparisons(either_small)) == "min(x, y) <= 3"


def test_comparisons_by_other_orders_or_constants_stay_apart():
    band = apply("and_", apply("gt", X, const(10)), apply("lt", X, const(90)))
    apart = apply("and_", apply("gt", X, const(10)), apply("gt", Y, const(11)))
    assert merge_comparisons(band) == band and merge_comparisons(apart) == apart


def test_a_chain_merges_across_other_terms_and_keeps_their_order():
    chain = apply("and_", apply("and_", apply("lt", X, const(3)), apply("eq", Y, const(0))),
                  apply("lt", apply("mod", X, const(7)), const(3)))
    assert str(merge_comparisons(chain)) == "max(x, x % 7) < 3 and y == 0"
