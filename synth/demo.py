"""The embedded default: train a network on a hidden program, recover it blind.

Everything is built in: a 64x64 grid, a hidden labelling program, a small
MLP trained on half of the grid in seconds on a CPU.  The search then sees
only the network's answers on the grid -- never the hidden program -- and
the recovered program is printed beside the hidden one.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from dsl.domains import GridDomain
from dsl.printing import to_expression
from dsl.program import Program, Var, apply, const

DOMAIN = GridDomain((64, 64))


def hidden_program() -> Program:
    """``abs(x - y) < 9 or x * y > 1800``: the program the demo network learns."""
    x, y = Var("x"), Var("y")
    return apply("or_", apply("lt", apply("abs", apply("sub", x, y)), const(9)),
                 apply("gt", apply("mul", x, y), const(1800)))


def train_network(labels: np.ndarray, seed: int, epochs: int = 800):
    """An MLP on one-hot (x, y), trained full batch on a random half of the grid."""
    import torch

    from oracles.architectures import new_model
    from oracles.training import train_classifier

    torch.set_num_threads(1)  # small matrices: a second thread mostly waits, and slows a busy machine
    torch.manual_seed(seed)
    module, spec = new_model("mlp", {"hidden": [128, 128]}, domain=DOMAIN)
    inputs = DOMAIN.all_inputs()
    encoded = spec.encoder()(inputs)
    rng = np.random.default_rng([seed, 1])  # a stream of its own, unlike the search's split
    train = rng.permutation(DOMAIN.size)[: DOMAIN.size // 2]
    y = torch.as_tensor(labels, dtype=torch.long)
    train_classifier(module, encoded[train], y[train], epochs=epochs, lr=3e-3,
                     weight_decay=1e-4, seed=seed, optimizer="adam")
    return module, spec


def run(args) -> int:
    from oracles.torch_oracle import TorchOracle
    from synth.cli import report, synthesizer_from

    out = sys.stdout
    hidden = hidden_program()
    inputs = DOMAIN.all_inputs()
    truth = hidden.evaluate(inputs).astype(np.int64)
    print(f"Hidden program over {DOMAIN}: {to_expression(hidden)}", file=out)
    start = time.perf_counter()
    module, spec = train_network(truth, args.seed)
    oracle = TorchOracle(module, spec.encoder(), spec.input_names)
    labels = oracle.labels(inputs)
    print(f"Trained an MLP in {time.perf_counter() - start:.1f} s; it agrees with the hidden "
          f"program on {np.mean(labels == truth):.2%} of the grid.\n", file=out)
    synthesizer = synthesizer_from(args).fit(inputs, labels)
    report(synthesizer.result_, args.json, out)
    recovered = synthesizer.predict(inputs)
    print(f"\nHidden:    {to_expression(hidden)}", file=out)
    print(f"Recovered: {synthesizer.best_.program}", file=out)
    print(f"Agreement of recovered with hidden program: {np.mean(recovered == truth):.2%}; "
          f"with the network: {np.mean(recovered == labels):.2%}", file=out)
    return 0
