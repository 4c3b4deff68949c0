"""Printing programs as self-contained Python source and as sympy expressions.

The Python form of a program runs on plain Python numbers with the standard
library alone (plus the modules its primitives import, e.g. numpy for image
features) and computes exactly what :meth:`Program.evaluate` computes on
every input whose intermediate values stay in range (see ``dsl.primitives``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import sympy

from dsl.primitives import PREC_ATOM, PREC_CMP, PREC_NEG, PREC_POW
from dsl.program import Apply, Const, Program, Var
from dsl.types import BOOL, INT, REAL

#: Operators whose operands at equal precedence must be parenthesised even on
#: the left: comparisons chain in Python and ``**`` is right-associative.
_NON_CHAINING = (PREC_CMP, PREC_POW)


def _const_prec(node: Const) -> int:
    negative = node.value < 0 or (node.value == 0 and math.copysign(1.0, node.value) < 0)
    return PREC_NEG if negative else PREC_ATOM  # -0.0 prints with its sign too


def _render(node: Program) -> tuple[str, int]:
    """Source text of ``node`` and the precedence of its outermost operator."""
    if isinstance(node, Var):
        return node.name, PREC_ATOM
    if isinstance(node, Const):
        # Real constants print as floats (5.0, not 5) so that arithmetic on
        # them matches the float64 evaluation; repr round-trips exactly.
        text = repr(float(node.value)) if node.type is REAL else repr(node.value)
        return text, _const_prec(node)
    if not isinstance(node, Apply):
        # A leaf node defined elsewhere (e.g. dsl.images.Template) names itself.
        return node.python_expression(), PREC_ATOM
    prim = node.primitive
    args = [_render(a) for a in node.args]
    if prim.name == "ite":
        (c, _), (a, pa), (b, pb) = args
        return f"({a} if {c} else {b})", PREC_ATOM
    infix = prim.infix
    if infix is None and prim.safe_infix and _is_nonzero_literal(node.args[-1]):
        infix = prim.safe_infix
    if infix is None:
        return f"{prim.call}({', '.join(src for src, _ in args)})", PREC_ATOM
    prec = prim.precedence
    if len(args) == 1:
        src, p = args[0]
        if infix.startswith("**"):
            return f"{_wrap(src, p, prec, strict=True)} {infix}", prec
        sep = " " if infix.isalpha() else ""
        return f"{infix}{sep}{_wrap(src, p, prec, strict=infix == '-')}", prec
    (left, pl), (right, pr) = args
    strict_left = prec in _NON_CHAINING
    return (f"{_wrap(left, pl, prec, strict=strict_left)} {infix} "
            f"{_wrap(right, pr, prec, strict=True)}"), prec


def _wrap(src: str, child_prec: int, parent_prec: int, *, strict: bool) -> str:
    if child_prec < parent_prec or (strict and child_prec == parent_prec):
        return f"({src})"
    return src


def _is_nonzero_literal(node: Program) -> bool:
    return isinstance(node, Const) and node.value != 0


def to_expression(program: Program) -> str:
    """The program as one Python expression (helpers such as ``_mod`` not included)."""
    return _render(program)[0]


def helpers_of(program: Program) -> list[str]:
    """Helper function sources the expression of ``program`` calls, in a stable order."""
    seen: dict[str, str] = {}
    for node in program.walk():
        if isinstance(node, Apply) and node.primitive.helper:
            prim = node.primitive
            calls_helper = prim.infix is None and not (
                prim.safe_infix and _is_nonzero_literal(node.args[-1]))
            if calls_helper:
                seen.setdefault(prim.call, prim.helper)
    return [seen[k] for k in sorted(seen)]


def imports_of(program: Program) -> list[str]:
    mods = {m for node in program.walk()
            for m in (node.primitive.imports if isinstance(node, Apply)
                      else getattr(node, "imports", ()))}
    return sorted(mods)


def definitions_of(program: Program) -> list[str]:
    """Module-level constants the expression names (leaf nodes with a
    ``python_definition``, e.g. image templates), one per name, in a stable order."""
    seen: dict[str, str] = {}
    for node in program.walk():
        if hasattr(node, "python_definition"):
            name, source = node.python_expression(), node.python_definition()
            if seen.setdefault(name, source) != source:
                raise ValueError(f"two different constants are named {name!r} in one program; "
                                 f"give them distinct names")
    return [seen[k] for k in sorted(seen)]


def to_python(program: Program, inputs: Sequence[str] | None = None,
              name: str = "label", as_int: bool = True) -> str:
    """Self-contained Python source defining ``name(*inputs)``.

    Boolean programs return ``int`` labels (0/1) when ``as_int`` is set.
    """
    params = list(inputs) if inputs is not None else sorted(program.inputs)
    body = to_expression(program)
    if as_int and program.type is BOOL:
        body = f"int({body})"
    parts = [f"import {m}" for m in imports_of(program)]
    parts += definitions_of(program)
    parts += helpers_of(program)
    parts.append(f"def {name}({', '.join(params)}):\n    return {body}")
    return "\n\n\n".join(parts) + "\n"


def compile_python(source: str, name: str = "label"):
    """Execute printed source in a fresh namespace and return the function ``name``."""
    namespace: dict = {}
    exec(compile(source, f"<synth:{name}>", "exec"), namespace)  # noqa: S102 - our own printer's output
    return namespace[name]


def to_sympy(program: Program) -> sympy.Basic:
    """The program as a sympy expression with the same total semantics."""
    if isinstance(program, Var):
        return sympy.Symbol(program.name, integer=program.type is INT)
    if isinstance(program, Const):
        if program.type is BOOL:
            return sympy.true if program.value else sympy.false
        if program.type is INT:
            return sympy.Integer(program.value)
        return sympy.Float(program.value, 17)
    if not isinstance(program, Apply):
        return program.sympy_expression()
    prim = program.primitive
    args = [to_sympy(a) for a in program.args]
    if prim.sympy_fn is None:
        return sympy.Function(prim.name)(*args)
    return prim.sympy_fn(*args)
