"""Parsing Python expressions back into programs.

:func:`parse` reads the expression form that :func:`dsl.printing.to_expression`
prints and rebuilds the program tree, so that ``parse(to_expression(p)) == p``.
It walks Python's ``ast`` (nothing is ever evaluated) and accepts:

* infix ``+ - * // % /`` (``//``, ``%`` and ``/`` are the total ``floordiv``,
  ``mod`` and ``div``, whatever the divisor), ``** 2`` (square), ``** 3`` (cube);
* comparisons ``< <= > >= == !=``; ``a != b`` between Bools is ``xor``; a chain
  ``a < b < c`` is ``a < b and b < c``;
* ``and``, ``or``, ``not``, ``(a if c else b)`` (``ite``), unary ``-`` (``neg``);
* calls of any registered primitive by its ``call`` name (``abs``, ``min``,
  ``max``, ``_floordiv``, ``_mod``, ``_div``, ``_sqrt``, user primitives) or,
  failing that, by its primitive name;
* int, float and bool literals, and names of inputs.

A Bool where a number is expected is Python's int 0 or 1, so it reads as
``int_`` of it (printed ``int(...)``): ``(x > 1) + (y > 2) >= 2`` is
``int(x > 1) + int(y > 2) >= 2``, "at least two of".

A minus sign directly on a number literal is part of the literal: ``-3`` is
``Const(-3)``, which is how ``Const(-3)`` prints.  (``neg(Const(3))`` prints
the same way, so it reads back as ``Const(-3)``: same value, same text.  An Int
``-0`` is no constant's text, so it reads back as ``neg(Const(0))``.)

Unknown names and functions and unsupported syntax raise ``ValueError``; an
ill-typed expression raises the ``TypeError`` of :class:`dsl.program.Apply`.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

from dsl.primitives import REGISTRY, Primitive
from dsl.program import Apply, Const, Program, Var
from dsl.types import BOOL, INT, REAL, Type

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "floordiv",
           ast.Mod: "mod", ast.Div: "div"}
_POWERS = {2: "square", 3: "cube"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq",
           ast.NotEq: "ne"}
_BOOLOPS = {ast.And: "and_", ast.Or: "or_"}


def parse(source: str, input_types: Mapping[str, Type] | None = None, *,
          primitives: Iterable[Primitive] = ()) -> Program:
    """The program written as the Python expression ``source``.

    Names are inputs: of type Int unless ``input_types`` gives their type; when
    ``input_types`` is given, any other name is an error.  Calls resolve to the
    primitives of :data:`dsl.primitives.REGISTRY` and to the extra
    ``primitives`` (which take precedence), by ``call`` name, then by name.
    """
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"cannot parse {source!r}: {err.msg}"
                         + (f" (line {err.lineno}, column {err.offset})" if err.lineno else "")
                         ) from None
    return _Reader(input_types, tuple(primitives)).read(tree.body)


class _Reader:
    def __init__(self, input_types: Mapping[str, Type] | None,
                 extra: tuple[Primitive, ...]) -> None:
        self.input_types = dict(input_types) if input_types is not None else None
        prims = [*REGISTRY, *extra]  # later entries win
        self.by_call: dict[str, Primitive] = {}
        self.by_name: dict[str, Primitive] = {}
        for prim in prims:
            if prim.infix is None and prim.call:
                self.by_call[prim.call] = prim
            self.by_name[prim.name] = prim

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def apply(name: str, *args: Program) -> Apply:
        """A built-in primitive that Python syntax (an operator) stands for."""
        return _apply(REGISTRY[name], args)

    # -- nodes ------------------------------------------------------------------
    def read(self, node: ast.AST) -> Program:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise ValueError(f"unsupported syntax {_show(node)!r} ({type(node).__name__}): "
                             f"expected arithmetic, comparisons, and/or/not, "
                             f"'a if c else b', calls, literals and input names")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Program:
        value = node.value
        if isinstance(value, bool):
            return Const(value, BOOL)
        if isinstance(value, int):
            return Const(value, INT)
        if isinstance(value, float):
            return Const(value, REAL)
        raise ValueError(f"unsupported literal {value!r}: only int, float and bool literals")

    def _Name(self, node: ast.Name) -> Program:
        name = node.id
        if self.input_types is None:
            return Var(name, INT)
        if name not in self.input_types:
            known = ", ".join(sorted(self.input_types)) or "(none)"
            raise ValueError(f"unknown name {name!r}; known inputs: {known}")
        return Var(name, self.input_types[name])

    def _UnaryOp(self, node: ast.UnaryOp) -> Program:
        operand = node.operand
        if isinstance(node.op, ast.USub):
            value = getattr(operand, "value", None) if isinstance(operand, ast.Constant) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    value != 0 or isinstance(value, float)):
                return self._Constant(ast.Constant(-value))
            return self.apply("neg", self.read(operand))
        if isinstance(node.op, ast.Not):
            return self.apply("not_", self.read(operand))
        raise ValueError(f"unsupported unary operator in {_show(node)!r}: only '-' and 'not'")

    def _BinOp(self, node: ast.BinOp) -> Program:
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            if (isinstance(exponent, ast.Constant) and type(exponent.value) is int
                    and exponent.value in _POWERS):
                return self.apply(_POWERS[exponent.value], self.read(node.left))
            raise ValueError(f"unsupported power in {_show(node)!r}: only '** 2' and '** 3'")
        name = _BINOPS.get(type(node.op))
        if name is None:
            raise ValueError(f"unsupported operator in {_show(node)!r}: expected one of "
                             f"+ - * // % / ** 2 ** 3")
        return self.apply(name, self.read(node.left), self.read(node.right))

    def _BoolOp(self, node: ast.BoolOp) -> Program:
        name = _BOOLOPS[type(node.op)]
        values = [self.read(v) for v in node.values]
        out = values[0]
        for value in values[1:]:  # Python's a and b and c is (a and b) and c
            out = self.apply(name, out, value)
        return out

    def _Compare(self, node: ast.Compare) -> Program:
        operands = [self.read(node.left), *(self.read(c) for c in node.comparators)]
        parts = []
        for op, a, b in zip(node.ops, operands, operands[1:]):
            name = _CMPOPS.get(type(op))
            if name is None:
                raise ValueError(f"unsupported comparison in {_show(node)!r}: expected one of "
                                 f"< <= > >= == !=")
            if name == "ne" and a.type is BOOL and b.type is BOOL:
                name = "xor"
            parts.append(self.apply(name, a, b))
        out = parts[0]
        for part in parts[1:]:  # a < b < c is a < b and b < c
            out = self.apply("and_", out, part)
        return out

    def _IfExp(self, node: ast.IfExp) -> Program:
        return self.apply("ite", self.read(node.test), self.read(node.body),
                          self.read(node.orelse))

    def _Call(self, node: ast.Call) -> Program:
        if not isinstance(node.func, ast.Name):
            raise ValueError(f"unsupported call {_show(node)!r}: call functions by plain name")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ValueError(f"unsupported call {_show(node)!r}: positional arguments only")
        fn = node.func.id
        prim = self.by_call.get(fn) or self.by_name.get(fn)
        if prim is None:
            known = ", ".join(sorted(set(self.by_call) | set(self.by_name)))
            raise ValueError(f"unknown function {fn!r}; known functions: {known}")
        return _apply(prim, tuple(self.read(a) for a in node.args))


def _apply(prim: Primitive, args: tuple[Program, ...]) -> Apply:
    """``prim(args)``, a Bool in a numeric slot read as Python reads it: an int."""
    if len(args) == prim.arity:  # else Apply reports the wrong count
        args = tuple(Apply(REGISTRY["int_"], (a,)) if a.type is BOOL and slot is not BOOL else a
                     for slot, a in zip(prim.arg_types, args))
    return Apply(prim, args)


def _show(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression node
        return type(node).__name__
