"""Network architectures by name: how to build each, feed it, save and reload it.

An :class:`Architecture` knows how to build its ``nn.Module`` from a config of
plain values, how to encode a query environment ``{input name: array}`` into
the tensor the module eats, and how to recover its config from the shapes of
a bare state dict.  A :class:`ModelSpec` (architecture name + config) is what
a checkpoint records, so any saved model can be rebuilt exactly::

    torch.save({"arch": "mlp", "config": {...}, "state_dict": {...}}, path)

Checkpoints hold only plain containers and tensors, so they load with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from dsl.domains import GridDomain
from oracles.base import OracleError, batch_length
from oracles.safe_load import as_state_dict, load_torch_file
from oracles.table import grid_index

#: Turns a query environment into the tensor a module eats.
Encoder = Callable[[Mapping[str, np.ndarray]], torch.Tensor]


@dataclass(frozen=True)
class Architecture:
    """A named network family.

    ``build(**config)`` makes the module; ``encoder(config)`` returns the
    function encoding an environment for it; ``input_names(config)`` the inputs
    that encoder reads; ``infer_config(state_dict, domain)`` recovers a config
    from a bare state dict; ``domain_config(domain)`` gives the config of a
    fresh model on a domain, when the architecture is domain-shaped.  With
    ``strict=False``, state-dict entries the module does not have (buffers
    such as attention masks saved by other code) are dropped on loading.
    """

    name: str
    description: str
    build: Callable[..., nn.Module] = field(repr=False)
    encoder: Callable[[Mapping[str, Any]], Encoder] = field(repr=False)
    input_names: Callable[[Mapping[str, Any]], tuple[str, ...]] = field(repr=False)
    infer_config: Callable[[Mapping[str, torch.Tensor], GridDomain | None], dict[str, Any]] = \
        field(repr=False)
    domain_config: Callable[[GridDomain], dict[str, Any]] | None = field(default=None, repr=False)
    strict: bool = True


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(arch: Architecture) -> Architecture:
    """Add ``arch`` to the registry (replacing any entry of the same name)."""
    ARCHITECTURES[arch.name] = arch
    return arch


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise OracleError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}") \
            from None


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model besides its weights."""

    arch: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.arch)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.architecture.input_names(self.config))

    def build(self) -> nn.Module:
        """A freshly initialised module (in eval mode) of this spec."""
        try:
            module = self.architecture.build(**self.config)
        except OracleError:
            raise
        except (TypeError, ValueError) as error:
            raise OracleError(f"cannot build {self.arch!r} from config {self.config}: "
                              f"{error}") from None
        return module.eval()

    def encoder(self) -> Encoder:
        return self.architecture.encoder(self.config)


# ---------------------------------------------------------------------------
# "mlp": one-hot encoded integer inputs of a grid domain


class GridMLP(nn.Module):
    """Linear/ReLU stack named fc1, relu1, fc2, relu2, ..., out (each a hook point)."""

    def __init__(self, sizes: list[int], names: list[str], hidden: list[int] = (256, 256),
                 n_classes: int = 2) -> None:
        super().__init__()
        if len(sizes) != len(names) or not sizes:
            raise ValueError(f"need one size per input name, got sizes {sizes}, names {names}")
        if any(int(s) < 1 for s in sizes) or any(int(h) < 1 for h in hidden) or n_classes < 1:
            raise ValueError("sizes, hidden widths and n_classes must be positive")
        width = int(sum(sizes))
        for i, h in enumerate(hidden, start=1):
            self.add_module(f"fc{i}", nn.Linear(width, int(h)))
            self.add_module(f"relu{i}", nn.ReLU())
            width = int(h)
        self.out = nn.Linear(width, int(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


def mlp_config(domain: GridDomain, hidden: tuple[int, ...] = (256, 256),
               n_classes: int = 2) -> dict[str, Any]:
    """Config of an mlp reading the inputs of ``domain``."""
    return {"sizes": [int(s) for s in domain.shape], "names": list(domain.names),
            "hidden": [int(h) for h in hidden], "n_classes": int(n_classes)}


def _mlp_encoder(config: Mapping[str, Any]) -> Encoder:
    domain = GridDomain(tuple(int(s) for s in config["sizes"]), tuple(config["names"]))

    def encode(env: Mapping[str, np.ndarray]) -> torch.Tensor:
        batch_length(env, domain.names)
        index = grid_index(env, domain)
        parts = [torch.nn.functional.one_hot(torch.from_numpy(np.ascontiguousarray(i)), side)
                 for i, side in zip(index, domain.shape)]
        return torch.cat(parts, dim=1).to(torch.float32)

    return encode


def _mlp_infer(state: Mapping[str, torch.Tensor], domain: GridDomain | None) -> dict[str, Any]:
    hidden = []
    while f"fc{len(hidden) + 1}.weight" in state:
        hidden.append(int(state[f"fc{len(hidden) + 1}.weight"].shape[0]))
    if "out.weight" not in state:
        raise OracleError(f"not an mlp state dict: no 'out.weight' among {sorted(state)[:8]}")
    if domain is None:
        raise OracleError("a bare mlp state dict does not record its input sizes; "
                          "give the domain (e.g. grid:113x113)")
    return mlp_config(domain, tuple(hidden), int(state["out.weight"].shape[0]))


register_architecture(Architecture(
    name="mlp",
    description="one-hot grid inputs -> Linear/ReLU hidden layers (default 2x256) -> logits",
    build=GridMLP,
    encoder=_mlp_encoder,
    input_names=lambda config: tuple(config["names"]),
    infer_config=_mlp_infer,
    domain_config=mlp_config,
))


# ---------------------------------------------------------------------------
# "casper-cnn": the challenge-1 MNIST classifier, as published


class CasperCNN(nn.Module):
    """(N,1,28,28) -> conv1/relu/dropout/pool -> conv2/relu/dropout/pool -> fc1/relu -> fc2.

    Every step is its own module so a forward hook can read it.
    """

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(dropout)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.relu2 = nn.ReLU()
        self.drop2 = nn.Dropout(dropout)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 200)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(200, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


def _encode_image(env: Mapping[str, np.ndarray]) -> torch.Tensor:
    batch_length(env, ("image",))
    image = np.asarray(env["image"])
    if image.ndim == 4 and image.shape[1] == 1:
        image = image[:, 0]
    if image.shape[1:] != (28, 28):
        raise OracleError(f"input 'image' must have shape (N, 28, 28), got {image.shape}")
    if image.dtype.kind not in "fiub":
        raise OracleError(f"input 'image' has dtype {image.dtype}; expected floats in [0, 1]")
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise OracleError("input 'image' holds NaN or inf")
    if image.size and (image.min() < 0.0 or image.max() > 1.0):
        raise OracleError(f"input 'image' has values in [{image.min():g}, {image.max():g}]; "
                          f"the network expects pixels in [0, 1]")
    return torch.from_numpy(image).unsqueeze(1)


register_architecture(Architecture(
    name="casper-cnn",
    description="challenge-1 MNIST CNN: 2 conv(3x3)/relu/dropout/maxpool blocks, fc 400-200-2",
    build=CasperCNN,
    encoder=lambda config: _encode_image,
    input_names=lambda config: ("image",),
    infer_config=lambda state, domain: {},
))


# ---------------------------------------------------------------------------
# "casper-transformer": defined in oracles/transformer.py, imported on first use


def _transformer_module() -> ModuleType:
    try:
        return importlib.import_module("oracles.transformer")
    except ModuleNotFoundError as error:
        if error.name == "oracles.transformer":
            raise OracleError("architecture 'casper-transformer' is unavailable: "
                              "oracles/transformer.py is missing") from None
        raise OracleError(f"architecture 'casper-transformer' failed to import: {error}") \
            from None


def _transformer_infer(state: Mapping[str, torch.Tensor],
                       domain: GridDomain | None) -> dict[str, Any]:
    """Sizes from the grokking-code parameter layout (unless the module infers them)."""
    infer = getattr(_transformer_module(), "infer_config", None)
    if infer is not None:
        return dict(infer(state))
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    needed = ["embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.mlp.W_in",
              "unembed.W_U"]
    missing = [key for key in needed if key not in shapes]
    if missing:
        raise OracleError(f"not a casper-transformer state dict: missing {missing}")
    d_model, d_vocab = shapes["embed.W_E"]
    n_heads, d_head, _ = shapes["blocks.0.attn.W_Q"]
    n_layers = 0
    while f"blocks.{n_layers}.attn.W_Q" in shapes:
        n_layers += 1
    return {"d_vocab": d_vocab, "d_vocab_out": shapes["unembed.W_U"][1],
            "n_ctx": shapes["pos_embed.W_pos"][0], "d_model": d_model, "n_heads": n_heads,
            "d_head": d_head, "d_mlp": shapes["blocks.0.mlp.W_in"][0], "n_layers": n_layers}


def _transformer_encoder(config: Mapping[str, Any]) -> Encoder:
    encode_pairs = _transformer_module().encode_pairs
    return functools.partial(encode_pairs, p=int(config.get("d_vocab", 114)) - 1)


register_architecture(Architecture(
    name="casper-transformer",
    description="challenge-2 modular-arithmetic transformer (oracles/transformer.py)",
    build=lambda **config: _transformer_module().build_transformer(**config),
    encoder=_transformer_encoder,
    input_names=lambda config: ("x", "y"),
    infer_config=_transformer_infer,
    strict=False,
))


# ---------------------------------------------------------------------------
# saving and loading


def new_model(arch: str, config: Mapping[str, Any] | None = None, *,
              domain: GridDomain | None = None) -> tuple[nn.Module, ModelSpec]:
    """A freshly initialised module: the domain's default config updated with ``config``."""
    architecture = get_architecture(arch)
    full: dict[str, Any] = {}
    if domain is not None and architecture.domain_config is not None:
        full.update(architecture.domain_config(domain))
    full.update(config or {})
    spec = ModelSpec(arch, full)
    return spec.build(), spec


def save_model(path: str | os.PathLike, model: nn.Module, arch: str,
               config: Mapping[str, Any]) -> None:
    """Write ``model`` with its spec so :func:`load_model` can rebuild it."""
    get_architecture(arch)
    _check_plain(config, "config")
    spec = ModelSpec(arch, dict(config))
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    check_state_dict(spec.build(), state, f"model to save as {arch!r}")
    torch.save({"arch": arch, "config": dict(config), "state_dict": state}, Path(path))


def load_model(path: str | os.PathLike, arch: str | None = None, *,
               domain: GridDomain | None = None) -> tuple[nn.Module, ModelSpec]:
    """Rebuild a saved model (eval mode) from a checkpoint or a bare state dict.

    A checkpoint written by :func:`save_model` names its architecture; a bare
    state dict needs ``arch``, and its config is inferred from tensor shapes
    (and ``domain`` for domain-shaped architectures).
    """
    where = str(Path(path))
    data = load_torch_file(path)
    if isinstance(data, dict) and "state_dict" in data:
        saved_arch, config = data.get("arch"), data.get("config", {})
        if not isinstance(saved_arch, str) or not isinstance(config, dict):
            raise OracleError(f"{where} is a malformed checkpoint: expected 'arch' (a string) "
                              f"and 'config' (a dict)")
        if arch is not None and arch != saved_arch:
            raise OracleError(f"{where} holds a {saved_arch!r} model, not {arch!r}")
        state = as_state_dict(data["state_dict"], f"{where} ['state_dict']")
        if saved_arch not in ARCHITECTURES:
            raise OracleError(f"{where} holds an unknown architecture {saved_arch!r}; "
                              f"known: {sorted(ARCHITECTURES)}")
        spec = ModelSpec(saved_arch, dict(config))
    else:
        if isinstance(data, dict):  # other code nests the weights under "model"
            for key in ("model", "model_state_dict"):
                if isinstance(data.get(key), dict):
                    data, where = data[key], f"{where} [{key!r}]"
                    break
        state = as_state_dict(data, where)
        if arch is None:
            raise OracleError(f"{where} is a bare state dict; say which architecture it is "
                              f"(one of {sorted(ARCHITECTURES)})")
        architecture = get_architecture(arch)
        try:
            spec = ModelSpec(arch, architecture.infer_config(state, domain))
        except OracleError as error:
            raise OracleError(f"{where}: {error}") from None
    if domain is not None and spec.architecture.domain_config is not None:
        names, sizes = spec.config.get("names"), spec.config.get("sizes")
        if (list(names or []), list(sizes or [])) != (list(domain.names), list(domain.shape)):
            raise OracleError(f"{where} was trained on inputs {names} with sizes {sizes}, "
                              f"but the domain is {domain} with inputs {list(domain.names)}")
    try:
        module = spec.build()
    except OracleError as error:
        raise OracleError(f"{where}: {error}") from None
    if not spec.architecture.strict:
        expected = module.state_dict()
        state = {key: value for key, value in state.items() if key in expected}
    check_state_dict(module, state, where)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:  # anything check_state_dict did not foresee
        raise OracleError(f"{where} does not fit {spec.arch!r}: {error}") from None
    return module.eval(), spec


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise an :class:`OracleError` naming every missing, extra or misshapen key."""
    expected = module.state_dict()
    problems = [f"missing {key} (shape {tuple(t.shape)})"
                for key, t in expected.items() if key not in state]
    problems += [f"unexpected {key} (shape {tuple(t.shape)})"
                 for key, t in state.items() if key not in expected]
    problems += [f"{key}: expected shape {tuple(t.shape)}, found {tuple(state[key].shape)}"
                 for key, t in expected.items()
                 if key in state and tuple(state[key].shape) != tuple(t.shape)]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more"
                                           if len(problems) > 6 else "")
        raise OracleError(f"{where} does not fit the {type(module).__name__} "
                          f"architecture: {shown}")


def _check_plain(value: Any, where: str) -> None:
    """Configs must be plain values so weights_only loading accepts them."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise OracleError(f"{where} has non-string key {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (bool, int, float, str))):
        raise OracleError(f"{where} is a {type(value).__name__}; configs may hold only "
                          f"dicts, lists, strings and numbers")
