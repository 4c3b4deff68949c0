"""The oracle protocol: what a network says about a batch of inputs.

An oracle answers queries given as an environment ``{input name: array}``
(the same form programs evaluate on).  It returns labels for every row,
logits where it has any, and named internal features where it can read them.
Oracles count the rows they have answered, so searches can report the
queries they spent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class OracleError(ValueError):
    """An oracle could not answer: bad inputs, a broken model, NaN outputs."""


@runtime_checkable
class Oracle(Protocol):
    #: Names of the inputs a query must provide.
    input_names: tuple[str, ...]
    #: Names accepted by :meth:`features` (empty when internals cannot be read).
    feature_names: tuple[str, ...]
    #: Rows answered so far.
    queries: int

    def labels(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Integer labels, shape (N,)."""

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Logits, shape (N, C), or None when the oracle has none."""

    def features(self, inputs: Mapping[str, np.ndarray],
                 names: Sequence[str]) -> dict[str, np.ndarray]:
        """Named internal activations, each flattened to shape (N, D)."""


def batch_length(inputs: Mapping[str, np.ndarray], input_names: Sequence[str]) -> int:
    """Validate a query batch and return its length N, with a clear error when malformed."""
    missing = [name for name in input_names if name not in inputs]
    if missing:
        raise OracleError(f"query is missing inputs {missing}; it has {sorted(inputs)}")
    lengths = {name: len(np.asarray(inputs[name])) for name in input_names}
    if len(set(lengths.values())) > 1:
        raise OracleError(f"query inputs have different lengths: {lengths}")
    return next(iter(lengths.values())) if lengths else 0


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Raise an :class:`OracleError` naming ``name`` when ``values`` hold NaN or inf."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=tuple(range(1, values.ndim))).sum())
        raise OracleError(f"the network returned NaN or inf {name} on {bad} of "
                          f"{len(values)} inputs")
    return values
