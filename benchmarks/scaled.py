"""The ``grid`` suite scaled up to 1000x1000, searched by active queries (issue 6).

Scaling
-------
A ``grid`` program is written over (x, y) in 0..112.  Its 1000x1000 version
is derived mechanically, atom by atom (an atom is a leaf comparison; a
comparison of comparisons such as ``(x > 4) != (y < 7)`` or a count
``(x > 1) + (y > 2) >= 2`` is a connective, and its atoms are scaled in
place):

* a **geometric** atom -- one without ``%`` or ``//``: thresholds, lines,
  polynomials, roots, min/max/abs, and equalities such as ``x == y`` or
  ``x + y == 112`` -- is the same shape stretched over the larger grid: it is
  evaluated at the real point ``(x / s, y / s)``, ``s = 999 / 112`` (the map
  of 0..112 onto 0..999 that takes corner to corner), so the line
  ``3*x + 2*y < 230`` becomes ``3*x + 2*y < 2051.5``, the disc of radius r
  one of radius ``r*s``, and the anti-diagonal ``x + y == 112`` the
  anti-diagonal ``x + y == 999``;
* an **arithmetic** atom -- one with ``%`` or ``//``: residues, parities --
  keeps its text: a residue class has no size to stretch, so ``x % 7 < 3``
  stays the same stripes of period 7 on the larger grid.

The alternatives are worse: evaluating the original program at the coarse
point ``(x*113 // 1000, y*113 // 1000)`` turns every line into a staircase and
every residue into stripes of period 2000/113, which no small program over
(x, y) states; substituting ``x -> x/s`` in modular atoms too gives residues
of real numbers with period 11*s and the like, and parities that hold
nowhere.  The chosen scaling keeps every scaled program inside the engine's
language: the same atoms with other constants (moduli unchanged, in 2..20).

The scaled text is produced by pushing the factor ``s`` through the syntax
tree: every node gets a degree (``x`` has degree 1, ``x*y`` 2, ``sqrt(x)``
1/2, a number 0) with ``value(x/s, y/s) = s**-degree * value'(x, y)``;
terms of a sum, operands of ``min``/``max`` and sides of a comparison are
brought to one degree by rescaling their numeric coefficients (a term with
no number to absorb the factor sets the degree), and the positive factor of
a comparison is dropped.  Each new constant is then printed as the shortest
decimal that leaves the atom's labels on all 10^6 points unchanged
(``x > 508.4`` prints as ``x > 508``: on integers they are the same
predicate).  The printed text *is* the hidden program of the scaled task;
:func:`definition_labels` evaluates the definition above directly (geometric
atoms on the real points, exactly with fractions at the points where
floating point cannot tell the sides of a comparison apart) and
:func:`check_scaling` counts the points where the two differ -- zero for
every task, which the benchmark records and the tests check.

The benchmark
-------------
Each scaled task's labels (the whole 1000x1000 table, made from the hidden
program) are served by a :class:`~oracles.table.TableOracle`, which counts
the rows it answers.  :class:`~synth.active.ActiveSynthesizer` sees only the
answers to the queries it asks (at most 2% of the domain, 20,000 points), and
its best program is then scored against the hidden program on all 10^6
points: ``exact`` means equal everywhere.  Search time limits count CPU
seconds of this process (``clock="cpu"``), so results do not depend on the
machine's load.

``python -m benchmarks.scaled --out DIR`` (or ``synth bench-active``) runs
the suite; one JSON file per task under ``DIR/tasks`` makes it resumable,
and ``DIR/table.md`` and ``DIR/summary.json`` are rewritten after every task.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks.programs import (HiddenProgram, _CMPOPS, _NumpyEvaluator, _PythonEvaluator,
                                 parse_hidden)
from benchmarks.suites import GRID_SUITE, Task
from dsl.domains import GridDomain

#: Sides of the original and the scaled grids.
SIDE_FROM, SIDE_TO = 113, 1000
#: The stretch: 0..112 onto 0..999, corner to corner.
SCALE = Fraction(SIDE_TO - 1, SIDE_FROM - 1)
SCALED_DOMAIN = f"grid:{SIDE_TO}x{SIDE_TO}"
#: Issue 6's query budget: 2% of the 10^6 points.
QUERY_BUDGET = SIDE_TO * SIDE_TO // 50

_NAMES = ("x", "y")
_SQRT_FUNCS = {"sqrt": Fraction(1, 2), "cbrt": Fraction(1, 3)}
_SAME_DEGREE_FUNCS = {"abs", "fabs"}
_UNIFY_FUNCS = {"min", "max"}


# -- scaling the text ----------------------------------------------------------------
class Exact:
    """A scaled constant: ``value * SCALE**power`` (exact when the power is whole)."""

    def __init__(self, value: Fraction, power: Fraction) -> None:
        self.value, self.power = value, power

    def times(self, power: Fraction) -> Exact:
        return Exact(self.value, self.power + power)

    def fraction(self) -> Fraction | None:
        if self.power.denominator == 1:
            return self.value * SCALE ** int(self.power)
        return None

    def __float__(self) -> float:
        exact = self.fraction()
        if exact is not None:
            return float(exact)
        return float(self.value) * float(SCALE) ** float(self.power)


def _number(value) -> Fraction:
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _const(node: ast.AST) -> bool:
    """Holds no input (scales as a number)."""
    return not any(isinstance(n, ast.Name) and n.id in _NAMES for n in ast.walk(node))


def _is_atom(node: ast.AST) -> bool:
    return isinstance(node, ast.Compare) and not any(
        isinstance(m, ast.Compare) for c in [node.left, *node.comparators] for m in ast.walk(c))


def _arithmetic(atom: ast.AST) -> bool:
    """An atom with a residue or a floor division: it keeps its text."""
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mod, ast.FloorDiv))
               for n in ast.walk(atom))


def _foldable(node: ast.AST) -> bool:
    """Can a positive factor be folded into a number of ``node`` (no new product)?"""
    if _const(node):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _foldable(node.operand)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _foldable(node.left) and _foldable(node.right)
        if isinstance(node.op, ast.Mult):
            return _foldable(node.left) or _foldable(node.right)
        if isinstance(node.op, ast.Div):
            return _foldable(node.left) or _const(node.right)
    return False


def _fold(node: ast.AST, power: Fraction) -> ast.AST:
    """``node`` multiplied by ``SCALE**power``, folded into its numbers where it can be."""
    if power == 0:
        return node
    if _const(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, Exact):
            return ast.Constant(node.value.times(power))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return ast.Constant(Exact(_number(node.value), power))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return ast.UnaryOp(ast.USub(), _fold(node.operand, power))
        return ast.BinOp(ast.Constant(Exact(Fraction(1), power)), ast.Mult(), node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and _foldable(node.operand):
        return ast.UnaryOp(node.op, _fold(node.operand, power))
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)) and _foldable(node):
            return ast.BinOp(_fold(node.left, power), node.op, _fold(node.right, power))
        if isinstance(node.op, ast.Mult):
            if _foldable(node.left):
                return ast.BinOp(_fold(node.left, power), node.op, node.right)
            if _foldable(node.right):
                return ast.BinOp(node.left, node.op, _fold(node.right, power))
        if isinstance(node.op, ast.Div):
            if _foldable(node.left):
                return ast.BinOp(_fold(node.left, power), node.op, node.right)
            if _const(node.right):
                return ast.BinOp(node.left, node.op, _fold(node.right, -power))
    return ast.BinOp(ast.Constant(Exact(Fraction(1), power)), ast.Mult(), node)


@dataclass
class _Scaled:
    node: ast.AST
    degree: Fraction


def _unify(parts: list[_Scaled], originals: Sequence[ast.AST]) -> tuple[list[ast.AST], Fraction]:
    """Bring operands to one degree; the degree is set by an operand that cannot absorb a
    factor (the highest such), else by the highest non-constant operand."""
    rigid = [p.degree for p, o in zip(parts, originals) if not _foldable(p.node)]
    varying = [p.degree for p, o in zip(parts, originals) if not _const(o)]
    target = max(rigid) if rigid else (max(varying) if varying else Fraction(0))
    return [_fold(p.node, target - p.degree) if not _const(o) or p.degree != target
            else p.node for p, o in zip(parts, originals)], target


def _scale_expr(node: ast.AST) -> _Scaled:
    """``node`` over the small grid -> (node', degree) with
    ``node(x/s, y/s) == s**-degree * node'(x, y)``."""
    if isinstance(node, ast.Name):
        return _Scaled(node, Fraction(1) if node.id in _NAMES else Fraction(0))
    if isinstance(node, ast.Constant) or isinstance(node, ast.Attribute):
        return _Scaled(node, Fraction(0))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _scale_expr(node.operand)
        return _Scaled(ast.UnaryOp(node.op, inner.node), inner.degree)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            left, right = _scale_expr(node.left), _scale_expr(node.right)
            (a, b), degree = _unify([left, right], [node.left, node.right])
            return _Scaled(ast.BinOp(a, node.op, b), degree)
        if isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = _scale_expr(node.left), _scale_expr(node.right)
            sign = 1 if isinstance(node.op, ast.Mult) else -1
            return _Scaled(ast.BinOp(left.node, node.op, right.node),
                           left.degree + sign * right.degree)
        if isinstance(node.op, ast.Pow) and _const(node.right):
            base = _scale_expr(node.left)
            exponent = _number(ast.literal_eval(node.right))
            return _Scaled(ast.BinOp(base.node, ast.Pow(), node.right), base.degree * exponent)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        args = [_scale_expr(a) for a in node.args]
        if name in _SQRT_FUNCS and len(args) == 1:
            return _Scaled(ast.Call(node.func, [args[0].node], []),
                           args[0].degree * _SQRT_FUNCS[name])
        if name in _SAME_DEGREE_FUNCS and len(args) == 1:
            return _Scaled(ast.Call(node.func, [args[0].node], []), args[0].degree)
        if name in _UNIFY_FUNCS:
            nodes, degree = _unify(args, node.args)
            return _Scaled(ast.Call(node.func, nodes, []), degree)
        if name == "pow" and len(args) == 2 and _const(node.args[1]):
            exponent = _number(ast.literal_eval(node.args[1]))
            return _Scaled(ast.Call(node.func, [args[0].node, node.args[1]], []),
                           args[0].degree * exponent)
    if _const(node):
        return _Scaled(node, Fraction(0))
    raise ValueError(f"cannot scale {ast.unparse(node)!r}: no rule for this construct "
                     f"(a geometric atom may use + - * / ** sqrt cbrt abs min max)")


def _scale_atom(atom: ast.Compare) -> ast.Compare:
    operands = [atom.left, *atom.comparators]
    parts = [_scale_expr(o) for o in operands]
    nodes, _ = _unify(parts, operands)
    return ast.Compare(nodes[0], list(atom.ops), nodes[1:])


class _AtomScaler(ast.NodeTransformer):
    def visit_Compare(self, node):
        if _is_atom(node):
            return node if _arithmetic(node) else _scale_atom(node)
        return self.generic_visit(node)


_BaseUnparser = getattr(ast, "_Unparser", None)  # CPython's printer behind ast.unparse


def _unparse(tree: ast.AST) -> str:
    """``ast.unparse`` without the parentheses it puts around the third and later
    operands of ``and``/``or`` (``a and b and (c > 1)``)."""
    if _BaseUnparser is None:  # pragma: no cover - another Python
        return ast.unparse(tree)

    class Unparser(_BaseUnparser):
        def visit_BoolOp(self, node):
            operator = self.boolops[node.op.__class__.__name__]
            precedence = self.boolop_precedence[operator]
            with self.require_parens(precedence, node):
                self.interleave(lambda: self.write(f" {operator} "),
                                lambda value: (self.set_precedence(precedence.next(), value),
                                               self.traverse(value)), node.values)

    try:
        return Unparser().visit(tree)
    except AttributeError:  # pragma: no cover - a private API that changed
        return ast.unparse(tree)


def _atoms(tree: ast.AST) -> list[ast.Compare]:
    return [n for n in ast.walk(tree) if _is_atom(n)]


@lru_cache(maxsize=1)
def _grid_env() -> dict[str, np.ndarray]:
    env = GridDomain((SIDE_TO, SIDE_TO)).all_inputs()
    for v in env.values():
        v.setflags(write=False)
    return env


def _labels(text: str, env: Mapping[str, np.ndarray]) -> np.ndarray:
    return parse_hidden(text, _NAMES).evaluate(env)


def _decimals(value: float) -> list[float | int]:
    """Candidate printed forms of ``value``, fewest significant digits first (at each
    number of digits: rounded, then rounded down, then up)."""
    out: list[float | int] = []
    for digits in range(1, 18):
        step = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1) if value else 1.0
        rounded = float(f"{value:.{digits}g}")
        for c in (rounded, math.floor(value / step) * step, math.ceil(value / step) * step):
            c = float(f"{c:.{digits}g}")
            c = int(c) if c == int(c) and abs(c) < 2 ** 53 else c
            if c not in out:
                out.append(c)
    out.append(value)
    return out


def _print_constants(atom: ast.Compare, env: Mapping[str, np.ndarray]) -> None:
    """Replace the atom's :class:`Exact` constants, in place, by the shortest decimals
    that keep its labels on ``env`` (exact whole numbers print as such)."""
    slots = [n for n in ast.walk(atom) if isinstance(n, ast.Constant)
             and isinstance(n.value, Exact)]
    pending = []
    for slot in slots:
        exact = slot.value.fraction()
        if exact is not None and exact.denominator == 1:
            slot.value = int(exact)
        else:
            pending.append(slot)
    if not pending:
        return
    for slot in pending:
        slot.value = float(slot.value)
    reference = _labels(ast.unparse(atom), env)
    for slot in pending:
        full = slot.value
        for candidate in _decimals(full):
            slot.value = candidate
            if np.array_equal(_labels(ast.unparse(atom), env), reference):
                break
        else:  # pragma: no cover - the full float is the last candidate
            slot.value = full


@lru_cache(maxsize=None)
def scale_program(source: str) -> str:
    """The 1000x1000 version of a ``grid`` program (see the module docstring)."""
    tree = parse_hidden(source, _NAMES).tree
    scaled = _AtomScaler().visit(ast.parse(ast.unparse(tree), mode="eval"))
    env = _grid_env()
    for atom in _atoms(scaled):
        _print_constants(atom, env)
    text = _unparse(scaled)
    # a scaled program is a valid hidden program, and printing changed nothing
    assert ast.dump(ast.parse(text, mode="eval")) == ast.dump(
        ast.parse(ast.unparse(scaled), mode="eval")), text
    parse_hidden(text, _NAMES)
    return text


# -- the definition, evaluated directly -----------------------------------------------
def _exact_point(atom: ast.Compare, x: int, y: int) -> bool:
    """A geometric atom at the real point (x/s, y/s), in exact fractions (roots in floats)."""
    env = {"x": Fraction(x) / SCALE, "y": Fraction(y) / SCALE}
    return bool(_PythonEvaluator(env).run(atom))


class _DefinitionEvaluator(_NumpyEvaluator):
    """The original program with geometric atoms on (x/s, y/s) and arithmetic atoms on
    (x, y); comparisons floating point cannot settle are redone exactly."""

    def __init__(self, env: Mapping[str, np.ndarray]) -> None:
        super().__init__(env)
        self.ints = {k: np.asarray(v) for k, v in env.items()}
        self.reals = {k: np.asarray(v) / float(SCALE) for k, v in env.items()}
        self.near_ties = 0

    def _Compare(self, node):
        if not _is_atom(node):
            return super()._Compare(node)
        if _arithmetic(node):
            self.env = self.ints
            return super()._Compare(node)
        self.env = self.reals
        operands = [np.asarray(self.run(o), dtype=float) for o in [node.left, *node.comparators]]
        out, near = True, False
        for op, a, b in zip(node.ops, operands, operands[1:]):
            out = np.logical_and(out, _CMPOPS[type(op)](a, b))
            near = near | (np.abs(a - b) <= 1e-9 * (1 + np.abs(a) + np.abs(b)))
        out = np.array(np.broadcast_to(out, self.ints["x"].shape))
        where = np.flatnonzero(np.broadcast_to(near, out.shape))
        self.near_ties += len(where)
        for i in where.tolist():
            out[i] = _exact_point(node, int(self.ints["x"][i]), int(self.ints["y"][i]))
        return out


def definition_labels(source: str, env: Mapping[str, np.ndarray] | None = None
                      ) -> tuple[np.ndarray, int]:
    """Labels of the scaled version of ``source`` by definition (not from its printed
    text), and the number of atom evaluations settled exactly."""
    env = _grid_env() if env is None else env
    program = parse_hidden(source, _NAMES)
    evaluator = _DefinitionEvaluator(env)
    with np.errstate(all="ignore"):
        values = evaluator.run(program.tree.body)
    n = len(env["x"])
    return np.broadcast_to(np.asarray(values), (n,)).astype(np.int64), evaluator.near_ties


def check_scaling(source: str) -> int:
    """Points of the 1000x1000 grid where the printed scaled program differs from the
    definition (0 when the scaling is right)."""
    env = _grid_env()
    defined, _ = definition_labels(source, env)
    return int((_labels(scale_program(source), env) != defined).sum())


# -- tasks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaledTask:
    """A ``grid`` task stretched to 1000x1000."""

    original: Task

    @property
    def name(self) -> str:
        return self.original.name

    @property
    def program(self) -> str:
        return scale_program(self.original.program)

    def grid(self) -> GridDomain:
        return GridDomain((SIDE_TO, SIDE_TO))

    def hidden(self) -> HiddenProgram:
        return parse_hidden(self.program, _NAMES)

    def labels(self) -> np.ndarray:
        """The hidden program's label on every point, C order over (x, y)."""
        return self.hidden().evaluate(_grid_env())


def scaled_suite(names: Sequence[str] | None = None) -> list[ScaledTask]:
    tasks = [ScaledTask(t) for t in GRID_SUITE]
    if not names:
        return tasks
    known = {t.name: t for t in tasks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown grid task(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


# -- running ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveSettings:
    """What the benchmark hands :class:`~synth.active.ActiveSynthesizer` (recorded)."""

    time_limit: float = 8.0  # CPU seconds per refit
    task_time: float = 45.0  # CPU seconds per task, all rounds together
    max_feature_size: int = 5
    initial: int = 2000
    batch: int = 1000
    budget: int = QUERY_BUDGET
    rounds: int = 60
    patience: int = 2
    escalation: float = 2.0  # a refit cut short makes the next one this many times longer
    seed: int = 0


def run_task(task: ScaledTask, settings: ActiveSettings = ActiveSettings(),
             verbose: bool = False) -> dict:
    """Search one scaled task by active queries and score it on all 10^6 points."""
    from oracles.table import TableOracle
    from synth.active import ActiveSynthesizer
    from synth.search import Synthesizer

    domain = task.grid()
    env = _grid_env()
    truth = task.labels()
    oracle = TableOracle(truth.reshape(domain.shape), domain)  # counts what it answers
    base = Synthesizer(time_limit=settings.time_limit, max_feature_size=settings.max_feature_size,
                       seed=settings.seed, clock="cpu")
    active = ActiveSynthesizer(base, initial=settings.initial, batch=settings.batch,
                               budget=settings.budget, rounds=settings.rounds,
                               patience=settings.patience, seed=settings.seed,
                               escalation=settings.escalation,
                               time_limit=settings.task_time, clock="cpu", verbose=verbose)
    cpu, wall = time.process_time(), time.perf_counter()
    active.fit(domain, oracle)  # sees only the oracle's answers
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    predicted = active.predict(env)
    wrong = int((predicted != truth).sum())
    best = active.best_
    return {
        "task": task.name, "original": task.original.program, "hidden": task.program,
        "atoms": task.original.atoms, "kinds": list(task.original.kinds),
        "exact": wrong == 0, "wrong_points": wrong, "agreement": 1 - wrong / domain.size,
        "queries": active.queries_, "oracle_queries": oracle.queries,
        "query_fraction": active.queries_ / domain.size, "budget": settings.budget,
        "rounds": len(active.history_), "stopped": active.stopped_,
        "cpu_seconds": cpu, "wall_seconds": wall,
        "program": str(best.program), "python": best.python, "size": best.size, "fidelity_on_queries": best.fidelity,
        "scaling_mismatches": check_scaling(task.original.program),
        "settings": settings.__dict__,
        "history": [r.to_json() for r in active.history_],
    }


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return None


def _run_recorded(job: tuple[str, ActiveSettings, bool]) -> dict:
    """Run one task by name and record it; a task that breaks is recorded too, so
    the others run (module level, so a process pool can call it)."""
    name, settings, verbose = job
    task = scaled_suite([name])[0]
    load = _load()
    try:
        result = run_task(task, settings, verbose)
    except Exception as error:
        result = {"task": task.name, "original": task.original.program,
                  "hidden": task.program, "atoms": task.original.atoms, "exact": False,
                  "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc(), "settings": settings.__dict__}
    result["load_before"], result["load_after"] = load, _load()
    return result


def run_suite(out: str | os.PathLike, names: Sequence[str] | None = None,
              settings: ActiveSettings = ActiveSettings(), verbose: bool = False,
              log=print, workers: int = 1) -> list[dict]:
    """Run (or resume) the scaled suite into ``out`` on ``workers`` processes; returns
    every task's result, in the suite's order whatever order they finish in."""
    from benchmarks.executors import make_executor
    from synth.results import write_json_atomic

    out = Path(out)
    tasks = scaled_suite(names)
    results: dict[str, dict] = {}
    todo = []
    for task in tasks:
        path = out / "tasks" / f"{task.name}.json"
        if path.exists():
            done = json.loads(path.read_text())
            if done.get("settings") == settings.__dict__:
                results[task.name] = done
                log(f"{task.name}: done before ({'exact' if done.get('exact') else 'not exact'})")
                continue
        todo.append((task.name, settings, verbose))
    # longest first, so a pool is not left waiting on a hard task started last:
    # programs with more atoms take longer (the submission order changes no result)
    atoms = {t.name: t.original.atoms for t in tasks}
    todo.sort(key=lambda job: -atoms[job[0]])
    executor = make_executor(workers)
    try:
        for (name, _, _), result in executor.map(_run_recorded, todo):
            write_json_atomic(out / "tasks" / f"{name}.json", result)
            results[name] = result
            log(f"{name}: {'exact' if result.get('exact') else 'NOT exact'}"
                f" ({result.get('wrong_points', '?')} wrong), {result.get('queries', 0):,} "
                f"queries, {result.get('cpu_seconds', 0):.1f} CPU-s, "
                f"{result.get('wall_seconds', 0):.1f} s; "
                f"{result.get('program', result.get('error'))}")
            write_summary(out, [results[t.name] for t in tasks if t.name in results], settings)
    finally:
        executor.close()
    ordered = [results[t.name] for t in tasks]
    write_summary(out, ordered, settings)
    return ordered


def summarize(results: Sequence[dict]) -> dict:
    ran = [r for r in results if "queries" in r]
    queries = np.array([r["queries"] for r in ran]) if ran else np.zeros(0)
    return {
        "tasks": len(results), "ran": len(ran), "errors": len(results) - len(ran),
        "exact": sum(bool(r.get("exact")) for r in results),
        "max_query_fraction": float(queries.max() / SIDE_TO ** 2) if ran else None,
        "median_query_fraction": float(np.median(queries) / SIDE_TO ** 2) if ran else None,
        "total_queries": int(queries.sum()),
        "cpu_seconds": float(sum(r.get("cpu_seconds", 0) for r in ran)),
        "wall_seconds": float(sum(r.get("wall_seconds", 0) for r in ran)),
        "scaling_mismatches": int(sum(r.get("scaling_mismatches", 0) for r in ran)),
        "failed": [r["task"] for r in results if not r.get("exact")],
    }


def table(results: Sequence[dict]) -> str:
    lines = ["| task | hidden program (1000x1000) | exact | queries | CPU s | wall s | recovered |",
             "|---|---|:-:|--:|--:|--:|---|"]
    for r in results:
        if "queries" not in r:
            lines.append(f"| {r['task']} | `{r['hidden']}` | error | | | | {r.get('error')} |")
            continue
        exact = "yes" if r["exact"] else f"no ({r['wrong_points']:,} wrong)"
        lines.append(f"| {r['task']} | `{r['hidden']}` | {exact} | {r['queries']:,} | "
                     f"{r['cpu_seconds']:.0f} | {r['wall_seconds']:.0f} | `{r['program']}` |")
    s = summarize(results)
    if s["ran"]:
        lines += ["", f"**{s['exact']}/{s['tasks']} exact**; queries: max "
                      f"{s['max_query_fraction']:.2%}, median {s['median_query_fraction']:.2%} of "
                      f"10^6; {s['cpu_seconds'] / 60:.1f} CPU-min in all."]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, results: Sequence[dict], settings: ActiveSettings) -> None:
    from synth.results import write_json_atomic
    summary = summarize(results)
    summary["settings"] = settings.__dict__
    summary["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    write_json_atomic(out / "summary.json", summary)
    tmp = out / "table.md.tmp"
    tmp.write_text(table(results))
    os.replace(tmp, out / "table.md")


# -- command line ----------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    d = ActiveSettings()
    parser.add_argument("--out", help="results folder (resumable: finished tasks are skipped)")
    parser.add_argument("--task", action="append", default=[],
                        help="grid task name (repeatable; default: all 48)")
    parser.add_argument("--list", action="store_true",
                        help="print each task's scaled program (and check it) and exit")
    parser.add_argument("--time-limit", type=float, default=d.time_limit,
                        help=f"CPU seconds per refit (default {d.time_limit:g})")
    parser.add_argument("--task-time", type=float, default=d.task_time,
                        help=f"CPU seconds per task, all rounds (default {d.task_time:g})")
    parser.add_argument("--max-feature-size", type=int, default=d.max_feature_size)
    parser.add_argument("--initial", type=int, default=d.initial, help="first random sample")
    parser.add_argument("--batch", type=int, default=d.batch, help="queries per round")
    parser.add_argument("--query-budget", type=int, default=d.budget,
                        help=f"most queries per task (default {d.budget:,} = 2%%)")
    parser.add_argument("--rounds", type=int, default=d.rounds)
    parser.add_argument("--patience", type=int, default=d.patience)
    parser.add_argument("--escalation", type=float, default=d.escalation,
                        help="a refit cut short makes the next one this many times longer "
                             f"(default {d.escalation:g})")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--workers", type=int, default=1,
                        help="tasks run at once, one process each (default 1)")
    parser.add_argument("--verbose", action="store_true", help="log every round")


def run(args) -> int:
    try:
        tasks = scaled_suite(args.task)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.list:
        for t in tasks:
            print(f"{t.name:18s} {t.program}    [{check_scaling(t.original.program)} mismatches]")
        return 0
    if not args.out:
        print("error: --out DIR is required (or --list)", file=sys.stderr)
        return 2
    settings = ActiveSettings(time_limit=args.time_limit, task_time=args.task_time,
                              max_feature_size=args.max_feature_size, initial=args.initial,
                              batch=args.batch, budget=args.query_budget, rounds=args.rounds,
                              patience=args.patience, escalation=args.escalation,
                              seed=args.seed)
    if args.workers < 1 or not args.escalation >= 1:
        print(f"error: --workers must be at least 1 (got {args.workers}) and --escalation at "
              f"least 1 (got {args.escalation})", file=sys.stderr)
        return 2
    results = run_suite(args.out, args.task, settings, args.verbose, workers=args.workers)
    print(table(results))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``synth bench-active``: the grid suite at 1000x1000 by active queries."""
    parser = sub.add_parser("bench-active", help="the grid suite scaled to 1000x1000, "
                                                 "searched by active queries (issue 6)")
    add_options(parser)
    parser.set_defaults(run=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaled",
                                     description=__doc__.split("\n")[0])
    add_options(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
