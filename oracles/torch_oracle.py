"""An oracle backed by a live PyTorch module: labels, logits, internals, gradients.

Every submodule is a named hook point (as in TransformerLens): :meth:`features`
registers forward hooks on the requested modules, runs the batch, and returns
what they produced flattened to ``(N, D)``.  Queries run in eval mode under
``torch.no_grad`` and in batches, and count the rows they answer.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from dsl.domains import GridDomain
from oracles.architectures import Encoder, ModelSpec, load_model
from oracles.base import OracleError, batch_length, check_finite

#: Maps a batch of logits (N, C) to the (N,) quantity whose input gradient is wanted.
Target = Callable[[torch.Tensor], torch.Tensor]


def logit_difference(logits: torch.Tensor) -> torch.Tensor:
    """Class-1 logit minus class-0 logit (or the single logit of a 1-output net)."""
    if logits.shape[1] == 1:
        return logits[:, 0]
    return logits[:, 1] - logits[:, 0]


class TorchOracle:
    """Answers queries by running ``module`` on ``encode(inputs)``."""

    def __init__(self, module: nn.Module, encode: Encoder, input_names: Sequence[str],
                 batch_size: int = 4096, device: str | torch.device = "cpu") -> None:
        if int(batch_size) < 1:
            raise OracleError(f"batch_size must be positive, got {batch_size}")
        try:
            self.device = torch.device(device)
        except RuntimeError as error:
            raise OracleError(f"unknown device {device!r}: {error}") from None
        self.module = module.to(self.device).eval()
        self.encode = encode
        self.input_names: tuple[str, ...] = tuple(input_names)
        self.batch_size = int(batch_size)
        self.queries = 0
        self.spec: ModelSpec | None = None
        self._hook_points = {name: sub for name, sub in module.named_modules() if name}
        self.feature_names: tuple[str, ...] = tuple(self._hook_points) + ("logits",)

    @classmethod
    def from_file(cls, path: str | os.PathLike, arch: str | None = None,
                  domain: GridDomain | None = None, **kwargs) -> TorchOracle:
        """Load a checkpoint or bare state dict (see :func:`load_model`) as an oracle."""
        module, spec = load_model(path, arch, domain=domain)
        oracle = cls(module, spec.encoder(), spec.input_names, **kwargs)
        oracle.spec = spec
        return oracle

    # -- the Oracle protocol ------------------------------------------------

    def labels(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        logits = self.logits(inputs)
        if logits.shape[1] == 1:
            return (logits[:, 0] > 0).astype(np.int64)
        return logits.argmax(axis=1).astype(np.int64)

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.features(inputs, ["logits"])["logits"]

    def features(self, inputs: Mapping[str, np.ndarray],
                 names: Sequence[str]) -> dict[str, np.ndarray]:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [name for name in names if name not in self.feature_names]
        if unknown:
            raise OracleError(f"unknown features {unknown}; valid names: "
                              f"{list(self.feature_names)}")
        n = batch_length(inputs, self.input_names)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        with torch.no_grad():
            for batch in self._batches(inputs, n):
                for name, value in self._run(batch, names).items():
                    parts[name].append(value)
        self.queries += n
        result = {}
        for name, chunks in parts.items():
            result[name] = check_finite(name, np.concatenate(chunks))
        return result

    # -- gradients ----------------------------------------------------------

    def input_gradients(self, inputs: Mapping[str, np.ndarray],
                        target: Target = logit_difference) -> np.ndarray:
        """d target(logits) / d encoded input, float64, one row per input.

        The shape is the encoded tensor's, except that when the oracle has a
        single input and the encoding only reshapes it (an image gaining a
        channel axis), the gradient takes the input's own shape.
        """
        n = batch_length(inputs, self.input_names)
        chunks = []
        for batch in self._batches(inputs, n):
            x = self._encode(batch).detach()
            if not x.is_floating_point():
                raise OracleError(f"the encoded input has dtype {x.dtype}; gradients need "
                                  f"a floating-point encoding")
            x.requires_grad_(True)
            with torch.enable_grad():
                logits = _as_logits(self.module(x))
                value = target(logits)
                if not isinstance(value, torch.Tensor) or value.shape != (len(x),):
                    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else value
                    raise OracleError(f"gradient target must give one value per row, shape "
                                      f"({len(x)},), got {shape}")
                (grad,) = torch.autograd.grad(value.sum(), x)
            grad = grad.detach().cpu().to(torch.float64).numpy()
            if len(self.input_names) == 1:
                original = np.asarray(batch[self.input_names[0]])
                if original.size == grad.size:
                    grad = grad.reshape(original.shape)
            chunks.append(grad)
        self.queries += n
        return check_finite("input gradients", np.concatenate(chunks))

    # -- internals ----------------------------------------------------------

    def _batches(self, inputs: Mapping[str, np.ndarray],
                 n: int) -> Iterator[dict[str, np.ndarray]]:
        arrays = {name: np.asarray(inputs[name]) for name in self.input_names}
        for start in range(0, max(n, 1), self.batch_size):  # an empty query runs once
            yield {name: a[start:start + self.batch_size] for name, a in arrays.items()}

    def _encode(self, batch: Mapping[str, np.ndarray]) -> torch.Tensor:
        x = self.encode(batch)
        if not isinstance(x, torch.Tensor):
            raise OracleError(f"the encoder returned a {type(x).__name__}, not a tensor")
        x = x.to(self.device)
        if x.is_floating_point():
            param = next(self.module.parameters(), None)
            if param is not None and param.is_floating_point():
                x = x.to(param.dtype)
        return x

    def _run(self, batch: Mapping[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        """One forward pass recording the outputs of the modules in ``names``."""
        captured: dict[str, list[torch.Tensor]] = {}
        handles = []

        def recorder(name: str):
            def hook(module, args, output):
                captured.setdefault(name, []).append(output)
            return hook

        try:
            for name in names:
                if name != "logits":
                    point = self._hook_points[name]
                    handles.append(point.register_forward_hook(recorder(name)))
            logits = _as_logits(self.module(self._encode(batch)))
        finally:
            for handle in handles:
                handle.remove()
        out = {}
        for name in names:
            if name == "logits":
                out[name] = logits.detach().cpu().to(torch.float64).numpy()
                continue
            outputs = captured.get(name, [])
            if not outputs:
                raise OracleError(f"module {name!r} did not run in the forward pass "
                                  f"(a container of other modules?); read its children")
            if len(outputs) > 1:
                raise OracleError(f"module {name!r} ran {len(outputs)} times in one forward "
                                  f"pass; its output is not a single feature")
            value = outputs[0]
            if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
                value = value[0]
            if not isinstance(value, torch.Tensor):
                raise OracleError(f"module {name!r} outputs a {type(value).__name__}, "
                                  f"not a tensor")
            if value.ndim == 0 or value.shape[0] != len(logits):
                raise OracleError(f"module {name!r} outputs shape {tuple(value.shape)}, "
                                  f"which has no batch axis of length {len(logits)}")
            width = int(np.prod(value.shape[1:]))
            out[name] = value.detach().reshape(len(logits), width).cpu().to(torch.float64).numpy()
        return out


def _as_logits(output: torch.Tensor) -> torch.Tensor:
    """The module output as (N, C) logits."""
    if not isinstance(output, torch.Tensor):
        raise OracleError(f"the network returned a {type(output).__name__}, not a tensor")
    if output.ndim == 1:
        return output[:, None]
    if output.ndim != 2:
        raise OracleError(f"the network returned shape {tuple(output.shape)}; "
                          f"expected logits of shape (N, C)")
    return output
