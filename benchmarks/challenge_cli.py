"""``synth challenge mnist|transformer``: the two Casper (EIS VII) challenges."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from benchmarks.casper_mnist import add_options as add_mnist_options
    from synth.cli import add_search_options

    parser = sub.add_parser("challenge", help="recover a Casper EIS VII challenge program "
                                              "from the files under $SYNTH_DATA_DIR/casper")
    which = parser.add_subparsers(title="challenges", dest="challenge", required=True)
    mnist = which.add_parser("mnist", help="challenge 1: the MNIST CNN")
    add_mnist_options(mnist)  # the options of python -m benchmarks.casper_mnist
    mnist.set_defaults(run=_run_mnist)
    transformer = which.add_parser("transformer", help="challenge 2: the 1-layer transformer")
    transformer.add_argument("--train", action="store_true",
                             help="train (or load from cache) the replica network")
    add_search_options(transformer, time_limit=600.0)
    transformer.set_defaults(run=_run_transformer)


def _run_mnist(args) -> int:
    from benchmarks.casper_mnist import run
    return run(args)


def _run_transformer(args) -> int:
    from benchmarks.casper_transformer import run
    return run(args)
