"""Loading arrays and weights from files without running code from them.

A pickle can name any global and call it while loading, so a label table or a
checkpoint downloaded with a challenge could run arbitrary code.  Label
pickles are read with an unpickler that resolves only the globals numpy needs
to rebuild arrays; torch files are read with ``weights_only=True``.  Every
failure becomes an :class:`OracleError` naming the file.
"""
from __future__ import annotations

import codecs
import collections
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oracles.base import OracleError

try:  # numpy >= 2 keeps the internals in numpy._core; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """``(module, name) -> object`` for every global an array pickle may name."""
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocols 0-2 spell bytes as _codecs.encode(text, "latin1")
        ("_codecs", "encode"): codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = _multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = _numeric._frombuffer  # protocol 5
    for builtins in ("builtins", "__builtin__"):
        for container in (dict, list, tuple, set, frozenset, bytearray, complex, slice):
            allowed[(builtins, container.__name__)] = container
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    return allowed


_ALLOWED = _allowed_globals()


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global but numpy's array rebuilders."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise OracleError(f"refusing to load global {module}.{name}: only numpy arrays "
                              f"and plain containers are allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise OracleError("refusing to load a persistent id: only numpy arrays and plain "
                          "containers are allowed")


def load_pickled_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a pickle holding ``{name: numpy array}`` without executing anything else."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = _ArrayUnpickler(handle).load()
    except OracleError as error:
        raise OracleError(f"{path}: {error}") from None
    except OSError as error:
        raise OracleError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # truncated or corrupt data raise many kinds
        raise OracleError(f"{path} is not a readable pickle: {type(error).__name__}: "
                          f"{error}") from None
    if not isinstance(data, dict):
        raise OracleError(f"{path} holds a {type(data).__name__}, expected a dict of arrays")
    arrays: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise OracleError(f"{path} has a non-string key {key!r}")
        if not isinstance(value, np.ndarray):
            raise OracleError(f"{path}: {key!r} holds a {type(value).__name__}, "
                              f"expected a numpy array")
        if value.dtype.hasobject:
            raise OracleError(f"{path}: {key!r} is an object array; expected numbers")
        arrays[key] = value
    return arrays


def load_torch_file(path: str | os.PathLike) -> Any:
    """Read a torch file with ``weights_only=True`` (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise OracleError(f"cannot read {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise OracleError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # UnpicklingError, RuntimeError, zip errors, ...
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise OracleError(f"{path} is not a loadable torch weights file "
                          f"({type(error).__name__}: {message})") from None


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a torch state dict ``{parameter name: tensor}`` safely."""
    data = load_torch_file(path)
    return as_state_dict(data, f"{Path(path)}")


def as_state_dict(data: Any, where: str) -> dict[str, torch.Tensor]:
    """Check that ``data`` is a dict of tensors; ``where`` names it in errors."""
    if not isinstance(data, dict):
        raise OracleError(f"{where} holds a {type(data).__name__}, expected a state dict "
                          f"(a dict of tensors)")
    bad = [key for key, value in data.items()
           if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        kinds = {str(key): type(data[key]).__name__ for key in bad[:5]}
        raise OracleError(f"{where} is not a state dict: entries {kinds} are not tensors")
    return dict(data)
