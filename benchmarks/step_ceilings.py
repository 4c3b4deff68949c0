"""How far challenge 2's answer steps can go, and where an answer misses.

``python -m benchmarks.step_ceilings [t.json]``: for ``model_labels`` and the
cached replica (seed 0), the agreement with the ground-truth ``labels`` of each
row's step fit alone (:func:`oracles.answer_steps.step_fit`, at most 2 changes,
on the fit cells of ``synth challenge transformer``'s default split), without
and with the replica's confidence as the cost of a disagreement, and how many
rows change 0, 1 and 2 times; then the same counts for ``labels``.  With the
JSON of a ``synth challenge transformer`` run, also where its answer misses:
the ``y = 0`` cells and the rows with the most misses.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from benchmarks.casper_transformer import P, load_tables
from dsl.domains import GridDomain
from dsl.printing import compile_python
from oracles.answer_factors import known_mask
from oracles.answer_steps import step_fit, step_values
from oracles.transformer_features import transformer_oracle
from oracles.transformer_training import DEFAULT_EPOCHS, cached_replica
from synth.confidence import oracle_weights
from synth.search import Synthesizer, holdout_split

CHANGES = 2


def changes_per_row(cuts: np.ndarray) -> list[int]:
    """How many rows change 0, 1, ... times."""
    return np.bincount((cuts < P - 0.5).sum(axis=1), minlength=CHANGES + 1).tolist()


def main(argv: list[str]) -> int:
    domain = GridDomain((P, P))
    env = domain.all_inputs()
    truth, table = load_tables(domain)
    labels = truth.labels(env).reshape(P, P)
    replica = transformer_oracle(cached_replica(labels, None, 0, DEFAULT_EPOCHS)[0])
    confidence = oracle_weights(replica, env).reshape(P, P)
    template = Synthesizer()
    held, _ = holdout_split(P * P, template.holdout, np.random.default_rng(template.seed))
    known = known_mask(P * P, held).reshape(P, P)
    for name, answers in (("model_labels", table.labels(env)), ("replica", replica.labels(env))):
        for weighting, weights in (("unweighted", None), ("replica-weighted", confidence)):
            start, cuts = step_fit(answers.reshape(P, P), known, CHANGES, weights)
            agree = (step_values(start, cuts, P) == labels).mean()
            print(f"{name} {weighting}: labels {agree:.4f}; rows with 0/1/2 changes "
                  f"{changes_per_row(cuts)}")
    _, cuts = step_fit(labels, np.ones((P, P), dtype=bool), CHANGES)
    print(f"labels: rows with 0/1/2 changes {changes_per_row(cuts)}")
    for path in argv:
        label = compile_python(json.loads(open(path).read())["best"]["python"])
        pred = np.array([label(int(a), int(b)) for a, b in zip(env["x"], env["y"])])
        miss = pred.reshape(P, P) != labels
        rows = np.argsort(-miss.sum(axis=1), kind="stable")[:5]
        print(f"{path}: {miss.sum()} misses; at y = 0: {miss[:, 0].sum()} (rows "
              f"{np.flatnonzero(miss[:, 0]).tolist()}); most by row: "
              + ", ".join(f"{r}: {miss[r].sum()}" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
