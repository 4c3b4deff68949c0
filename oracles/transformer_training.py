"""Train a stand-in for the challenge-2 transformer, whose weights are not published.

The recipe is the challenge's: the 12,769 pairs ``(x, y)`` in C order,
shuffled with Python's ``random`` seeded by ``seed_split``, the first half for
training; full-batch AdamW (lr 5e-4, weight decay 1.0, betas (0.9, 0.98));
cross-entropy on the last-position logits.  Runs are deterministic for a torch
seed.  :func:`cached_replica` keeps trained weights outside the repository,
keyed by a hash of the labels and the whole recipe.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from oracles.transformer import (HookedTransformer, TransformerConfig, build_transformer,
                                 encode_pairs, load_transformer)

#: Epochs a replica trains for unless told otherwise: held-out accuracy has
#: plateaued by then (97.7% on the challenge labels, seed 0; unchanged at 1000-10,000
#: epochs in the published measurements).
DEFAULT_EPOCHS = 1000

#: Bump when the training code changes what a cached replica holds.
CACHE_VERSION = 1


@dataclass(frozen=True)
class TrainingConfig:
    """The recipe apart from the run's epochs and seed.

    Held-out accuracy is measured every ``eval_every`` epochs; with
    ``patience`` set, training stops once ``patience`` such measurements in a
    row have not beaten the best by more than ``min_delta``.
    """

    lr: float = 5e-4
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    frac_train: float = 0.5
    seed_split: int = 0
    eval_every: int = 100
    patience: int | None = None
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 < self.frac_train < 1.0:
            raise ValueError(f"frac_train must lie strictly between 0 and 1, got {self.frac_train}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")


@dataclass(frozen=True)
class EpochStats:
    """What the progress callback hears every ``eval_every`` epochs."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float


@dataclass(frozen=True)
class ReplicaReport:
    """How a training run ended: final accuracies on both halves, epochs run, wall time."""

    train_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float
    train_loss: float
    stopped_early: bool = False


Progress = Callable[[EpochStats], None]
Replica = tuple[HookedTransformer, ReplicaReport]


def split_pairs(p: int = 113, seed_split: int = 0,
                frac_train: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out pairs, arrays of shape (n, 2), split as the challenge did.

    Same order as ``random.seed(seed_split); random.shuffle(pairs)`` on the
    pairs in C order, without touching the global ``random`` state.
    """
    pairs = [(x, y) for x in range(p) for y in range(p)]
    random.Random(seed_split).shuffle(pairs)
    table = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    cut = int(frac_train * len(pairs))
    return table[:cut], table[cut:]


def _check_labels(labels: np.ndarray, config: TransformerConfig) -> np.ndarray:
    """``labels`` as int64 of shape (p, p), or a ValueError saying what is wrong.

    The published label table holds 0.0/1.0 floats, so integral floats pass.
    """
    labels = np.asarray(labels)
    p = config.equals_token
    if labels.shape != (p, p):
        raise ValueError(f"labels must have shape ({p}, {p}), indexed [x, y]; got {labels.shape}")
    integral = labels.dtype.kind in "iub" or (
        labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels) & (labels % 1 == 0))))
    if not integral:
        raise ValueError(f"labels must hold integers (any dtype), got dtype {labels.dtype} "
                         f"with non-integer values")
    if labels.min() < 0 or labels.max() >= config.d_vocab_out:
        raise ValueError(f"labels must lie in 0..{config.d_vocab_out - 1}, got values in "
                         f"{labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float((logits.argmax(dim=-1) == targets).float().mean())


def fit(model: HookedTransformer, train_tokens: torch.Tensor, train_targets: torch.Tensor,
        test_tokens: torch.Tensor, test_targets: torch.Tensor, epochs: int,
        training: TrainingConfig = TrainingConfig(),
        progress: Progress | None = None) -> ReplicaReport:
    """Train ``model`` in place, full batch, for up to ``epochs`` epochs.

    Deterministic: nothing here draws random numbers, so the outcome depends
    on the model's initial weights and the data alone (and, through float
    summation order, on torch's thread count).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr,
                                  weight_decay=training.weight_decay, betas=training.betas)
    start = time.perf_counter()
    best, stale, epoch, stopped = -1.0, 0, 0, False
    model.train()
    for epoch in range(1, epochs + 1):
        logits = model(train_tokens, last_only=True)
        loss = F.cross_entropy(logits, train_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if epoch % training.eval_every and epoch != epochs:
            continue
        if not torch.isfinite(loss):
            raise ValueError(f"training diverged: the loss is {float(loss)} at epoch {epoch}")
        with torch.no_grad():
            test_accuracy = _accuracy(model(test_tokens, last_only=True), test_targets)
        if progress is not None:
            train_accuracy = _accuracy(logits.detach(), train_targets)
            progress(EpochStats(epoch, float(loss.detach()), train_accuracy, test_accuracy,
                                time.perf_counter() - start))
        if test_accuracy > best + training.min_delta:
            best, stale = test_accuracy, 0
        else:
            stale += 1
        if training.patience is not None and stale >= training.patience and epoch < epochs:
            stopped = True
            break
    model.eval()
    with torch.no_grad():
        train_logits = model(train_tokens, last_only=True)
        test_logits = model(test_tokens, last_only=True)
    return ReplicaReport(train_accuracy=_accuracy(train_logits, train_targets),
                         test_accuracy=_accuracy(test_logits, test_targets), epochs=epoch,
                         seconds=time.perf_counter() - start,
                         train_loss=float(F.cross_entropy(train_logits, train_targets)),
                         stopped_early=stopped)


def _tokens_and_targets(pairs: np.ndarray, labels: np.ndarray,
                        p: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = encode_pairs({"x": pairs[:, 0], "y": pairs[:, 1]}, p=p)
    return tokens, torch.as_tensor(labels[pairs[:, 0], pairs[:, 1]])


def train_replica(labels: np.ndarray, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
                  progress: Progress | None = None, *,
                  config: TransformerConfig | None = None,
                  training: TrainingConfig | None = None) -> Replica:
    """A network trained on ``labels`` (shape (p, p), indexed [x, y]) with the challenge's recipe.

    ``seed`` seeds the weight initialisation (the global torch RNG is left as
    it was); the split comes from ``training.seed_split``.
    """
    config = config or TransformerConfig()
    training = training or TrainingConfig()
    labels = _check_labels(labels, config)
    p = config.equals_token
    train_pairs, test_pairs = split_pairs(p, training.seed_split, training.frac_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_transformer(config)
    report = fit(model, *_tokens_and_targets(train_pairs, labels, p),
                 *_tokens_and_targets(test_pairs, labels, p), epochs, training, progress)
    return model, report


def default_cache_dir() -> Path:
    """``$SYNTH_CACHE_DIR``, else ``~/.cache/synth``."""
    return Path(os.environ.get("SYNTH_CACHE_DIR") or Path.home() / ".cache" / "synth")


def replica_key(labels: np.ndarray, epochs: int, seed: int, config: TransformerConfig,
                training: TrainingConfig) -> str:
    """A hex digest of everything a trained replica depends on."""
    labels = _check_labels(labels, config)
    recipe = json.dumps({"version": CACHE_VERSION, "epochs": epochs, "seed": seed,
                         "config": asdict(config), "training": asdict(training),
                         "shape": labels.shape}, sort_keys=True)
    digest = hashlib.sha256(recipe.encode())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def replica_path(labels: np.ndarray, cache_dir: str | Path | None = None, seed: int = 0,
                 epochs: int = DEFAULT_EPOCHS, *, config: TransformerConfig | None = None,
                 training: TrainingConfig | None = None) -> Path:
    """Where :func:`cached_replica` keeps the replica for these arguments."""
    key = replica_key(labels, epochs, seed, config or TransformerConfig(),
                      training or TrainingConfig())
    return Path(cache_dir or default_cache_dir()) / f"transformer-replica-{key[:20]}.pt"


def _save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cached(path: Path, key: str,
                 config: TransformerConfig) -> Replica | None:
    """The cached replica at ``path``, or None when it is absent, unreadable or for another key."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("key") != key:
            return None
        return load_transformer(path, config), ReplicaReport(**payload["report"])
    except Exception:  # noqa: BLE001 - any broken cache file just means training again
        return None


def cached_replica(labels: np.ndarray, cache_dir: str | Path | None = None, seed: int = 0,
                   epochs: int = DEFAULT_EPOCHS, progress: Progress | None = None, *,
                   config: TransformerConfig | None = None,
                   training: TrainingConfig | None = None) -> Replica:
    """:func:`train_replica`, trained once and then read back from ``cache_dir``.

    The file is a plain dict (``model`` state dict, ``config``, ``training``,
    ``report``, ``key``) that ``torch.load(..., weights_only=True)`` and
    :func:`load_transformer` both read; it is written to a temporary file and
    renamed into place, so concurrent runs never see half a file.
    """
    config = config or TransformerConfig()
    training = training or TrainingConfig()
    key = replica_key(labels, epochs, seed, config, training)
    path = replica_path(labels, cache_dir, seed, epochs, config=config, training=training)
    cached = _load_cached(path, key, config) if path.exists() else None
    if cached is not None:
        return cached
    model, report = train_replica(labels, epochs, seed, progress, config=config,
                                  training=training)
    _save_atomic({"model": model.state_dict(), "config": asdict(config),
                  "training": asdict(training), "epochs": epochs, "seed": seed,
                  "report": asdict(report), "key": key}, path)
    return model, report
