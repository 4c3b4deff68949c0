"""Casper's challenge 1 (EIS VII): the program behind the MNIST CNN's labels.

``synth challenge mnist [--hint FILE]`` loads the challenge CNN
(``$SYNTH_DATA_DIR/casper/mnist_model.pt``) and the 10,000 MNIST test
images, labels every image with the network, and runs the image pipeline of
:mod:`synth.image_search`: templates from the data (class means, principal
components), the network (aligned input gradients, Jacobian directions,
applied first-layer filters, the exemplars the gradient looks like) and the
user (``--hint``), then the engine's search for a program of at most
``--max-size`` (15) nodes.  It prints the program, its fidelity to the
network on all test images, its size, where its templates came from, and the
linear decodability of its features from every layer of the network on
images no template was fitted on, and the causal tests of the search's
held-out images (edits along its templates, patches of its features inside
the network: :mod:`synth.causal`); near-ties on the front are broken by that
evidence (:func:`synth.ranking.choose_image_program`).  ``--json`` adds the
ranking and the images' ``data`` that ``synth report`` draws.

``python -m benchmarks.casper_mnist peers`` runs the engine beside its peers
on the same queries, split and budget: a decision tree on the raw pixels
(depth 3, i.e. at most 15 nodes like the engine's programs, and a
cross-validated depth) and gplearn's ``SymbolicClassifier`` on the very
scalar features the engine searched over.

Nothing here knows the secret program: the same code runs on any binary
labelling of MNIST.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

from benchmarks.peer_sizes import gplearn_size, tree_front, tree_size

MODEL = "casper/mnist_model.pt"
ARCH = "casper-cnn"


def load_challenge(max_images: int | None = None, seed: int = 0):
    """(images float32 (N, 28, 28), digit classes, oracle, the oracle's labels).

    ``max_images`` takes a seeded random subset of the 10,000 test images."""
    import torch

    from oracles.data import data_file
    from oracles.torch_oracle import TorchOracle
    from synth.image_search import load_domain_images

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    images, classes = load_domain_images("mnist", max_images, seed)
    oracle = TorchOracle.from_file(data_file(MODEL), ARCH)
    labels = oracle.labels({"image": images})
    return images, classes, oracle, labels


def _hints(args) -> list:
    from synth.image_search import load_user_templates
    return load_user_templates([args.hint] if args.hint else [], (28, 28))


def _progress(args) -> dict:
    """``log=`` for the image search: progress on stderr, none with --quiet."""
    from synth.image_search import stderr_log
    return {} if args.quiet else {"log": stderr_log}


def run(args, out=None) -> int:
    """``synth challenge mnist``."""
    from synth.causal import format_causal
    from synth.cli import report
    from synth.image_search import (format_report, recover_image_program, search_settings,
                                    search_split)
    from synth.ranking import choose_image_program
    from synth.report import image_data
    from synth.results import write_json_atomic

    out = out or sys.stdout
    start = time.perf_counter()
    args = checked_options(args)
    hints = _hints(args)  # a bad hint fails before any work
    images, classes, oracle, labels = load_challenge(args.max_images, args.seed)
    print(f"Casper challenge 1: the MNIST CNN on {len(images):,} test images "
          f"({labels.mean():.1%} labelled 1); hint: {args.hint or 'none'}", file=out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        rep = recover_image_program(images, labels, oracle=oracle, classes=classes,
                                    user_templates=hints, **_progress(args),
                                    **search_settings(args))
        rep, ranking = choose_image_program(rep, images, labels, oracle, network="the CNN",
                                            seed=args.seed)
    report(rep.result, None, out)
    print("\n" + format_report(rep), file=out)
    print("\nCausal tests on the search's held-out images:\n"
          + format_causal(rep.evidence["causal"]), file=out)
    total = time.perf_counter() - start
    print(f"Total: {total:.1f} s", file=out)
    if args.json:
        data = rep.to_json()
        data["ranking"] = ranking.to_json()
        held = search_split(len(images), args.seed)[1]
        data["data"] = image_data(rep.best.program, images[held], labels[held])
        data["challenge"] = {"name": "casper-mnist", "images": int(len(images)),
                             "hint": args.hint, "seconds": total}
        write_json_atomic(args.json, data)
        print(f"wrote {args.json}", file=out)
    return 0


# ---------------------------------------------------------------------------
# Peers.

def tree_peer(x: np.ndarray, labels: np.ndarray, fit_rows: np.ndarray, *, depth: int | None,
              time_limit: float, seed: int, what: str = "pixels",
              feature_sizes: Sequence[int] | None = None) -> dict:
    """A decision tree on the columns of ``x`` (``what`` they are, each of
    ``feature_sizes`` nodes, 1 by default): ``depth`` fixed, or the smallest depth
    within 0.1% of the best 3-fold cross-validated accuracy (up to 12, while the
    budget lasts).  Its size is in the engine's units and its front is the
    pruning path's (:mod:`benchmarks.peer_sizes`)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    start = time.perf_counter()
    if depth is None:
        deadline = start + time_limit
        scores = {}
        for d in range(1, 13):
            clf = DecisionTreeClassifier(max_depth=d, random_state=seed)
            scores[d] = float(np.mean(cross_val_score(clf, x[fit_rows], labels[fit_rows], cv=3)))
            if time.perf_counter() > deadline:
                break
        best = max(scores.values())
        depth = min(d for d, s in scores.items() if s >= best - 1e-3)
    clf = DecisionTreeClassifier(max_depth=depth, random_state=seed)
    clf.fit(x[fit_rows], labels[fit_rows])
    seconds = time.perf_counter() - start
    sizes = [1] * x.shape[1] if feature_sizes is None else list(feature_sizes)
    hold_rows = np.setdiff1d(np.arange(len(labels)), fit_rows)
    return {"predictions": clf.predict(x), "size": tree_size(clf, sizes),
            "nodes": int(clf.tree_.node_count),
            "program": f"decision tree on {what}, depth {clf.get_depth()}, "
                       f"{clf.get_n_leaves()} leaves",
            "front": tree_front({"random_state": seed, "max_depth": depth}, x, labels,
                                fit_rows, hold_rows, sizes),
            "seconds": seconds}


def gplearn_peer(x: np.ndarray, names: list[str], labels: np.ndarray, fit_rows: np.ndarray,
                  *, time_limit: float, seed: int, population: int = 500,
                  feature_sizes: Sequence[int] | None = None) -> dict:
    """gplearn's SymbolicClassifier on feature columns (each of ``feature_sizes``
    nodes, 1 by default), grown one generation at a time until the budget is
    spent."""
    from gplearn.genetic import SymbolicClassifier

    from benchmarks.peers import grow_gplearn

    start = time.perf_counter()
    est = SymbolicClassifier(population_size=population, generations=1, random_state=seed,
                             function_set=("add", "sub", "mul", "div", "sqrt", "abs", "max",
                                           "min", "neg"),
                             parsimony_coefficient=0.001, feature_names=names,
                             warm_start=True, n_jobs=1)
    generation = grow_gplearn(est, x[fit_rows], labels[fit_rows], time_limit,
                              max_generations=1000)
    sizes = [1] * x.shape[1] if feature_sizes is None else list(feature_sizes)
    return {"predictions": est.predict(x), "size": gplearn_size(est._program.program, sizes),
            "program": str(est._program), "generations": generation,
            "seconds": time.perf_counter() - start}


def _score(name: str, fit: dict, labels: np.ndarray, hold_rows: np.ndarray) -> dict:
    pred = np.asarray(fit.pop("predictions")).astype(np.int64)
    return {"method": name, **fit, "fidelity": float(np.mean(pred == labels)),
            "holdout_fidelity": float(np.mean(pred[hold_rows] == labels[hold_rows]))}


def run_peers(args, out=None) -> int:
    """The engine and its peers, side by side (see the module doc)."""
    from synth.image_search import (build_template_bank, recover_image_program,
                                    search_features, search_settings, search_split, stderr_log)
    from synth.results import write_json_atomic

    out = out or sys.stdout
    args = checked_options(args)
    hints = _hints(args)
    images, classes, oracle, labels = load_challenge(args.max_images, args.seed)
    n = len(images)
    fit_rows, hold_rows = search_split(n, args.seed)
    log = (lambda _: None) if args.quiet else stderr_log
    settings = search_settings(args)
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = recover_image_program(images, labels, oracle=oracle, classes=classes,
                                    user_templates=hints, evidence=False, **_progress(args),
                                    **settings)
        pred = np.asarray(rep.best.program.evaluate({"image": images})).astype(np.int64)
        records.append({"method": "synth", "program": str(rep.best.program),
                        "size": rep.best.size, "seconds": rep.seconds,
                        "fidelity": float(np.mean(pred == labels)),
                        "holdout_fidelity": float(np.mean(pred[hold_rows] == labels[hold_rows])),
                        "template_sources": rep.sources()})
        pixels = images.reshape(n, -1).astype(np.float64)
        for name, depth in (("tree-pixels-depth3", 3), ("tree-pixels-cv", None)):
            log(f"peer {name}")
            fit = tree_peer(pixels, labels, fit_rows, depth=depth,
                            time_limit=args.time_limit, seed=args.seed)
            records.append(_score(name, fit, labels, hold_rows))
        # gplearn reads the engine's own leaves: the same templates, rebuilt the same way
        start = time.perf_counter()
        bank = build_template_bank(images, labels, oracle=oracle, classes=classes,
                                   user_templates=hints, refine=settings["refine"],
                                   seed=args.seed)
        features = search_features(bank.chosen(40))
        columns = np.stack([np.asarray(f.evaluate({"image": images}), dtype=np.float64)
                            for f in features], axis=1)
        columns = np.where(np.isfinite(columns), columns, 0.0)
        prep = time.perf_counter() - start
        log(f"peer gplearn on {len(features)} features")
        try:
            fit = gplearn_peer(columns, [f"f{i}" for i in range(len(features))], labels,
                               fit_rows, time_limit=max(10.0, args.time_limit - prep),
                               seed=args.seed, feature_sizes=[f.size for f in features])
            fit["seconds"] += prep
            fit["features"] = {f"f{i}": str(f) for i, f in enumerate(features)}
            records.append(_score("gplearn-features", fit, labels, hold_rows))
        except ImportError as err:
            records.append({"method": "gplearn-features",
                            "error": f"gplearn is not installed ({err}); pip install -e .[peers]"})
    print(format_peers(records), file=out)
    if args.json:
        write_json_atomic(args.json, {"task": "casper-mnist", "images": n,
                                      "labels_positive": float(labels.mean()),
                                      "time_limit": args.time_limit, "seed": args.seed,
                                      "split": {"fit": int(len(fit_rows)),
                                                "holdout": int(len(hold_rows))},
                                      "results": records})
        print(f"wrote {args.json}", file=out)
    return 0


def format_peers(records: Sequence[dict]) -> str:
    rows = [("method", "fidelity", "held-out", "size", "seconds")]
    for r in records:
        if r.get("error"):
            rows.append((r["method"], "-", "-", "-", r["error"]))
            continue
        rows.append((r["method"], f"{r['fidelity']:.4f}", f"{r['holdout_fidelity']:.4f}",
                     str(r["size"]), f"{r['seconds']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``synth challenge mnist`` and ``python -m benchmarks.casper_mnist``
    (one definition for both)."""
    from synth.cli import add_search_options

    parser.add_argument("--hint", help="a user template (PNG of any size, or .npy)")
    parser.add_argument("--max-images", type=int, help="a seeded random subset of the "
                                                       "10,000 test images")
    parser.add_argument("--max-size", type=int, default=15, help="largest program (nodes)")
    refine = parser.add_mutually_exclusive_group()
    refine.add_argument("--refine", type=int, metavar="N",
                        help="refine the N best-screened templates on the network's labels "
                             "(default 2; 0 with --hint)")
    refine.add_argument("--no-refine", dest="refine", action="store_const", const=0,
                        help="use templates as they come (same as --refine 0)")
    add_search_options(parser, time_limit=240.0)


def checked_options(args) -> argparse.Namespace:
    """``args`` completed with the defaults of :func:`add_options` (for callers that
    build a Namespace by hand), with clear errors for values no search can run with."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser)
    args = argparse.Namespace(**{**vars(parser.parse_args([])), **vars(args)})
    if args.max_images is not None and args.max_images < 10:
        raise ValueError(f"--max-images must be at least 10, got {args.max_images}")
    if args.max_size < 1:
        raise ValueError(f"--max-size must be positive, got {args.max_size}")
    if args.refine is not None and args.refine < 0:
        raise ValueError(f"--refine must be 0 or more, got {args.refine}")
    if args.primitives:
        raise ValueError("--primitives: the image search reads image features only and "
                         "takes no user primitives")
    if not args.time_limit > 0:
        raise ValueError(f"--time-limit must be positive, got {args.time_limit}")
    return args


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks.casper_mnist``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.casper_mnist",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("challenge", "the challenge (as synth challenge mnist)"),
                        ("peers", "the engine beside its peers")):
        add_options(sub.add_parser(name, help=help_))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.casper_mnist [challenge|peers] ...``."""
    args = build_parser().parse_args(argv)
    args.run = {"challenge": run, "peers": run_peers}[args.command]
    try:
        return int(args.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"casper_mnist: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
