"""Programs: immutable, hashable expression trees over named inputs.

A program evaluates vectorised: given an environment mapping each input name
to an array of N values, it returns an array of N results.  Trees compare and
hash structurally, like sympy expressions, so they can key dicts and sets.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dsl.primitives import REGISTRY, Primitive
from dsl.types import BOOL, INT, REAL, Type, accepts, result_type


class Program:
    """Base class of program nodes."""

    type: Type

    @property
    def children(self) -> tuple[Program, ...]:
        return ()

    @property
    def size(self) -> int:
        raise NotImplementedError

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        """The program's value on every row of ``env``, as an array of length N."""
        n = _batch_length(env)
        return np.broadcast_to(self._eval(env), (n,) + _value_shape(env, self))

    def _eval(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def walk(self) -> Iterator[Program]:
        """Every node, parent before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def inputs(self) -> frozenset[str]:
        return frozenset(node.name for node in self.walk() if isinstance(node, Var))

    def __str__(self) -> str:
        from dsl.printing import to_expression
        return to_expression(self)


@dataclass(frozen=True)
class Var(Program):
    name: str
    type: Type = INT

    @property
    def size(self) -> int:
        return 1

    def _eval(self, env):
        try:
            return np.asarray(env[self.name])
        except KeyError:
            raise KeyError(f"input {self.name!r} is missing from the environment "
                           f"(it has {sorted(env)})") from None


@dataclass(frozen=True)
class Const(Program):
    value: int | float | bool
    type: Type = INT

    def __post_init__(self) -> None:
        if self.type is INT and not float(self.value).is_integer():
            raise TypeError(f"Int constant with non-integer value {self.value!r}")
        if self.type is REAL and not np.isfinite(self.value):
            raise ValueError(f"Real constant must be finite, got {self.value!r}")

    @property
    def size(self) -> int:
        return 1

    def _eval(self, env):
        dtype = {INT: np.int64, REAL: np.float64, BOOL: np.bool_}[self.type]
        return np.asarray(self.value, dtype=dtype)


@dataclass(frozen=True)
class Apply(Program):
    primitive: Primitive
    args: tuple[Program, ...]

    def __post_init__(self) -> None:
        prim = self.primitive
        if len(self.args) != prim.arity:
            raise TypeError(f"{prim.name} takes {prim.arity} arguments, got {len(self.args)}")
        for i, (slot, arg) in enumerate(zip(prim.arg_types, self.args)):
            if not isinstance(arg, Program):
                raise TypeError(f"argument {i} of {prim.name} is not a Program: {arg!r}")
            if not accepts(slot, arg.type):
                raise TypeError(f"argument {i} of {prim.name} must be {slot.value}, "
                                f"got {arg.type.value} ({arg})")

    @cached_property
    def type(self) -> Type:  # type: ignore[override]
        return result_type(self.primitive.ret_type, tuple(a.type for a in self.args))

    @property
    def children(self) -> tuple[Program, ...]:
        return self.args

    @cached_property
    def size(self) -> int:  # type: ignore[override]
        return self.primitive.cost + sum(a.size for a in self.args)

    def _eval(self, env):
        return self.primitive.impl(*(a._eval(env) for a in self.args))


def _batch_length(env: Mapping[str, np.ndarray]) -> int:
    if not env:
        raise ValueError("cannot evaluate on an empty environment: give at least one input")
    lengths = {name: len(np.asarray(v)) for name, v in env.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs have different batch lengths: {lengths}")
    return next(iter(lengths.values()))


def _value_shape(env: Mapping[str, np.ndarray], program: Program) -> tuple[int, ...]:
    """Per-row shape of the program's values: () for scalars, (H, W) for images."""
    from dsl.types import IMAGE
    if program.type is IMAGE:
        return next(np.asarray(v).shape[1:] for v in env.values() if np.asarray(v).ndim == 3)
    return ()


def apply(name: str, *args: Program) -> Apply:
    """Build ``name(args...)`` from a registered primitive name."""
    return Apply(REGISTRY[name], tuple(args))


def const(value: int | float | bool) -> Const:
    """A constant with its type inferred from the Python value."""
    if isinstance(value, (bool, np.bool_)):
        return Const(bool(value), BOOL)
    if isinstance(value, (int, np.integer)):
        return Const(int(value), INT)
    return Const(float(value), REAL)


def substitute(program: Program, old: Program, new: Program) -> Program:
    """``program`` with every subtree equal to ``old`` replaced by ``new``."""
    if program == old:
        return new
    if isinstance(program, Apply):
        args = tuple(substitute(a, old, new) for a in program.args)
        if args != program.args:
            return Apply(program.primitive, args)
    return program


# -- paths: positions in a tree, as the child indices taken from the root ------
def constant_paths(program: Program, path: tuple = ()) -> list[tuple]:
    """Paths of the numeric constants of ``program``, in order."""
    if isinstance(program, Const):
        return [path] if program.type is not BOOL else []
    out = []
    for i, child in enumerate(program.children):
        out += constant_paths(child, path + (i,))
    return out


def node_at(program: Program, path: tuple) -> Program:
    """The subtree of ``program`` at ``path``."""
    for i in path:
        program = program.children[i]
    return program


def replace_at(program: Program, path: tuple, new: Program) -> Program:
    """``program`` with the subtree at ``path`` replaced by ``new``."""
    if not path:
        return new
    assert isinstance(program, Apply)
    args = list(program.args)
    args[path[0]] = replace_at(args[path[0]], path[1:], new)
    return Apply(program.primitive, tuple(args))
