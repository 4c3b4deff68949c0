"""``synth challenge transformer``: Casper's challenge 2, the one-layer transformer.

::

    synth challenge transformer [--train] [--time-limit S] [--json OUT]

Reads ``$SYNTH_DATA_DIR/casper/transformer_label_info.pkl`` with the
restricted unpickler (through :class:`~oracles.table.TableOracle`): the
ground-truth ``labels`` and the challenge network's predictions
``model_labels`` on all 113 x 113 pairs.  The challenge network's weights are
not published; with ``--train`` a replica trained the same way on ``labels``
stands in for it (:func:`oracles.transformer_training.cached_replica`: trained
once, then read from the cache).

Searches:

* on the **replica**, through a :class:`~oracles.torch_oracle.TorchOracle`
  queried on the whole grid, with leaves read from its internals
  (:mod:`oracles.transformer_features`: embedding directions, what the MLP
  reads from ``x`` and ``y``, the pre-activations of the neurons that move the
  logit difference most);
* on **model_labels**, through a :class:`~oracles.table.TableOracle` (with the
  replica's internal leaves too when there is a replica: they are functions of
  ``(x, y)`` like any other feature).

Each search also gets leaves from its own target's answers: the top factors
of the answer table over ``x`` and over ``y`` (:mod:`oracles.answer_factors`;
``replica_x_pc0`` ..., ``net_y_pc0`` ...) and each row's and column's step fit
(:mod:`oracles.answer_steps`; ``net_x_start``, ``net_x_cut0`` ...), read from
the cells the search fits only.  A disagreement of a step fit with an answer
costs the replica's confidence in its own answer there
(:func:`synth.confidence.oracle_weights`: less on the tenth of pairs with the
smallest logit margin), for both targets: ``model_labels`` carries no logits,
and the replica, trained on the same labels by the same recipe, stands in for
the challenge network's confidence as it stands in for its weights.

The time limit is split evenly between the searches (a search that stops
early leaves the rest of its share to the next).  Every program on the
two Pareto fronts is then scored on all 12,769 pairs against the challenge
network's labels, and the best by penalised agreement (agreement minus the
search's complexity penalty per unit of size) is the answer, near-ties broken
by counterfactual fidelity on ``model_labels`` (:func:`synth.ranking.choose_grid_program`);
the ground truth is only ever reported, never used to choose (each front
entry's agreement with it is printed and written, for the issue's question
of the best program within a size).  For the answer
the command prints and writes (JSON as ``synth search`` writes it, plus the
agreements, the ranking and the grid's ``data`` for ``synth report``) its
agreement with the replica, ``model_labels`` and ``labels``, where it
disagrees, the causal tests of moving pairs across its atoms' boundaries
(:func:`synth.causal.counterfactual_grid`, on ``model_labels`` and the
replica), and how each of its atoms is represented inside the replica
(:func:`synth.evidence_grid.atom_representation`).

Options the challenge parser does not (yet) define are read from ``args`` with
defaults (:data:`DEFAULTS`); :func:`add_arguments` adds them to a parser.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dsl.domains import GridDomain
from dsl.printing import to_expression
from dsl.program import Program
from synth.results import Candidate, SearchResult, write_json_atomic

LABEL_FILE = "casper/transformer_label_info.pkl"
P = 113

#: Options beyond the challenge parser's, with their defaults.
DEFAULTS = {
    "replica": None,        # a checkpoint to use as the replica instead of training one
    "epochs": None,         # replica training epochs (None: the training module's default)
    "replica_seed": 0,      # seed of the replica's initialisation
    "cache_dir": None,      # where replicas are cached (None: $SYNTH_CACHE_DIR or ~/.cache/synth)
    "oracle": "both",       # which searches to run: both, replica, table
    "internals": True,      # leaves from the replica's internals
    "n_embedding": 4,       # embedding principal directions
    "n_reads": 3,           # read directions per input
    "n_neurons": 6,         # neuron pre-activation tables
    "probe_rows": 2000,     # pairs sampled per probe
    "proposals": 8,         # internal-feature atoms listed as proposals
    "answer_factors": 4,    # factors of each target's answer table per input (0: none)
    "answer_steps": 2,      # changes per row of each target's answer step fits (0: none)
}

#: The name each search target's answer tables go by (``net_x_pc0``, ``net_x_cut0`` ...).
ANSWER_PREFIX = {"replica": "replica", "model_labels": "net"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :data:`DEFAULTS` as command-line flags."""
    parser.add_argument("--replica", help="checkpoint of a network to use as the replica")
    parser.add_argument("--epochs", type=int, help="replica training epochs")
    parser.add_argument("--replica-seed", type=int, default=0)
    parser.add_argument("--cache-dir", help="replica cache folder")
    parser.add_argument("--oracle", choices=("both", "replica", "table"), default="both",
                        help="search the replica, model_labels, or both (default)")
    parser.add_argument("--no-internals", dest="internals", action="store_false",
                        help="search without leaves read from the replica's internals")
    parser.add_argument("--n-neurons", type=int, default=DEFAULTS["n_neurons"])
    parser.add_argument("--probe-rows", type=int, default=DEFAULTS["probe_rows"])
    parser.add_argument("--answer-factors", type=int, default=DEFAULTS["answer_factors"],
                        help="leaves from the top K factors of each searched network's "
                             "answer table over x and over y (0: none)")
    parser.add_argument("--answer-steps", type=int, default=DEFAULTS["answer_steps"],
                        help="leaves from each row's and column's step fit of each searched "
                             "network's answers, at most K changes (0: none)")


def _option(args, name: str):
    value = getattr(args, name, None)
    return DEFAULTS[name] if value is None else value


def _log(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


# -- loading -------------------------------------------------------------------------------

def load_tables(domain: GridDomain):
    """The ground-truth and challenge-network label oracles from the data folder."""
    from oracles.data import data_file
    from oracles.table import TableOracle
    path = data_file(LABEL_FILE)
    return (TableOracle.from_file(path, domain, key="labels"),
            TableOracle.from_file(path, domain, key="model_labels"))


def load_replica(args, labels: np.ndarray):
    """The replica network and a description of it, or ``(None, None)``."""
    from oracles.transformer import load_transformer
    from oracles.transformer_training import DEFAULT_EPOCHS, cached_replica, replica_path
    if _option(args, "replica"):
        path = Path(_option(args, "replica"))
        model = load_transformer(path)
        return model, {"source": str(path), "config": dataclasses.asdict(model.cfg)}
    if not getattr(args, "train", False):
        return None, None
    epochs = _option(args, "epochs") or DEFAULT_EPOCHS
    seed = int(_option(args, "replica_seed"))
    cache = _option(args, "cache_dir")
    path = replica_path(labels, cache, seed, epochs)
    _log(args, f"replica: {'loading' if path.exists() else 'training'} {path} "
               f"({epochs} epochs, seed {seed})")

    def progress(stats) -> None:
        _log(args, f"  epoch {stats.epoch}: loss {stats.train_loss:.4g}, train "
                   f"{stats.train_accuracy:.4f}, held-out {stats.test_accuracy:.4f} "
                   f"({stats.seconds:.0f} s)")

    model, report = cached_replica(labels, cache, seed, epochs, progress)
    return model, {"source": str(path), "epochs": epochs, "seed": seed,
                   "config": dataclasses.asdict(model.cfg),
                   "training": dataclasses.asdict(report)}


# -- searching -----------------------------------------------------------------------------

def _synthesizer(template, **changes):
    """A copy of the configured synthesizer with ``changes`` (sklearn's clone, by hand)."""
    params = template.get_params()
    accepted = inspect.signature(type(template).__init__).parameters
    params = {k: v for k, v in params.items() if k in accepted}
    return type(template)(**{**params, **changes})


def json_safe(value):
    """``value`` with programs as their expressions and arrays as lists, so it dumps as JSON."""
    if isinstance(value, Program):
        return to_expression(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _short_python(source: str, limit: int = 160) -> str:
    """Printed Python with long table literals elided (the JSON keeps them whole)."""
    def elide(match: re.Match) -> str:
        text = match.group(0)
        if len(text) <= limit:
            return text
        count = len(re.findall(r"[-0-9.e+]+", text))
        return f"({count} table values ...)"
    return re.sub(r"\((?:[-0-9.e+, ()]+)\)", elide, source)


def _candidates(result: SearchResult) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for c in (result.best, *result.pareto):
        seen.setdefault(c.python, c)
    return list(seen.values())


# -- the command ---------------------------------------------------------------------------

def run(args) -> int:
    from oracles.transformer_features import (feature_leaves, read_internals,
                                              transformer_oracle, uses_lookup)
    from synth.causal import counterfactual_grid
    from synth.answer_leaves import answer_tables
    from synth.confidence import oracle_weights
    from synth.cli import format_front, synthesizer_from
    from synth.evidence_grid import agreements, disagreements, predictions
    from synth.ranking import choose_grid_program
    from synth.report import grid_data

    start = time.perf_counter()
    domain = GridDomain((P, P))
    env = domain.all_inputs()
    truth_oracle, table_oracle = load_tables(domain)
    labels = truth_oracle.labels(env)
    model_labels = table_oracle.labels(env)
    references = {"model_labels": model_labels, "labels": labels}

    model, replica_info = load_replica(args, labels.reshape(P, P))
    replica_oracle = None
    if model is not None:
        replica_oracle = transformer_oracle(model)
        replica_labels = replica_oracle.labels(env)  # the whole grid, one query each
        references = {"replica": replica_labels, **references}
        replica_info["agreement"] = agreements(replica_labels, {"model_labels": model_labels,
                                                                "labels": labels})
        agree = replica_info["agreement"]
        _log(args, f"replica agrees with model_labels on {agree['model_labels']:.4f} and "
                   f"labels on {agree['labels']:.4f} of the grid")

    internals, leaves = None, []
    if model is not None and _option(args, "internals"):
        internals = read_internals(model, n_embedding=int(_option(args, "n_embedding")),
                                   n_reads=int(_option(args, "n_reads")),
                                   n_neurons=int(_option(args, "n_neurons")),
                                   oracle=replica_oracle)
        leaves = feature_leaves(internals.tables())
        _log(args, f"internal features: {len(leaves)} leaves "
                   f"({', '.join(t.name for t in internals.tables())}); additive part of the "
                   f"top neurons' pre-activation explains {internals.additive_r2:.3f}")

    which = _option(args, "oracle")
    targets = []
    if which in ("both", "replica"):
        if replica_oracle is None:
            if which == "replica":
                raise ValueError("--oracle replica needs a replica: pass --train "
                                 "(or a checkpoint with --replica)")
        else:
            targets.append(("replica", replica_oracle))
    if which in ("both", "table"):
        targets.append(("model_labels", table_oracle))
    setup_seconds = time.perf_counter() - start

    # the replica's confidence in each answer, for every target's step fits: the
    # challenge network's labels carry no logits, and the replica stands in for them
    confidence = None if replica_oracle is None else oracle_weights(replica_oracle, env)
    template = synthesizer_from(args)
    searches: dict[str, dict] = {}
    pool: list[tuple[str, Candidate]] = []
    spent = 0.0
    for i, (name, oracle) in enumerate(targets):
        # an even split of what is left: a search that stops early leaves its time to the next
        share = max(template.time_limit - spent, 0.0) / (len(targets) - i)
        before = oracle.queries
        target = oracle.labels(env)
        queries = oracle.queries - before
        answers = answer_tables(target, domain, template,
                                factors=int(_option(args, "answer_factors")),
                                steps=int(_option(args, "answer_steps")),
                                prefix=ANSWER_PREFIX[name], weights=confidence)
        _log(args, f"\nsearching {name} ({queries:,} queries, {share:.0f} s, "
                   f"{len(leaves)} internal leaves, {len(answers)} answer tables)")
        synthesizer = _synthesizer(template, time_limit=share,
                                   features=(*leaves, *feature_leaves(answers)))
        result = synthesizer.fit(env, target).result_
        spent += result.stats.seconds
        best = result.best
        pred = predictions(best.program, env)
        front = [{"size": c.size, **agreements(predictions(c.program, env), references)}
                 for c in result.pareto]
        searches[name] = {"result": result, "queries": queries, "answers": answers,
                          "agreement": agreements(pred, references), "front": front,
                          "penalty": synthesizer.complexity_penalty}
        pool += [(name, c) for c in _candidates(result)]
        print(f"\n== search on {name} ==")
        print(format_front(result))
        print("the front against the ground-truth labels (size: agreement on all pairs): "
              + ", ".join(f"{e['size']}: {e['labels']:.4f}" for e in front))
        stats = result.stats
        print(f"{stats.programs_evaluated:,} programs in {stats.seconds:.1f} s; best "
              f"(size {best.size}) agrees with " + _agreement_text(searches[name]["agreement"]))

    # the answer: penalised agreement with the challenge network, over both fronts; near-ties
    # broken by counterfactual fidelity on the challenge network's labels
    penalty = max(s["penalty"] for s in searches.values())
    network_agreement = {c: agreements(predictions(c.program, env),
                                       {"model_labels": model_labels})["model_labels"]
                         for _, c in pool}
    origins = {c: origin for origin, c in reversed(pool)}  # the first search to find it
    evidence_start = time.perf_counter()
    ranking, counterfactual = choose_grid_program(
        [c for _, c in pool], table_oracle, domain, penalty,
        fidelity=network_agreement.__getitem__, network="model_labels",
        seed=int(getattr(args, "seed", 0)))
    chosen = ranking.chosen.candidate
    origin = origins[chosen]
    pred = predictions(chosen.program, env)
    agree = agreements(pred, references)

    causal = [counterfactual.to_json()]
    if replica_oracle is not None:
        causal.append(counterfactual_grid(replica_oracle, chosen.program, domain,
                                          network="replica").to_json())
    evidence = {"origin": origin, "agreement": agree, "evidence_score": ranking.chosen.evidence,
                "causal": causal,
                "disagreement": {k: disagreements(pred.reshape(P, P), v.reshape(P, P))
                                 for k, v in references.items()},
                "lookup_tables": uses_lookup(chosen.program),
                "answer_tables": [{"name": t.name, "share": t.share,
                                   "description": t.description}
                                  for t in searches[origin]["answers"]]}
    if internals is not None:
        evidence["internals"] = internals.summary()
        evidence["proposed_atoms"] = propose_atoms(internals, leaves, env,
                                                   references.get("replica", model_labels),
                                                   int(_option(args, "proposals")))
    if model is not None:
        evidence["atoms"] = represent_atoms(chosen.program, env, replica_oracle, internals,
                                            leaves, int(_option(args, "probe_rows")),
                                            int(getattr(args, "seed", 0)))
    evidence_seconds = time.perf_counter() - evidence_start
    chosen = dataclasses.replace(chosen, evidence=json_safe(evidence))

    seconds = time.perf_counter() - start
    print_answer(chosen, agree, evidence, seconds)
    json_path = getattr(args, "json", None)
    if json_path:
        main = searches[origin]["result"]
        data = main.to_json()
        data["settings"] = json_safe(main.settings)
        data["best"] = chosen.to_json()
        data["agreement"] = agree
        data["ranking"] = ranking.to_json()
        data["data"] = grid_data(domain, model_labels)
        data["challenge"] = {
            "oracle": origin,
            "replica": json_safe(replica_info),
            "searches": {k: {**json_safe(v["result"].to_json()), "queries": v["queries"],
                             "agreement": v["agreement"], "front_agreement": v["front"]}
                         for k, v in searches.items()},
            "seconds": {"total": seconds, "setup": setup_seconds,
                        "search": sum(v["result"].stats.seconds for v in searches.values()),
                        "evidence": evidence_seconds},
        }
        write_json_atomic(json_path, json_safe(data))
        print(f"wrote {json_path}")
    return 0


def _agreement_text(agree: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in agree.items())


def print_answer(chosen: Candidate, agree: Mapping[str, float], evidence: Mapping,
                 seconds: float) -> None:
    print(f"\n== answer (from the {evidence['origin']} search; {seconds:.0f} s in all) ==")
    print(f"size {chosen.size}; agreement on all {P * P:,} pairs: {_agreement_text(agree)}")
    answers = {f["name"] for f in evidence.get("answer_tables", ())}
    tables = evidence.get("lookup_tables", ())
    internal = [t for t in tables if t not in answers]
    if internal:
        print(f"uses lookup tables read from the replica's internals: {', '.join(internal)}")
    if answers & set(tables):
        print(f"uses tables of the {evidence['origin']} answers (oracles.answer_factors, "
              f"oracles.answer_steps): {', '.join(t for t in tables if t in answers)}")
    print()
    print(_short_python(chosen.python))
    for name, d in evidence["disagreement"].items():
        near = d.get("near_boundary", {})
        print(f"differs from {name} on {d['count']} pairs"
              + (f" ({near['1']:.0%} within one step of its boundary)" if near else ""))
    if evidence.get("causal"):
        from synth.causal import format_causal
        print(format_causal(evidence["causal"]))
    for expr, entry in evidence.get("atoms", {}).items():
        probes = entry["probes"]
        best = entry.get("best_point")
        if best is None:
            continue
        acc, ctrl = probes[best]["accuracy"], probes[best]["control"]
        neurons = entry["correlates"].get("neurons", [])
        tables = entry["correlates"].get("tables", [])
        print(f"atom {expr}: true on {entry['positive_rate']:.1%}; decoded best from {best} "
              f"({acc:.3f}, control {ctrl if ctrl is None else round(ctrl, 3)}, majority "
              f"{entry['majority']:.3f})"
              + (f"; top neuron {neurons[0][0]} (r={neurons[0][1]:+.2f})" if neurons else "")
              + (f"; top table {tables[0][0]} (r={tables[0][1]:+.2f})" if tables else ""))


# -- evidence from internals ----------------------------------------------------------------

def propose_atoms(internals, leaves, env, target: np.ndarray, top: int) -> list[dict]:
    """The best one-cut predicate on each internal leaf, for the target labels, best first.

    These are the atoms the internals propose on their own: a neuron's gate
    (``neuron_i(x, y) > t``), a band of an embedding direction over the
    numbers.  Each is printed as the program the search would build.
    """
    from synth.atoms import atom_program
    from synth.thresholds import ThresholdIndex
    if not leaves:
        return []
    values = np.stack([np.asarray(leaf.evaluate(env), dtype=np.float64) for leaf in leaves])
    index = ThresholdIndex(values)
    z = np.asarray(target).astype(bool)
    w = np.ones(len(z))
    out = []
    for split in index.best(z, w, top=len(leaves)):
        program = atom_program(leaves[split.feature], split, index.distinct[split.feature])
        with np.errstate(all="ignore"):
            accuracy = float((np.asarray(program.evaluate(env)).astype(bool) == z).mean())
        out.append({"atom": to_expression(program), "accuracy": accuracy,
                    "leaf": to_expression(leaves[split.feature])})
    out.sort(key=lambda d: -d["accuracy"])
    return out[:top]


def represent_atoms(program: Program, env, oracle, internals, leaves, probe_rows: int,
                    seed: int) -> dict:
    """How each atom of ``program`` is represented inside the network behind ``oracle``."""
    from oracles.transformer_features import probe_activations
    from synth.evidence_grid import atom_representation, atom_truths
    truths = atom_truths(program, env)
    if not truths:
        return {}
    points = probe_activations(oracle, env)
    units = {"neurons": (points["mlp_pre"],
                         [f"neuron{i}" for i in range(points["mlp_pre"].shape[1])])}
    if leaves:
        values = np.stack([np.asarray(leaf.evaluate(env), dtype=np.float64) for leaf in leaves],
                          axis=1)
        units["tables"] = (values, [to_expression(leaf) for leaf in leaves])
    return atom_representation(truths, points, (P, P), units=units, max_rows=probe_rows,
                               seed=seed)
