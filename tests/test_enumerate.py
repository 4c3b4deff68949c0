"""Specification of the bottom-up enumerator (synth.enumerate).

The enumerator must find every behaviour that the grammar can express up to
a size bound, each with a program of minimal size, and keep one program per
behaviour.  It is checked against a naive brute-force enumerator written
here independently: every well-typed tree up to the size bound, each
evaluated with :meth:`Program.evaluate`.

The enumerator builds programs only from programs it kept, and it keeps
neither out-of-range values (``|v| > 2**53``, NaN, inf) nor constant
behaviours other than the leaves of size 1.  So the brute force counts a tree
only when each of its subtrees is keepable in that sense (each non-leaf
subtree in range and non-constant).  Replacing a subtree by a kept program
with the same behaviour and no larger size never changes a behaviour, which
is why the two sets must agree exactly.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.primitives import MAX_SAFE, REGISTRY
from dsl.printing import to_expression
from dsl.program import Apply, Program, Var, const
from dsl.types import BOOL, accepts
from synth.enumerate import Enumerator, Grammar

X, Y, P = Var("x"), Var("y"), Var("p", BOOL)


def grammar(inputs, constants, names, slot_literals=()) -> Grammar:
    return Grammar(tuple(inputs), tuple(const(c) for c in constants), tuple(REGISTRY.select(names)),
                   tuple((name, tuple(const(c) for c in lits)) for name, lits in slot_literals))


ARITH = grammar([X, Y], [0, 1], ["add", "sub", "mul", "floordiv", "mod", "neg", "abs", "min",
                                 "max", "square", "cube", "sqrt"],
                [("mod", [3, 7]), ("floordiv", [2, 3])])
#: Slot literals on commutative primitives: ``x * y + 10`` has its literal last.
LITERALS = grammar([X, Y], [1], ["add", "mul", "min", "div", "eq"],
                   [("add", [10]), ("min", [4]), ("div", [2, 0.5])])
LOGIC = grammar([X, Y, P], [1, 0.5], ["div", "sub", "lt", "eq", "and_", "or_", "xor", "not_",
                                      "ite"])


def env_of(xs, ys, ps=None) -> dict[str, np.ndarray]:
    env = {"x": np.array(xs, dtype=np.int64), "y": np.array(ys, dtype=np.int64)}
    if ps is not None:
        env["p"] = np.array(ps, dtype=bool)
    return env


# ---------------------------------------------------------------------------
# The reference: naive brute force over all trees.

def behaviour(t, values) -> tuple:
    values = np.asarray(values)
    row = values.astype(bool) if t is BOOL else values.astype(np.float64)
    return (t, tuple(row.tolist()))


def brute_force(g: Grammar, env, max_size: int) -> dict[tuple, int]:
    """Minimal size of every behaviour of a keepable tree of size <= ``max_size``.

    Trees are built from all keepable trees of smaller sizes, every split of
    the size budget (``size - cost``) over the arguments, every argument whose
    type the slot accepts, and the slot literals of a primitive in its last
    argument.  Values come from ``Program.evaluate`` (int64 for Int); a float64
    shadow of every value catches int64 overflow wrapping back into range.
    """
    n = len(next(iter(env.values())))
    trees: dict[int, list[tuple[Program, np.ndarray]]] = {}  # size -> (tree, float64 shadow)
    best: dict[tuple, int] = {}

    def keep(size, tree, shadow, leaf) -> None:
        with np.errstate(all="ignore"):
            values = tree.evaluate(env)
        if tree.type is not BOOL:
            for v in (values, shadow):
                v = np.asarray(v, dtype=np.float64)
                if not (np.isfinite(v).all() and (np.abs(v) <= MAX_SAFE).all()):
                    return
        if not leaf and (values == values[0]).all():
            return
        trees[size].append((tree, shadow))
        best.setdefault(behaviour(tree.type, values), size)

    def shadow_of(leaf: Program) -> np.ndarray:
        v = np.broadcast_to(leaf.evaluate(env), (n,))
        return v if leaf.type is BOOL else v.astype(np.float64)

    trees[1] = []
    for leaf in (*g.inputs, *g.constants):
        keep(1, leaf, shadow_of(leaf), leaf=True)
    literals = {name: [(lit, shadow_of(lit)) for lit in lits] for name, lits in g.slot_literals}
    for size in range(2, max_size + 1):
        trees[size] = []
        for prim in g.primitives:
            budget = size - prim.cost
            for sizes in itertools.product(range(1, budget + 1), repeat=prim.arity):
                if sum(sizes) != budget:
                    continue
                pools = [trees[s] for s in sizes]
                if sizes[-1] == 1 and prim.name in literals:
                    pools[-1] = pools[-1] + literals[prim.name]
                for args in itertools.product(*pools):
                    if not all(accepts(slot, a.type) for slot, (a, _) in zip(prim.arg_types, args)):
                        continue
                    tree = Apply(prim, tuple(a for a, _ in args))
                    with np.errstate(all="ignore"):
                        shadow = np.asarray(prim.impl(*(s for _, s in args)))
                    keep(size, tree, shadow, leaf=False)
    return best


def enumerated(e: Enumerator) -> dict[tuple, list[Program]]:
    """Behaviour -> kept programs, from the enumerator's banks (its stored values)."""
    out: dict[tuple, list[Program]] = {}
    for size in sorted(e.banks):
        for t, bank in e.banks[size].items():
            if not bank.programs:
                continue
            for program, row in zip(bank.programs, bank.values):
                out.setdefault(behaviour(t, row), []).append(program)
    return out


def check_against_brute_force(g: Grammar, env, max_size: int) -> None:
    e = Enumerator(g, env)
    yielded = list(e.run(max_size))
    assert e.max_size_completed == max_size
    kept = enumerated(e)
    reference = brute_force(g, env, max_size)

    # one program per behaviour
    duplicates = {k: [to_expression(p) for p in ps] for k, ps in kept.items() if len(ps) > 1}
    assert not duplicates
    # the same behaviours
    missing = set(reference) - set(kept)
    extra = set(kept) - set(reference)
    assert not missing, f"{len(missing)} behaviours not enumerated, e.g. {sorted(missing)[:3]}"
    assert not extra, [to_expression(kept[k][0]) for k in extra]
    # each of minimal size, with the values stored for it
    for key, (program,) in kept.items():
        assert program.size == reference[key], (to_expression(program), reference[key])
        assert behaviour(program.type, program.evaluate(env)) == key, to_expression(program)
    # run() yields every kept program once, by size
    assert sorted(id(p) for _, p in yielded) == sorted(id(ps[0]) for ps in kept.values())
    assert [s for s, _ in yielded] == sorted(s for s, _ in yielded)
    assert all(p.size == s for s, p in yielded)
    assert e.kept == len(kept)


# ---------------------------------------------------------------------------
# Enumerator == brute force.

def test_arithmetic_grammar_matches_brute_force():
    env = env_of([-5, -2, 0, 3, 7, 10], [4, -3, 0, 3, -7, 1])
    check_against_brute_force(ARITH, env, 5)


def test_logic_grammar_matches_brute_force():
    env = env_of([-2, 0, 1, 3, 5, 2], [1, 0, 1, -3, 5, 4], [True, False, True, False, True, True])
    check_against_brute_force(LOGIC, env, 6)


def test_slot_literals_of_commutative_primitives_match_brute_force():
    env = env_of([-5, -2, 0, 3, 7, 10], [4, -3, 0, 3, -7, 1])
    check_against_brute_force(LITERALS, env, 5)
    e = Enumerator(LITERALS, env)
    list(e.run(5))
    assert "x * y + 10" in {to_expression(p) for p in e.programs()}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=1, max_size=6))
def test_random_query_sets_match_brute_force(pts):
    env = env_of([p[0] for p in pts], [p[1] for p in pts])
    check_against_brute_force(ARITH, env, 4)


def test_large_values_are_dropped():
    g = grammar([X], [], ["cube", "mul"])
    env = env_of([2**10, 3, -5], [0, 0, 0])
    del env["y"]
    check_against_brute_force(g, env, 6)
    e = Enumerator(g, env)
    list(e.run(6))
    assert all(np.abs(e.values_of()[1]).max(axis=1) <= MAX_SAFE)


# ---------------------------------------------------------------------------
# Deadlines.

def test_a_deadline_in_the_past_still_gives_the_leaves():
    """However late, a search has its inputs and constants to build from."""
    e = Enumerator(ARITH, env_of([1, 2, 3], [3, 1, 2]))
    assert {size for size, _ in e.run(6, deadline=time.perf_counter() - 1)} == {1}
    assert e.max_size_completed == 1


def test_deadline_stops_after_completed_sizes():
    e = Enumerator(ARITH, env_of([1, 2, 3], [3, 1, 2]))
    list(e.run(3))
    assert e.max_size_completed == 3
    assert list(e.run(8, deadline=time.perf_counter() - 1)) == []
    assert e.max_size_completed == 3
    start = time.perf_counter()
    list(e.run(30, deadline=start + 0.2))
    assert time.perf_counter() - start < 10
    assert 3 <= e.max_size_completed < 30


class _Clock:
    """A fake ``time`` for synth.enumerate: every reading advances one tick."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.95])
def test_deadline_inside_a_size_then_resume(monkeypatch, fraction):
    """A deadline may fall inside a size: that size is not reported complete,
    and running on afterwards finds exactly what an uninterrupted run finds."""
    import synth.enumerate as enumerate_module
    env = env_of([-5, -2, 0, 3, 7, 10], [4, -3, 0, 3, -7, 1])
    clock = _Clock()
    monkeypatch.setattr(enumerate_module, "time", clock)
    full = Enumerator(ARITH, env)
    list(full.run(4, deadline=float("inf")))  # counts the clock readings of a whole run
    ticks = clock.now
    clock.now = 0.0
    e = Enumerator(ARITH, env)
    done = list(e.run(4, deadline=fraction * ticks))
    assert e.max_size_completed < 4
    assert all(size <= e.max_size_completed for size, _ in done)
    list(e.run(4))
    assert e.max_size_completed == 4
    assert set(enumerated(e)) == set(enumerated(full))
    assert all(len(ps) == 1 for ps in enumerated(e).values())
