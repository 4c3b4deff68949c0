"""An oracle that answers from a stored label table over a grid domain.

Challenges sometimes publish the network's labels on every input rather than
(or besides) the weights; this oracle lets the search run on such a table
exactly as it runs on a live network, minus logits and internals.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dsl.domains import GridDomain
from oracles.base import OracleError, batch_length
from oracles.safe_load import load_pickled_arrays


class TableOracle:
    """Labels looked up as ``table[x, y, ...]`` for the points of ``domain``."""

    feature_names: tuple[str, ...] = ()

    def __init__(self, table: np.ndarray, domain: GridDomain) -> None:
        table = np.asarray(table)
        if table.shape != tuple(domain.shape):
            raise OracleError(f"label table has shape {table.shape}, but domain {domain} "
                              f"needs shape {tuple(domain.shape)}")
        self.table = _integer_labels(table)
        self.domain = domain
        self.input_names: tuple[str, ...] = tuple(domain.names)
        self.queries = 0

    @classmethod
    def from_file(cls, path: str | os.PathLike, domain: GridDomain,
                  key: str | None = None) -> TableOracle:
        """Load a table from ``.npy`` or from the array ``key`` of a ``.pkl`` dict of arrays."""
        table = load_array(path, key)
        try:
            return cls(table, domain)
        except OracleError as error:
            raise OracleError(f"{path}{'' if key is None else f'[{key!r}]'}: {error}") from None

    def labels(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        n = batch_length(inputs, self.input_names)
        index = grid_index(inputs, self.domain)
        self.queries += n
        return self.table[index].copy()

    def logits(self, inputs: Mapping[str, np.ndarray]) -> None:
        batch_length(inputs, self.input_names)
        return None

    def features(self, inputs: Mapping[str, np.ndarray],
                 names: Sequence[str]) -> dict[str, np.ndarray]:
        raise OracleError("a label table has no internal features to read")


def load_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """A ``.npy`` array, or the array ``key`` of a ``.pkl`` dict of arrays (read with
    a restricted unpickler); ``key`` may be left out when the dict holds one array."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise OracleError(f"{path} is a single .npy array; it has no key {key!r}")
        try:
            return np.load(path, allow_pickle=False)
        except OSError as error:
            raise OracleError(f"cannot read {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise OracleError(f"{path} is not a plain .npy array: {error}") from None
    if suffix in (".pkl", ".pickle"):
        arrays = load_pickled_arrays(path)
        if key is None:
            if len(arrays) != 1:
                raise OracleError(f"{path} holds several arrays {sorted(arrays)}; "
                                  f"say which one with key")
            key = next(iter(arrays))
        if key not in arrays:
            raise OracleError(f"{path} has no array {key!r}; it has {sorted(arrays)}")
        return np.asarray(arrays[key])
    raise OracleError(f"cannot read a label table from {path}: expected .npy or .pkl")


def _integer_labels(table: np.ndarray) -> np.ndarray:
    """The table as int64, refusing non-integer or non-numeric entries."""
    if table.dtype.kind in "iub":
        return table.astype(np.int64)
    if table.dtype.kind != "f":
        raise OracleError(f"label table has dtype {table.dtype}; expected integer labels")
    if not np.isfinite(table).all():
        raise OracleError("label table holds NaN or inf")
    if not (table == np.round(table)).all():
        raise OracleError("label table holds non-integer values; expected class labels")
    return table.astype(np.int64)


def grid_index(inputs: Mapping[str, np.ndarray], domain: GridDomain) -> tuple[np.ndarray, ...]:
    """``domain.table_index`` after checking every value is an integer inside the grid."""
    for name, side in zip(domain.names, domain.shape):
        values = np.asarray(inputs[name])
        if values.ndim != 1:
            raise OracleError(f"input {name!r} must be one-dimensional, got shape {values.shape}")
        if values.dtype.kind == "f":
            if not (np.isfinite(values).all() and (values == np.round(values)).all()):
                raise OracleError(f"input {name!r} holds non-integer values")
        elif values.dtype.kind not in "iub":
            raise OracleError(f"input {name!r} has dtype {values.dtype}; expected integers")
        if len(values) and (values.min() < 0 or values.max() >= side):
            raise OracleError(f"input {name!r} has values in [{values.min()}, {values.max()}], "
                              f"outside the domain range 0..{side - 1}")
    return domain.table_index({name: inputs[name] for name in domain.names})
