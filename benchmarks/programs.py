"""Hidden labelling programs: parse them safely, evaluate them on a domain.

A hidden program is written either

* as a Python expression over the domain's input names (``x``, ``y`` on a
  grid), e.g. ``x*x < 200*sqrt(y)``, with ``abs``, ``min``, ``max``,
  ``round``, ``int``, ``float``, ``pow`` and the functions of :mod:`math`
  in scope (plain, ``sqrt(y)``, or qualified, ``math.sqrt(y)``); or
* as a Python file defining ``label(x, y, ...)``, one argument per input.

Expressions are never ``eval``-ed as they come: the syntax tree is checked
against a whitelist (arithmetic, comparisons, ``and``/``or``/``not``,
``a if c else b``, calls of whitelisted functions, number literals and input
names), and is then evaluated *vectorised* with numpy, node by node, with
Python's semantics on integers (``//`` and ``%`` floor, ``/`` true division,
``**`` exact on integers).  :meth:`HiddenProgram.evaluate_pointwise`
evaluates the same checked tree point by point in plain Python, the
reference the vectorised form is tested against.  Where plain Python would
raise (``x / 0``, ``sqrt(-1)``), the vectorised form yields nan/inf instead
and comparisons with nan are false.

Files are the user's own code and are executed as such (like primitive
files), then called point by point.

Errors -- bad syntax, a name that is not an input, a function that is not
whitelisted, a program whose values are not truth values -- raise
``ValueError`` with a message that names the problem, which the command line
prints without a traceback.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.user_code import import_user_file

_BINOPS: dict[type, Callable] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
    ast.Div: np.true_divide, ast.FloorDiv: np.floor_divide, ast.Mod: np.mod,
}
_CMPOPS: dict[type, Callable] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
_PY_BINOPS: dict[type, Callable] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a ** b,
}
_PY_CMPOPS: dict[type, Callable] = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
}


def _nary(fn2: Callable) -> Callable:
    def call(*args):
        if len(args) < 2:
            raise ValueError("min/max need at least two arguments")
        out = args[0]
        for a in args[1:]:
            out = fn2(out, a)
        return out
    return call


def _int(a):
    a = np.asarray(a)
    return np.trunc(a).astype(np.int64) if a.dtype.kind == "f" else a.astype(np.int64)


def _round(a, ndigits=None):
    out = np.round(a, 0 if ndigits is None else int(ndigits))
    return _int(out) if ndigits is None else out


#: Vectorised functions: the ``math`` functions that have numpy counterparts,
#: and the builtins allowed in hidden programs.
_NP_MATH: dict[str, Callable] = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "expm1": np.expm1, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "hypot": np.hypot,
    "floor": lambda a: _int(np.floor(a)), "ceil": lambda a: _int(np.ceil(a)),
    "trunc": _int, "fabs": lambda a: np.abs(np.asarray(a, dtype=float)),
    "cbrt": np.cbrt, "copysign": np.copysign, "fmod": np.fmod, "degrees": np.degrees,
    "radians": np.radians, "gcd": np.gcd, "lcm": np.lcm,
    "isqrt": lambda a: _int(np.floor(np.sqrt(a))),
}
_NP_BUILTINS: dict[str, Callable] = {
    "abs": np.abs, "min": _nary(np.minimum), "max": _nary(np.maximum),
    "int": _int, "float": lambda a: np.asarray(a, dtype=float), "round": _round,
    "pow": lambda a, b: _power(a, b),
}
_NP_FUNCTIONS = {**_NP_MATH, **_NP_BUILTINS}
_PY_FUNCTIONS: dict[str, Callable] = {
    **{name: getattr(math, name) for name in _NP_MATH if hasattr(math, name)},
    "abs": abs, "min": min, "max": max, "int": int, "float": float, "round": round,
    "pow": pow,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def _power(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iub" and b.dtype.kind in "iub" and (b >= 0).all():
        return np.power(a.astype(np.int64), b.astype(np.int64))
    return np.power(a.astype(float), b.astype(float))


def evaluate_values(program: HiddenProgram, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """The raw values (not necessarily truth values) of an expression program on ``env``."""
    n = _length(env, program.inputs)
    with np.errstate(all="ignore"):
        values = _NumpyEvaluator(env).run(program.tree.body)
    return np.broadcast_to(np.asarray(values), (n,))


def known_functions() -> list[str]:
    return sorted(_NP_FUNCTIONS)


@dataclass(frozen=True)
class HiddenProgram:
    """A labelling program over named inputs, checked and ready to evaluate.

    Build one with :func:`parse_hidden` (an expression) or :func:`load_hidden`
    (an expression or a file).  ``source`` is the expression text (or the
    file path for file programs).
    """

    source: str
    inputs: tuple[str, ...]
    tree: ast.Expression | None = field(default=None, repr=False, compare=False)
    function: Callable | None = field(default=None, repr=False, compare=False)

    @property
    def atoms(self) -> int:
        """Leaf comparisons in the expression (``a < b < c`` counts two); a comparison
        of comparisons (``(x > 4) != (y < 7)``, ``(x > 1) + (y > 2) >= 2``) is a
        connective, not an atom.  0 for file programs."""
        if self.tree is None:
            return 0
        return sum(len(n.ops) for n in ast.walk(self.tree) if isinstance(n, ast.Compare)
                   and not any(isinstance(m, ast.Compare) for c in [n.left, *n.comparators]
                               for m in ast.walk(c)))

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        """Labels (int64 0/1) on every row of ``env``, vectorised for expressions."""
        n = _length(env, self.inputs)
        if self.tree is None:
            return self.evaluate_pointwise(env)
        with np.errstate(all="ignore"):
            values = _NumpyEvaluator(env).run(self.tree.body)
        return _as_labels(np.broadcast_to(np.asarray(values), (n,)), self.source)

    def evaluate_pointwise(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        """Labels computed one point at a time in plain Python (the reference)."""
        n = _length(env, self.inputs)
        columns = [np.asarray(env[name]).tolist() for name in self.inputs]
        out = np.empty(n, dtype=object)
        for i in range(n):
            point = [c[i] for c in columns]
            try:
                if self.function is not None:
                    value = self.function(*point)
                else:
                    value = _PythonEvaluator(dict(zip(self.inputs, point))).run(self.tree.body)
            except (ArithmeticError, ValueError) as err:
                if self.function is not None:
                    raise ValueError(f"label{tuple(point)} raised "
                                     f"{type(err).__name__}: {err}") from None
                value = False  # as the vectorised form: nan compares false
            out[i] = value
        return _as_labels(out, self.source)


def parse_expression(source: str, what: str) -> tuple[str, ast.Expression]:
    """The stripped text of ``source`` and its syntax tree; ``ValueError`` naming
    ``what`` (e.g. "hidden program") when it is empty or not an expression."""
    text = source.strip()
    if not text:
        raise ValueError(f"the {what} is empty")
    try:
        return text, ast.parse(text, mode="eval")
    except SyntaxError as err:
        where = f" (column {err.offset})" if err.offset else ""
        raise ValueError(f"cannot parse {what} {source!r}: {err.msg}{where}") from None


def parse_hidden(source: str, inputs: Sequence[str]) -> HiddenProgram:
    """Check the expression ``source`` over ``inputs``; raise ``ValueError`` if it is not
    a whitelisted expression over those inputs."""
    text, tree = parse_expression(source, "hidden program")
    _Checker(tuple(inputs), text).visit(tree.body)
    return HiddenProgram(text, tuple(inputs), tree=tree)


def load_hidden(spec: str, inputs: Sequence[str]) -> HiddenProgram:
    """An expression, or the path of a ``.py`` file defining ``label(...)``."""
    path = Path(spec)
    if spec.strip().endswith(".py") or (path.suffix == ".py" and path.exists()):
        return _load_file(path, tuple(inputs))
    return parse_hidden(spec, inputs)


def _load_file(path: Path, inputs: tuple[str, ...]) -> HiddenProgram:
    if not path.is_file():
        raise ValueError(f"hidden program file {str(path)!r} does not exist")
    module = import_user_file(path, f"synth_hidden_{abs(hash(str(path)))}", "hidden program")
    fn = getattr(module, "label", None)
    if not callable(fn):
        raise ValueError(f"hidden program file {path} must define a function "
                         f"label({', '.join(inputs)})")
    return HiddenProgram(str(path), inputs, function=fn)


# ---------------------------------------------------------------------------


class _Checker(ast.NodeVisitor):
    """Reject anything that is not a whitelisted expression over the inputs."""

    def __init__(self, inputs: tuple[str, ...], source: str) -> None:
        self.inputs = inputs
        self.source = source

    def fail(self, node: ast.AST, why: str):
        raise ValueError(f"hidden program {self.source!r}: {why} "
                         f"(at {_show(node)!r})")

    def generic_visit(self, node: ast.AST):
        self.fail(node, f"unsupported syntax {type(node).__name__}; allowed: arithmetic "
                        f"(+ - * / // % **), comparisons, and/or/not, 'a if c else b', "
                        f"calls of {', '.join(known_functions())}, numbers and the inputs "
                        f"{', '.join(self.inputs)}")

    def visit_Constant(self, node):
        if isinstance(node.value, (bool, int, float)):
            return
        self.fail(node, f"unsupported literal {node.value!r}: only numbers and booleans")

    def visit_Name(self, node):
        if node.id in self.inputs or node.id in _CONSTANTS:
            return
        if node.id in _NP_FUNCTIONS:
            self.fail(node, f"{node.id!r} is a function; call it")
        self.fail(node, f"unknown input {node.id!r}; the domain's inputs are "
                        f"{', '.join(self.inputs)}")

    def visit_BinOp(self, node):
        if type(node.op) not in _BINOPS and not isinstance(node.op, ast.Pow):
            self.fail(node, "unsupported operator; allowed: + - * / // % **")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node):
        if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            self.fail(node, "unsupported unary operator; allowed: - + not")
        self.visit(node.operand)

    def visit_BoolOp(self, node):
        for v in node.values:
            self.visit(v)

    def visit_Compare(self, node):
        for op in node.ops:
            if type(op) not in _CMPOPS:
                self.fail(node, "unsupported comparison; allowed: < <= > >= == !=")
        self.visit(node.left)
        for c in node.comparators:
            self.visit(c)

    def visit_IfExp(self, node):
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_Call(self, node):
        name = _function_name(node.func)
        if name is None:
            self.fail(node, "call functions by name, e.g. sqrt(y) or math.sqrt(y)")
        if name not in _NP_FUNCTIONS:
            self.fail(node, f"unknown function {name!r}; known: {', '.join(known_functions())}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(node, "positional arguments only")
        for a in node.args:
            self.visit(a)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id == "math" and \
                node.attr in _CONSTANTS:
            return
        self.fail(node, "attributes other than math constants (math.pi) are not allowed")


def _function_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
            func.value.id == "math":
        return func.attr if func.attr in _NP_MATH else f"math.{func.attr}"
    return None


class _Evaluator:
    """Walk a checked tree; subclasses say how each operation is computed."""

    binops: dict
    cmpops: dict
    functions: dict

    def __init__(self, env: Mapping) -> None:
        self.env = env

    def run(self, node: ast.AST):
        return getattr(self, "_" + type(node).__name__)(node)

    def _Constant(self, node):
        return node.value

    def _Name(self, node):
        return self.env[node.id] if node.id in self.env else _CONSTANTS[node.id]

    def _Attribute(self, node):
        return _CONSTANTS[node.attr]

    def _Call(self, node):
        return self.functions[_function_name(node.func)](*(self.run(a) for a in node.args))

    def _IfExp(self, node):
        raise NotImplementedError


class _NumpyEvaluator(_Evaluator):
    functions = _NP_FUNCTIONS

    def __init__(self, env: Mapping[str, np.ndarray]) -> None:
        super().__init__({k: np.asarray(v).astype(np.int64) if np.asarray(v).dtype.kind in "iub"
                          else np.asarray(v) for k, v in env.items()})

    def _BinOp(self, node):
        a, b = self.run(node.left), self.run(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(a, b)
        a, b = _numeric(a), _numeric(b)
        return _BINOPS[type(node.op)](a, b)

    def _UnaryOp(self, node):
        v = self.run(node.operand)
        if isinstance(node.op, ast.Not):
            return np.logical_not(v)
        v = _numeric(v)
        return np.negative(v) if isinstance(node.op, ast.USub) else v

    def _BoolOp(self, node):
        fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = self.run(node.values[0])
        for v in node.values[1:]:
            out = fn(out, self.run(v))
        return out

    def _Compare(self, node):
        operands = [self.run(node.left), *(self.run(c) for c in node.comparators)]
        out = True
        for op, a, b in zip(node.ops, operands, operands[1:]):
            out = np.logical_and(out, _CMPOPS[type(op)](a, b))
        return out

    def _IfExp(self, node):
        return np.where(self.run(node.test), self.run(node.body), self.run(node.orelse))


class _PythonEvaluator(_Evaluator):
    functions = _PY_FUNCTIONS

    def _BinOp(self, node):
        return _PY_BINOPS[type(node.op)](self.run(node.left), self.run(node.right))

    def _UnaryOp(self, node):
        v = self.run(node.operand)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(node.op, ast.USub) else +v

    def _BoolOp(self, node):
        if isinstance(node.op, ast.And):
            return all(self.run(v) for v in node.values)
        return any(self.run(v) for v in node.values)

    def _Compare(self, node):
        left = self.run(node.left)
        for op, c in zip(node.ops, node.comparators):
            right = self.run(c)
            if not _PY_CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node):
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)


def _numeric(a):
    a = np.asarray(a)
    return a.astype(np.int64) if a.dtype == bool else a


def _as_labels(values: np.ndarray, source: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == object:
        try:
            values = np.array([bool(v) if isinstance(v, (bool, np.bool_)) else v
                               for v in values.tolist()])
        except Exception:  # pragma: no cover - exotic return values
            raise ValueError(f"hidden program {source!r} returned non-numeric values") from None
    if values.dtype == bool:
        return values.astype(np.int64)
    if values.dtype.kind in "iuf" and np.isin(values, (0, 1)).all():
        return values.astype(np.int64)
    sample = sorted(set(np.unique(values).tolist()))[:5]
    raise ValueError(f"hidden program {source!r} must return a truth value (a comparison, "
                     f"or 0/1), but it returned values such as {sample}")


def _length(env: Mapping[str, np.ndarray], inputs: Sequence[str]) -> int:
    missing = [name for name in inputs if name not in env]
    if missing:
        raise ValueError(f"the environment lacks inputs {missing}; it has {sorted(env)}")
    lengths = {len(np.asarray(env[name])) for name in inputs}
    if len(lengths) != 1:
        raise ValueError(f"inputs have different lengths {sorted(lengths)}")
    return lengths.pop()


def _show(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover
        return type(node).__name__
