"""Primitives: the operations a program is built from.

Each primitive is one value holding everything about an operation: its name,
signature, vectorised numpy implementation, cost, how it prints as Python and
as sympy.  Semantics are total, so every program has a value on every input:

* ``a // 0 == 0``, ``a % 0 == 0`` and ``a / 0 == 0.0`` (no exception, no inf);
* ``sqrt(a) == 0.0`` for ``a < 0``;
* Int arithmetic is exact int64 arithmetic; a value outside ``±2**53`` is
  *out of range*: the enumerator discards programs that reach it, so printed
  Python (unbounded ints) and vectorised numpy always agree on kept programs.

Users register their own primitives with :func:`primitive`; the enumerator
treats them exactly like the built-ins.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import sympy

from dsl.types import BOOL, INT, NUM, REAL, Type

#: Python operator precedence levels used by the printer.
PREC_OR, PREC_AND, PREC_NOT, PREC_CMP, PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM = (
    1, 2, 3, 4, 6, 7, 8, 9, 10)

MAX_SAFE = 2.0**53


@dataclass(frozen=True)
class Primitive:
    """An operation of the DSL.

    ``impl`` takes numpy arrays (one per argument, broadcastable) and returns
    the result array.  It prints as ``a <infix> b`` when ``infix`` is set, else
    as a call ``<call>(a, ...)``; ``helper`` is Python source defining ``call``
    when it is not a builtin, embedded in printed programs that use it.
    ``safe_infix`` is an infix form used when the last argument is a nonzero
    literal (``x % 13`` rather than ``_mod(x, 13)``).
    """

    name: str
    arg_types: tuple[Type, ...]
    ret_type: Type
    impl: Callable[..., np.ndarray] = field(compare=False, repr=False)
    cost: int = field(default=1, compare=False)
    infix: str | None = field(default=None, compare=False)
    precedence: int = field(default=PREC_ATOM, compare=False)
    call: str | None = field(default=None, compare=False)
    helper: str | None = field(default=None, compare=False, repr=False)
    safe_infix: str | None = field(default=None, compare=False)
    sympy_fn: Callable[..., sympy.Basic] | None = field(default=None, compare=False, repr=False)
    imports: tuple[str, ...] = field(default=(), compare=False)
    commutative: bool = field(default=False, compare=False)
    search: bool = field(default=True, compare=False)

    @property
    def arity(self) -> int:
        return len(self.arg_types)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"primitive name {self.name!r} is not a Python identifier")
        if self.cost < 1:
            raise ValueError(f"primitive {self.name!r}: cost must be >= 1, got {self.cost}")
        if self.infix is None and self.call is None:
            object.__setattr__(self, "call", self.name)


class PrimitiveRegistry:
    """Name -> primitive, with a clear error for unknown names."""

    def __init__(self) -> None:
        self._by_name: dict[str, Primitive] = {}

    def register(self, prim: Primitive, *, replace: bool = False) -> Primitive:
        if prim.name in self._by_name and not replace:
            raise ValueError(f"a primitive named {prim.name!r} is already registered")
        self._by_name[prim.name] = prim
        return prim

    def __getitem__(self, name: str) -> Primitive:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise KeyError(f"unknown primitive {name!r}; known primitives: {known}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def select(self, names: Iterable[str]) -> list[Primitive]:
        return [self[n] for n in names]


REGISTRY = PrimitiveRegistry()


def primitive(name: str, arg_types: tuple[Type, ...], ret_type: Type, *, cost: int = 1,
              python: str | None = None, call: str | None = None, sympy_fn=None,
              imports: tuple[str, ...] = (), commutative: bool = False, search: bool = True,
              registry: PrimitiveRegistry = REGISTRY):
    """Decorator registering a vectorised function as a DSL primitive.

    ``python`` is the source of a self-contained scalar Python function named
    ``call`` (default: ``name``) that computes the same value on plain Python
    numbers; it is embedded in every printed program that uses the primitive.

    >>> @primitive("gcd", (INT, INT), INT, python="def gcd(a, b):\\n    return math.gcd(a, b)",
    ...            imports=("math",), commutative=True)  # doctest: +SKIP
    ... def gcd(a, b):
    ...     return np.gcd(a, b)
    """

    def register(fn: Callable[..., np.ndarray]) -> Primitive:
        prim = Primitive(name=name, arg_types=tuple(arg_types), ret_type=ret_type, impl=fn,
                         cost=cost, call=call or name, helper=python, sympy_fn=sympy_fn,
                         imports=imports, commutative=commutative, search=search)
        registry.register(prim)
        return prim

    return register


# ---------------------------------------------------------------------------
# Total arithmetic, vectorised.

def _floordiv(a, b):
    b = np.asarray(b)
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.floor_divide(a, safe))


def _mod(a, b):
    b = np.asarray(b)
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.remainder(a, safe))


def _truediv(a, b):
    b = np.asarray(b, dtype=np.float64)
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, np.true_divide(a, safe))


def _sqrt(a):
    a = np.asarray(a, dtype=np.float64)
    return np.sqrt(np.maximum(a, 0.0))


def _sympy_floordiv(a, b):
    return sympy.Piecewise((sympy.floor(a / b), sympy.Ne(b, 0)), (0, True))


def _sympy_mod(a, b):
    b = sympy.sympify(b)
    if b.is_zero:  # sympy evaluates Mod(a, 0) eagerly and raises
        return sympy.Integer(0)
    # sympy folds Mod over the branches of a Piecewise divisor (x % (x // y)),
    # raising on the zero branch; a - b*floor(a/b) is the same value and never raises.
    mod = a - b * sympy.floor(a / b) if b.has(sympy.Piecewise) else sympy.Mod(a, b)
    return sympy.Piecewise((mod, sympy.Ne(b, 0)), (0, True))


def _sympy_truediv(a, b):
    if sympy.sympify(b).is_zero:  # a / Float(0) raises ZeroDivisionError
        return sympy.Integer(0)
    return sympy.Piecewise((a / b, sympy.Ne(b, 0)), (0, True))


_HELPERS = {
    "_floordiv": "def _floordiv(a, b):\n    return a // b if b else 0",
    "_mod": "def _mod(a, b):\n    return a % b if b else 0",
    "_div": "def _div(a, b):\n    return a / b if b else 0.0",
    "_sqrt": "def _sqrt(a):\n    return math.sqrt(a) if a > 0 else 0.0",
}


def _builtin(name, arg_types, ret_type, impl, **kw) -> Primitive:
    return REGISTRY.register(Primitive(name=name, arg_types=arg_types, ret_type=ret_type,
                                       impl=impl, **kw))


def _infix(name, arg_types, ret_type, impl, op, prec, sympy_fn, **kw) -> Primitive:
    return _builtin(name, arg_types, ret_type, impl, infix=op, precedence=prec,
                    sympy_fn=sympy_fn, **kw)


def _power(k: int) -> Callable[[np.ndarray], np.ndarray]:
    def impl(a):
        a = np.asarray(a)
        return a**k if a.dtype.kind in "iu" else np.power(a, float(k))
    return impl


# Arithmetic.
ADD = _infix("add", (NUM, NUM), NUM, np.add, "+", PREC_ADD, lambda a, b: a + b, commutative=True)
SUB = _infix("sub", (NUM, NUM), NUM, np.subtract, "-", PREC_ADD, lambda a, b: a - b)
MUL = _infix("mul", (NUM, NUM), NUM, np.multiply, "*", PREC_MUL, lambda a, b: a * b,
             commutative=True)
FLOORDIV = _builtin("floordiv", (INT, INT), INT, _floordiv, call="_floordiv",
                    helper=_HELPERS["_floordiv"], safe_infix="//", precedence=PREC_MUL,
                    sympy_fn=_sympy_floordiv)
MOD = _builtin("mod", (INT, INT), INT, _mod, call="_mod", helper=_HELPERS["_mod"],
               safe_infix="%", precedence=PREC_MUL, sympy_fn=_sympy_mod)
DIV = _builtin("div", (REAL, REAL), REAL, _truediv, call="_div", helper=_HELPERS["_div"],
               safe_infix="/", precedence=PREC_MUL, sympy_fn=_sympy_truediv)
NEG = _builtin("neg", (NUM,), NUM, np.negative, infix="-", precedence=PREC_NEG,
               sympy_fn=lambda a: -a)
ABS = _builtin("abs", (NUM,), NUM, np.abs, sympy_fn=sympy.Abs)
MIN = _builtin("min", (NUM, NUM), NUM, np.minimum, sympy_fn=sympy.Min, commutative=True)
MAX = _builtin("max", (NUM, NUM), NUM, np.maximum, sympy_fn=sympy.Max, commutative=True)
SQUARE = _infix("square", (NUM,), NUM, _power(2), "** 2", PREC_POW, lambda a: a**2)
CUBE = _infix("cube", (NUM,), NUM, _power(3), "** 3", PREC_POW, lambda a: a**3)
SQRT = _builtin("sqrt", (REAL,), REAL, _sqrt, call="_sqrt", helper=_HELPERS["_sqrt"],
                imports=("math",),
                sympy_fn=lambda a: sympy.Piecewise((sympy.sqrt(a), a > 0), (0, True)))

# Comparisons.
LT = _infix("lt", (REAL, REAL), BOOL, np.less, "<", PREC_CMP, sympy.StrictLessThan)
LE = _infix("le", (REAL, REAL), BOOL, np.less_equal, "<=", PREC_CMP, sympy.LessThan)
GT = _infix("gt", (REAL, REAL), BOOL, np.greater, ">", PREC_CMP, sympy.StrictGreaterThan)
GE = _infix("ge", (REAL, REAL), BOOL, np.greater_equal, ">=", PREC_CMP, sympy.GreaterThan)
EQ = _infix("eq", (REAL, REAL), BOOL, np.equal, "==", PREC_CMP, sympy.Eq, commutative=True)
NE = _infix("ne", (REAL, REAL), BOOL, np.not_equal, "!=", PREC_CMP, sympy.Ne, commutative=True)
#: Comparisons with a side: a feature against a threshold, true above or below it.
ORDERED = frozenset({LT.name, LE.name, GT.name, GE.name})

# Logic.
AND = _infix("and_", (BOOL, BOOL), BOOL, np.logical_and, "and", PREC_AND, sympy.And,
             commutative=True)
OR = _infix("or_", (BOOL, BOOL), BOOL, np.logical_or, "or", PREC_OR, sympy.Or, commutative=True)
XOR = _infix("xor", (BOOL, BOOL), BOOL, np.not_equal, "!=", PREC_CMP, sympy.Xor,
             commutative=True)
NOT = _builtin("not_", (BOOL,), BOOL, np.logical_not, infix="not", precedence=PREC_NOT,
               sympy_fn=sympy.Not)
#: Bool to Int (``int(x > 3) + int(y > 5) >= 2``: at least two of the conditions hold).
INT_ = _builtin("int_", (BOOL,), INT, lambda a: np.asarray(a).astype(np.int64), call="int",
                sympy_fn=lambda a: sympy.Piecewise((1, a), (0, True)), search=False)
ITE = _builtin("ite", (BOOL, NUM, NUM), NUM, lambda c, a, b: np.where(c, a, b),
               precedence=0, sympy_fn=lambda c, a, b: sympy.Piecewise((a, c), (b, True)))

#: Names of the primitives defined here (anything registered later is an extension).
BUILTIN = frozenset(REGISTRY.names())

#: The arithmetic grammar used by default when searching integer domains.
ARITHMETIC = ("add", "sub", "mul", "floordiv", "mod", "abs", "min", "max", "square", "cube",
              "sqrt")

__all__ = ["Primitive", "PrimitiveRegistry", "REGISTRY", "primitive", "ARITHMETIC", "MAX_SAFE",
           "math"]
