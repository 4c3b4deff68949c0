"""The EIS VII challenge-2 transformer in plain torch, with named hook points.

The architecture follows Neel Nanda's grokking code (one layer, no LayerNorm,
no attention or unembedding biases, causal attention, logits read at the last
of the tokens ``[x, y, =]``) and keeps its parameter names and shapes, so a
checkpoint saved from that code loads directly.  Every internal activation
passes through an ``nn.Identity`` :class:`HookPoint` named as in
TransformerLens (``blocks.0.attn.hook_pattern``, ...), so forward hooks
registered by module name read it; :data:`HOOK_SHAPES` documents their shapes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from oracles.base import OracleError, batch_length
from oracles.safe_load import load_torch_file

#: Added to attention scores of future positions (finite, so hooks never see inf).
MASKED_SCORE = -1e10

#: Hook name (``{L}`` stands for a layer index) -> shape, in config field names.
#: ``pos`` is the number of tokens (``n_ctx``, 3 for ``[x, y, =]``).
HOOK_SHAPES: dict[str, tuple[str, ...]] = {
    "hook_embed": ("batch", "pos", "d_model"),
    "hook_pos_embed": ("batch", "pos", "d_model"),
    "blocks.{L}.hook_resid_pre": ("batch", "pos", "d_model"),
    "blocks.{L}.attn.hook_q": ("batch", "pos", "n_heads", "d_head"),
    "blocks.{L}.attn.hook_k": ("batch", "pos", "n_heads", "d_head"),
    "blocks.{L}.attn.hook_v": ("batch", "pos", "n_heads", "d_head"),
    "blocks.{L}.attn.hook_attn_scores": ("batch", "n_heads", "pos", "pos"),
    "blocks.{L}.attn.hook_pattern": ("batch", "n_heads", "pos", "pos"),
    "blocks.{L}.attn.hook_z": ("batch", "pos", "n_heads", "d_head"),
    "blocks.{L}.attn.hook_result": ("batch", "pos", "n_heads", "d_model"),
    "blocks.{L}.hook_attn_out": ("batch", "pos", "d_model"),
    "blocks.{L}.hook_resid_mid": ("batch", "pos", "d_model"),
    "blocks.{L}.mlp.hook_pre": ("batch", "pos", "d_mlp"),
    "blocks.{L}.mlp.hook_post": ("batch", "pos", "d_mlp"),
    "blocks.{L}.hook_mlp_out": ("batch", "pos", "d_model"),
    "blocks.{L}.hook_resid_post": ("batch", "pos", "d_model"),
    "hook_logits": ("batch", "d_vocab_out"),
}


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of the network; the defaults are the challenge's published configuration.

    Tokens ``0..d_vocab-2`` are numbers and ``d_vocab-1`` is ``=``;
    ``d_vocab_out`` is the number of output classes (2 for a binary labeling).
    """

    d_vocab: int = 114
    d_vocab_out: int = 2
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 8
    d_head: int = 16
    d_mlp: int = 1024
    n_layers: int = 1

    def __post_init__(self) -> None:
        bad = {f.name: getattr(self, f.name) for f in fields(self)
               if not isinstance(getattr(self, f.name), int) or getattr(self, f.name) < 1}
        if bad:
            raise ValueError(f"transformer sizes must be positive ints, got {bad}")
        if self.d_vocab < 2:
            raise ValueError(f"d_vocab must leave room for the '=' token, got {self.d_vocab}")

    @property
    def equals_token(self) -> int:
        return self.d_vocab - 1

    def hook_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Every hook name of this network and the shape it sees for a batch of ``batch``."""
        sizes = {"batch": batch, "pos": self.n_ctx, **asdict(self)}
        return {name.format(L=layer): tuple(sizes[d] for d in dims)
                for name, dims in HOOK_SHAPES.items()
                for layer in (range(self.n_layers) if "{L}" in name else [0])}

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, in the grokking-code layout."""
        shapes = {"embed.W_E": (self.d_model, self.d_vocab),
                  "pos_embed.W_pos": (self.n_ctx, self.d_model)}
        for layer in range(self.n_layers):
            p = f"blocks.{layer}."
            head = (self.n_heads, self.d_head, self.d_model)
            shapes.update({p + "attn.W_Q": head, p + "attn.W_K": head, p + "attn.W_V": head,
                           p + "attn.W_O": (self.d_model, self.d_head * self.n_heads),
                           p + "mlp.W_in": (self.d_mlp, self.d_model),
                           p + "mlp.b_in": (self.d_mlp,),
                           p + "mlp.W_out": (self.d_model, self.d_mlp),
                           p + "mlp.b_out": (self.d_model,)})
        shapes["unembed.W_U"] = (self.d_model, self.d_vocab_out)
        return shapes


class HookPoint(nn.Identity):
    """An identity module whose name marks an activation for forward hooks."""


def _randn(*shape: int, scale: int) -> nn.Parameter:
    """A parameter initialised as in the grokking code: ``randn / sqrt(scale)``."""
    return nn.Parameter(torch.randn(*shape) / math.sqrt(scale))


class Embed(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_E = _randn(cfg.d_model, cfg.d_vocab, scale=cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.W_E.T)


class PosEmbed(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_pos = _randn(cfg.n_ctx, cfg.d_model, scale=cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.W_pos[: tokens.shape[-1]].expand(tokens.shape[0], -1, -1)


class Unembed(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_U = _randn(cfg.d_model, cfg.d_vocab_out, scale=cfg.d_vocab_out)

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        return resid @ self.W_U


class Attention(nn.Module):
    """Causal multi-head attention without biases; ``W_O`` mixes heads as ``(head, d_head)``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        head = (cfg.n_heads, cfg.d_head, cfg.d_model)
        self.W_Q = _randn(*head, scale=cfg.d_model)
        self.W_K = _randn(*head, scale=cfg.d_model)
        self.W_V = _randn(*head, scale=cfg.d_model)
        self.W_O = _randn(cfg.d_model, cfg.d_head * cfg.n_heads, scale=cfg.d_model)
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)),
                             persistent=False)
        for name in ("q", "k", "v", "attn_scores", "pattern", "z", "result"):
            setattr(self, f"hook_{name}", HookPoint())

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Attention output at every position, or at the last one alone when ``last_only``."""
        pos = x.shape[1]
        n_heads, d_head = self.W_Q.shape[:2]
        queries = x[:, -1:] if last_only else x
        q = self.hook_q(F.linear(queries, self.W_Q.flatten(0, 1)).unflatten(-1, (n_heads, d_head)))
        k = self.hook_k(F.linear(x, self.W_K.flatten(0, 1)).unflatten(-1, (n_heads, d_head)))
        v = self.hook_v(F.linear(x, self.W_V.flatten(0, 1)).unflatten(-1, (n_heads, d_head)))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d_head)
        mask = self.mask[pos - q.shape[1]:pos, :pos]
        scores = self.hook_attn_scores(scores.masked_fill(~mask, MASKED_SCORE))
        pattern = self.hook_pattern(F.softmax(scores, dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        w_o = self.W_O.unflatten(1, (n_heads, d_head))
        result = self.hook_result(torch.einsum("bqhe,dhe->bqhd", z, w_o))
        return result.sum(dim=2)


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_in = _randn(cfg.d_mlp, cfg.d_model, scale=cfg.d_model)
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = _randn(cfg.d_model, cfg.d_mlp, scale=cfg.d_model)
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(F.linear(x, self.W_in, self.b_in))
        post = self.hook_post(F.relu(pre))
        return F.linear(post, self.W_out, self.b_out)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        for name in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"):
            setattr(self, f"hook_{name}", HookPoint())

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """The residual stream after the block, at the last position alone when ``last_only``."""
        x = self.hook_resid_pre(x)
        attn_out = self.hook_attn_out(self.attn(x, last_only))
        x = self.hook_resid_mid((x[:, -1:] if last_only else x) + attn_out)
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(x)))


class HookedTransformer(nn.Module):
    """Tokens ``(N, n_ctx)`` -> last-position logits ``(N, d_vocab_out)``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg)
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.unembed = Unembed(cfg)
        self.hook_logits = HookPoint()

    def forward(self, tokens: torch.Tensor, *, last_only: bool = False) -> torch.Tensor:
        """Logits at the last position.

        ``last_only`` evaluates the last block's queries, attention and MLP at
        the last position alone (keys and values still at every position): the
        same logits at about a third of the cost, for training; that block's
        hooks from ``hook_q`` on, except ``hook_k`` and ``hook_v``, then see
        ``pos == 1``.
        """
        if tokens.ndim != 2 or tokens.shape[1] > self.cfg.n_ctx:
            raise OracleError(f"tokens must have shape (N, <= {self.cfg.n_ctx}), "
                              f"got {tuple(tokens.shape)}")
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for i, block in enumerate(self.blocks):
            x = block(x, last_only and i == len(self.blocks) - 1)
        return self.hook_logits(self.unembed(x[:, -1]))


def build_transformer(config: TransformerConfig | None = None, **sizes: int) -> HookedTransformer:
    """A freshly initialised network: ``config`` (default: the challenge's), ``sizes`` replaced."""
    cfg = config or TransformerConfig()
    if sizes:
        cfg = TransformerConfig(**{**asdict(cfg), **sizes})
    return HookedTransformer(cfg)


def encode_pairs(env: Mapping[str, np.ndarray], *, p: int = 113) -> torch.Tensor:
    """Tokens ``[x, y, p]`` (``p`` is ``=``) for the pairs of ``env = {"x": ..., "y": ...}``."""
    n = batch_length(env, ("x", "y"))
    columns = []
    for name in ("x", "y"):
        values = np.asarray(env[name]).reshape(n)
        if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
            values = values.astype(np.int64)
        if values.dtype.kind not in "iub":
            raise OracleError(f"input {name!r} must hold integers, got dtype {values.dtype}")
        if n and (values.min() < 0 or values.max() >= p):
            raise OracleError(f"input {name!r} must lie in 0..{p - 1}, got values in "
                              f"{values.min()}..{values.max()}")
        columns.append(torch.as_tensor(values.astype(np.int64)))
    return torch.stack([*columns, torch.full((n,), p, dtype=torch.long)], dim=1)


def run_with_cache(model: HookedTransformer, tokens: torch.Tensor,
                   names: Iterable[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the activations at hook points ``names``, without gradients."""
    modules = dict(model.named_modules())
    names = list(names)
    unknown = [n for n in names if not isinstance(modules.get(n), HookPoint)]
    if unknown:
        known = sorted(n for n, m in modules.items() if isinstance(m, HookPoint))
        raise OracleError(f"unknown hook points {unknown}; known: {known}")
    cache: dict[str, torch.Tensor] = {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: cache.__setitem__(n, out.detach())) for n in names]
    try:
        with torch.no_grad():
            logits = model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return logits, cache


def _unwrap(checkpoint: object, path: Path) -> tuple[Mapping[str, torch.Tensor], dict | None]:
    """The state dict inside a checkpoint, and its saved config when it has one."""
    config = None
    if isinstance(checkpoint, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(checkpoint.get(key), Mapping):
                config = checkpoint.get("config")
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping):
        raise OracleError(f"{path}: expected a state dict of tensors (bare, or under a 'model' "
                          f"key), got {type(checkpoint).__name__}")
    state = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    return state, config if isinstance(config, Mapping) else None


def infer_config(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Sizes of the network whose parameters (grokking layout) are ``state``."""
    ranks = {"embed.W_E": 2, "pos_embed.W_pos": 2, "blocks.0.attn.W_Q": 3,
             "blocks.0.mlp.W_in": 2, "unembed.W_U": 2}
    missing = [k for k in ranks if k not in state]
    if missing:
        raise OracleError(f"checkpoint is missing parameters {missing} (it has {sorted(state)})")
    shapes = {k: tuple(state[k].shape) for k in ranks}
    if any(len(shapes[k]) != rank for k, rank in ranks.items()):
        raise OracleError(f"checkpoint parameters have unexpected ranks: {shapes}")
    n_layers = 0
    while f"blocks.{n_layers}.attn.W_Q" in state:
        n_layers += 1
    return {"d_vocab": shapes["embed.W_E"][1], "d_vocab_out": shapes["unembed.W_U"][1],
            "n_ctx": shapes["pos_embed.W_pos"][0], "d_model": shapes["embed.W_E"][0],
            "n_heads": shapes["blocks.0.attn.W_Q"][0], "d_head": shapes["blocks.0.attn.W_Q"][1],
            "d_mlp": shapes["blocks.0.mlp.W_in"][0], "n_layers": n_layers}


def _make_config(sizes: Mapping) -> TransformerConfig:
    """A config from plain sizes, ignoring keys that are not config fields."""
    names = {f.name for f in fields(TransformerConfig)}
    try:
        return TransformerConfig(**{k: v for k, v in sizes.items() if k in names})
    except (TypeError, ValueError) as err:
        raise OracleError(f"bad transformer config {dict(sizes)}: {err}") from None


def load_transformer(path: str | Path,
                     config: TransformerConfig | None = None) -> HookedTransformer:
    """A network from a checkpoint in the grokking-code layout (or this module's: the same).

    The checkpoint is a bare state dict or a dict holding one under ``"model"``;
    keys it has beyond the parameters (``blocks.0.attn.mask``, ``IGNORE``, ...)
    are ignored.  ``config`` defaults to the one saved beside the weights, else
    to the sizes the parameters' shapes imply.  Loading never unpickles code
    (``weights_only=True``).
    """
    path = Path(path)
    state, saved = _unwrap(load_torch_file(path), path)
    if config is None:
        try:
            config = _make_config(saved if saved is not None else infer_config(state))
        except OracleError as err:
            raise OracleError(f"{path}: {err}") from None
    expected = config.parameter_shapes()
    missing = [k for k in expected if k not in state]
    if missing:
        raise OracleError(f"{path}: checkpoint is missing parameters {missing} "
                          f"(it has {sorted(state)})")
    wrong = {k: (shape, tuple(state[k].shape)) for k, shape in expected.items()
             if tuple(state[k].shape) != shape}
    if wrong:
        detail = "; ".join(f"{k}: expected {e}, found {f}" for k, (e, f) in wrong.items())
        raise OracleError(f"{path}: parameter shapes do not match the config: {detail}")
    bad = [k for k in expected if not torch.isfinite(state[k]).all()]
    if bad:
        raise OracleError(f"{path}: parameters {bad} hold NaN or inf")
    model = HookedTransformer(config)
    model.load_state_dict({k: state[k] for k in expected}, strict=True)
    return model.eval()
