"""The ``casper`` suite: Casper's two EIS VII challenges as benchmark tasks.

* ``transformer`` (challenge 2): the oracle is the challenge network's own
  answers on all 12,769 pairs (``model_labels`` of
  ``$SYNTH_DATA_DIR/casper/transformer_label_info.pkl``; with ``--source
  labels``, the published ground truth ``labels`` themselves).  The result is
  scored against the ground truth: ``exact`` when equal on every pair.  Peers:
  the grid peers on the same labels.
* ``mnist`` (challenge 1): the oracle is the challenge CNN on the 10,000 MNIST
  test images, searched like an ``images`` task.  Its program is secret, so
  agreement and ``exact`` stay empty: the engine and its peers are compared on
  fidelity to the network at their sizes.  The CNN trained on MNIST's training
  images, so every test image is one it did not train on.

This is search from the networks' answers alone, under the suite's budget;
``synth challenge`` adds what reads the networks' insides (features from a
replica's internals, evidence, ranking by causal tests).
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.images_suite import ImageBenchSettings, ImageRun
from benchmarks.runner import GridRun


class CasperTransformerRun(GridRun):
    """Challenge 2 over the grid: the challenge network's answers, the published truth."""

    def __init__(self, task, config) -> None:
        from benchmarks.casper_transformer import LABEL_FILE, P, load_tables
        from dsl.domains import GridDomain

        self.config = config
        domain = GridDomain((P, P))
        self.env = domain.all_inputs()
        truth, network = load_tables(domain)
        self.truth = truth.labels(self.env)
        self.weights = None  # label tables: no confidence to weigh by
        if config.source == "labels":
            self.labels, self.network = self.truth, None
            return
        self.labels = network.labels(self.env)
        self.network = {"source": f"{LABEL_FILE} ['model_labels']",
                        "oracle_agreement": float(np.mean(self.labels == self.truth))}


class CasperMnistRun(ImageRun):
    """Challenge 1: the challenge CNN's labels of the MNIST test images; no truth."""

    def __init__(self, task, config) -> None:
        from benchmarks.casper_mnist import MODEL, load_challenge

        if config.source == "labels":
            raise ValueError("challenge 1's program is secret: its labels exist only as the "
                             "network's answers; run it with --source network")
        self.config = config
        self.settings = config.images or ImageBenchSettings()
        start = time.perf_counter()
        self.images, self.classes, self.oracle, self.labels = load_challenge(
            self.settings.max_images, config.seed)
        self.truth, self.report = None, None
        self.unseen = np.arange(len(self.images))
        self.network = {"source": MODEL, "oracle_agreement": None,
                        "load_seconds": time.perf_counter() - start}


RUNS = {"casper-transformer": CasperTransformerRun, "casper-mnist": CasperMnistRun}
