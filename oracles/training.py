"""Training a classifier on encoded inputs: replicas, test networks, ablations.

One generic loop (cross-entropy, AdamW/Adam/SGD, full batch or shuffled
minibatches) serves every architecture: the MLP tests and the transformer
replica (which wants ``betas=(0.9, 0.98)``) alike.  A run is deterministic
for its seed: dropout and shuffling draw from RNGs seeded here, inside a
forked RNG state so the caller's global torch RNG is left untouched.  The
initial weights are the caller's: seed before building the module.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

OPTIMIZERS = ("adamw", "adam", "sgd")

#: Called after each epoch with (epoch, mean training loss); returning True stops training.
Progress = Callable[[int, float], "bool | None"]


@dataclass(frozen=True)
class TrainingReport:
    """How a training run ended."""

    train_accuracy: float
    eval_accuracy: float | None
    epochs: int
    seconds: float
    final_loss: float


def train_classifier(module: nn.Module, x_tensor: torch.Tensor, y_tensor: torch.Tensor, *,
                     epochs: int, lr: float, weight_decay: float, seed: int,
                     batch_size: int | None = None, optimizer: str = "adamw",
                     betas: tuple[float, float] = (0.9, 0.999),
                     progress: Progress | None = None,
                     eval_set: tuple[torch.Tensor, torch.Tensor] | None = None) -> TrainingReport:
    """Train ``module`` in place to map rows of ``x_tensor`` to class ``y_tensor``.

    ``batch_size=None`` trains full batch; otherwise rows are reshuffled each
    epoch.  The module is left in eval mode.  Accuracies are measured after
    the last epoch, on the training set and on ``eval_set = (x, y)`` if given.
    """
    _check_arguments(x_tensor, y_tensor, epochs, lr, weight_decay, batch_size, optimizer,
                     betas, eval_set)
    device = _device_of(module)
    x, y = x_tensor.to(device), y_tensor.to(device).long()
    start = time.perf_counter()
    epochs_run, loss_value = 0, math.nan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shuffler = torch.Generator().manual_seed(seed)
        opt = _optimizer(optimizer, module.parameters(), lr, weight_decay, betas)
        module.train()
        try:
            for epoch in range(1, epochs + 1):
                order = (torch.arange(len(x)) if batch_size is None
                         else torch.randperm(len(x), generator=shuffler))
                step = len(x) if batch_size is None else batch_size
                total = 0.0
                for begin in range(0, len(x), step):
                    rows = order[begin:begin + step].to(device)
                    loss = _loss(module(x[rows]), y[rows])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(rows)
                loss_value = total / len(x)
                epochs_run = epoch
                if not math.isfinite(loss_value):
                    raise ValueError(f"training diverged: the loss became {loss_value} at "
                                     f"epoch {epoch}; lower the learning rate")
                if progress is not None and progress(epoch, loss_value):
                    break
        finally:
            module.eval()
    seconds = time.perf_counter() - start
    eval_accuracy = None if eval_set is None else accuracy(module, *eval_set)
    return TrainingReport(train_accuracy=accuracy(module, x, y), eval_accuracy=eval_accuracy,
                          epochs=epochs_run, seconds=seconds, final_loss=loss_value)


def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 8192) -> float:
    """Fraction of rows ``module`` (in eval mode) classifies as ``y``."""
    device = _device_of(module)
    was_training = module.training
    module.eval()
    correct = 0
    with torch.no_grad():
        for begin in range(0, len(x), batch_size):
            logits = module(x[begin:begin + batch_size].to(device))
            target = y[begin:begin + batch_size].to(device).long()
            correct += int((_predict(logits) == target).sum())
    module.train(was_training)
    return correct / max(len(x), 1)


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.ndim == 1 or logits.shape[1] == 1:  # one logit: binary, class 1 when > 0
        return F.binary_cross_entropy_with_logits(logits.reshape(-1), y.to(logits.dtype))
    if int(y.max()) >= logits.shape[1]:
        raise ValueError(f"labels go up to {int(y.max())} but the network has only "
                         f"{logits.shape[1]} outputs")
    return F.cross_entropy(logits, y)


def _predict(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)


def _optimizer(name: str, params, lr: float, weight_decay: float,
               betas: tuple[float, float]) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=betas[0])


def _device_of(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    if param is None:
        raise ValueError("the module has no parameters to train")
    return param.device


def _check_arguments(x, y, epochs, lr, weight_decay, batch_size, optimizer, betas,
                     eval_set) -> None:
    """Clear errors for bad arguments before any training starts."""
    for name, value in (("x_tensor", x), ("y_tensor", y)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if y.ndim != 1 or y.is_floating_point() or y.is_complex():
        raise ValueError(f"y_tensor must be a 1-d integer tensor of class labels, got shape "
                         f"{tuple(y.shape)} and dtype {y.dtype}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x_tensor and y_tensor need the same positive length, got "
                         f"{len(x)} and {len(y)}")
    if int(y.min()) < 0:
        raise ValueError(f"labels must be non-negative, got {int(y.min())}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not (lr > 0) or not (weight_decay >= 0):
        raise ValueError(f"need lr > 0 and weight_decay >= 0, got {lr} and {weight_decay}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None (full batch) or a positive int, "
                         f"got {batch_size!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
    if eval_set is not None and (len(eval_set) != 2 or len(eval_set[0]) != len(eval_set[1])):
        raise ValueError("eval_set must be a pair (x, y) of equal length")
