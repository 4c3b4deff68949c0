"""The image demo: train a CNN on a hidden image program, recover it blind.

Everything is built in (no download): sklearn's 1,797 digits (8x8), a hidden
labelling program written in the DSL -- a threshold on the cosine similarity
with the mean image of the zeros, or ink in the top row band -- and a small
CNN trained on half of the images in a few seconds on a CPU.  The search
then sees only the network: its labels on the images, its input gradients and
its first-layer responses (for templates), never the hidden program.  The
recovered program is printed beside the hidden one with their agreement.

The CNN is registered as the architecture ``digits-cnn``, so a saved one can
be searched with ``synth search --domain digits --model FILE --arch digits-cnn``.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from dsl.images import class_mean_templates
from dsl.printing import to_expression
from dsl.program import Program, Var, apply, const
from dsl.types import IMAGE
from oracles.architectures import Architecture, register_architecture
from oracles.base import OracleError, batch_length

IMAGE_VAR = Var("image", IMAGE)


# ---------------------------------------------------------------------------
# The network.

class DigitsCNN(nn.Module):
    """(N,1,8,8) -> conv1/relu1/pool1 -> conv2/relu2 -> flatten -> fc1/relu3 -> fc2.

    Every step is its own module, so a forward hook can read it."""

    def __init__(self, channels: int = 8, hidden: int = 64, n_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(2 * channels * 16, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


def encode_digits(env: Mapping[str, np.ndarray]) -> torch.Tensor:
    """``image`` (N, 8, 8) in [0, 1] -> a float32 (N, 1, 8, 8) tensor."""
    batch_length(env, ("image",))
    image = np.asarray(env["image"])
    if image.ndim != 3 or image.shape[1:] != (8, 8):
        raise OracleError(f"input 'image' must have shape (N, 8, 8), got {image.shape}")
    image = image.astype(np.float32)
    if not np.isfinite(image).all() or (image.size and (image.min() < 0 or image.max() > 1)):
        raise OracleError("input 'image' must hold finite pixel values in [0, 1]")
    return torch.from_numpy(image).unsqueeze(1)


def _infer(state: Mapping[str, torch.Tensor], domain) -> dict:
    if "conv1.weight" not in state or "fc1.weight" not in state or "fc2.weight" not in state:
        raise OracleError(f"not a digits-cnn state dict: keys {sorted(state)[:8]}")
    return {"channels": int(state["conv1.weight"].shape[0]),
            "hidden": int(state["fc1.weight"].shape[0]),
            "n_classes": int(state["fc2.weight"].shape[0])}


register_architecture(Architecture(
    name="digits-cnn",
    description="8x8 digit images: conv(3x3, pad 1)/relu/maxpool, conv/relu, fc 256-64-2",
    build=DigitsCNN,
    encoder=lambda config: encode_digits,
    input_names=lambda config: ("image",),
    infer_config=_infer,
))


# ---------------------------------------------------------------------------
# The hidden program.

def load_digits() -> tuple[np.ndarray, np.ndarray]:
    from oracles.data import load_digits_images
    return load_digits_images()


def hidden_program(images: np.ndarray, classes: np.ndarray) -> Program:
    """``cosine(image, T_mean_0) > 0.8 or ink_in_row_band(image, 0) < 3.5``:
    round zero-like digits, or digits with little ink in their top two rows.
    ``T_mean_0`` is the mean image of the zeros (a data template)."""
    mean_0 = class_mean_templates(images, classes)[0]
    return apply("or_", apply("gt", apply("cosine", IMAGE_VAR, mean_0), const(0.8)),
                 apply("lt", apply("ink_in_row_band", IMAGE_VAR, const(0)), const(3.5)))


def train_network(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int = 300):
    """A DigitsCNN trained full batch (Adam) on a random half of the images."""
    from oracles.architectures import new_model
    from oracles.training import train_classifier

    torch.manual_seed(seed)
    module, spec = new_model("digits-cnn")
    x = encode_digits({"image": images})
    y = torch.as_tensor(labels, dtype=torch.long)
    rng = np.random.default_rng(seed)
    train = np.sort(rng.permutation(len(images))[: len(images) // 2])
    report = train_classifier(module, x[train], y[train], epochs=epochs, lr=3e-3,
                              weight_decay=1e-4, seed=seed, optimizer="adam")
    return module, spec, report


def run(args, out=None) -> int:
    """``synth demo --domain digits``."""
    from oracles.torch_oracle import TorchOracle
    from synth.cli import report
    from synth.image_search import format_report, recover_image_program, stderr_log

    out = out or sys.stdout
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, 2)))
    try:
        images, classes = load_digits()
        hidden = hidden_program(images, classes)
        truth = np.asarray(hidden.evaluate({"image": images})).astype(np.int64)
        print(f"Hidden program over sklearn's 8x8 digits ({len(images)} images, "
              f"{truth.mean():.0%} labelled 1): {to_expression(hidden)}", file=out)
        start = time.perf_counter()
        module, spec, _ = train_network(images, truth, args.seed)
        oracle = TorchOracle(module, spec.encoder(), spec.input_names)
        labels = oracle.labels({"image": images})
        print(f"Trained a CNN in {time.perf_counter() - start:.1f} s; it agrees with the "
              f"hidden program on {np.mean(labels == truth):.2%} of the images.\n", file=out)
        log = (lambda _: None) if args.quiet else stderr_log
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            rep = recover_image_program(
                images, labels, oracle=oracle, classes=classes, time_limit=args.time_limit,
                seed=args.seed, max_feature_size=min(args.max_feature_size, 3),
                max_atoms=min(args.max_atoms, 2), beam_width=args.beam_width, refine=0,
                template_rows=len(images), clock=args.clock, log=log)
        report(rep.result, None, out)
        print("\n" + format_report(rep), file=out)
        recovered = np.asarray(rep.best.program.evaluate({"image": images})).astype(np.int64)
        agreement = float(np.mean(recovered == truth))
        print(f"\nHidden:    {to_expression(hidden)}", file=out)
        print(f"Recovered: {rep.best.program}", file=out)
        print(f"Agreement of recovered with hidden program: {agreement:.2%}; with the "
              f"network: {np.mean(recovered == labels):.2%}", file=out)
        if args.json:
            from synth.results import write_json_atomic
            data = rep.to_json()
            data["demo"] = {"hidden": to_expression(hidden), "agreement_with_hidden": agreement,
                            "network_agreement_with_hidden": float(np.mean(labels == truth))}
            write_json_atomic(args.json, data)
            print(f"wrote {args.json}", file=out)
    finally:
        torch.set_num_threads(threads)
    return 0


__all__ = ["DigitsCNN", "encode_digits", "hidden_program", "train_network", "run"]
