"""Input domains: the typed inputs a program reads, and the points to query.

A domain names its inputs and their types, and produces query batches as an
environment ``{input name: array}`` that :meth:`Program.evaluate` and the
oracles both accept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dsl.types import INT, Type


@dataclass(frozen=True)
class GridDomain:
    """All integer tuples with ``0 <= v_i < shape[i]``, inputs named ``names``.

    ``grid:113x113`` is pairs (x, y) in 0..112; rows are in C order over
    ``(x, y)``, so row ``i`` is ``(i // 113, i % 113)``, matching a label
    table indexed ``[x, y]``.
    """

    shape: tuple[int, ...]
    names: tuple[str, ...] = ("x", "y")

    def __post_init__(self) -> None:
        if len(self.shape) != len(self.names):
            raise ValueError(f"grid of shape {self.shape} needs {len(self.shape)} input names, "
                             f"got {self.names}")
        if any(int(s) < 1 for s in self.shape):
            raise ValueError(f"grid sides must be positive, got {self.shape}")

    @property
    def input_types(self) -> dict[str, Type]:
        return {name: INT for name in self.names}

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def all_inputs(self) -> dict[str, np.ndarray]:
        """Every point of the grid, in C order."""
        axes = np.meshgrid(*(np.arange(s, dtype=np.int64) for s in self.shape), indexing="ij")
        return {name: a.ravel() for name, a in zip(self.names, axes)}

    def table_index(self, env: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Index tuple into an array of shape ``self.shape`` for the points of ``env``."""
        return tuple(np.asarray(env[name], dtype=np.int64) for name in self.names)

    def __str__(self) -> str:
        return "grid:" + "x".join(str(s) for s in self.shape)


_GRID = re.compile(r"^grid:(\d+(?:x\d+)*)$")


def parse_domain(spec: str) -> GridDomain:
    """Parse a domain spec such as ``grid:113x113``."""
    match = _GRID.match(spec.strip())
    if not match:
        raise ValueError(f"unknown domain {spec!r}: expected e.g. 'grid:113x113'")
    shape = tuple(int(s) for s in match.group(1).split("x"))
    names = ("x", "y", "z", "w")[: len(shape)] if len(shape) <= 4 else tuple(
        f"x{i}" for i in range(len(shape)))
    return GridDomain(shape, names)
