"""Where a trained network is wrong: its mistakes against its logit margin.

``python -m benchmarks.doubt [--epochs 200 --hidden 128,128]`` prints, for
every ``grid`` task whose cached MLP (trained as by ``synth bench --source
network`` with the same settings) disagrees with its hidden program
anywhere, the share of those pairs that lie among the tenth of the grid with
the smallest logit margin -- the measurement behind
:mod:`synth.confidence`.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np


def doubtful_share(task, settings, quantile: float = 0.1) -> tuple[int, float | None]:
    """(pairs where the network and the hidden program disagree, the share of them
    among the ``quantile`` of pairs with the smallest margin)."""
    from benchmarks.train_cli import cached_network
    from oracles.torch_oracle import TorchOracle
    from synth.confidence import logit_margin

    env = task.grid().all_inputs()
    truth = task.hidden().evaluate(env).astype(bool)
    path, _ = cached_network(task.program, task.domain, settings)
    oracle = TorchOracle.from_file(path, domain=task.grid())
    wrong = oracle.labels(env).astype(bool) != truth
    margin = logit_margin(oracle.logits(env))
    doubtful = margin <= np.quantile(margin, quantile)
    return int(wrong.sum()), float(doubtful[wrong].mean()) if wrong.any() else None


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.suites import GRID_SUITE
    from benchmarks.train_cli import TrainSettings, parse_widths

    parser = argparse.ArgumentParser(prog="python -m benchmarks.doubt", description=__doc__)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--hidden", default="128,128")
    args = parser.parse_args(argv)
    settings = TrainSettings(epochs=args.epochs, hidden=parse_widths(args.hidden))
    shares = []
    for task in GRID_SUITE:
        wrong, share = doubtful_share(task, settings)
        if share is not None:
            shares.append(share)
            print(f"{task.name:18s} {wrong:5d} pairs wrong, {share:.0%} of them doubtful")
    print(f"{sum(s >= 0.9 for s in shares)} of {len(shares)} networks with mistakes have at "
          f"least 90% of them in the least sure tenth (range {min(shares):.0%}-{max(shares):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
