"""The ``synth`` command line.

``synth search`` recovers a labelling program from a label table or a
trained network; ``synth demo`` runs the embedded example end to end.  Other
packages add subcommands (``bench``, ``challenge``, ``train``) through the
``synth.commands`` entry-point group, so the engine never imports them.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from synth.confidence import oracle_weights
from synth.results import SearchResult, write_json_atomic
from synth.user_code import import_user_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, for records
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"synth: error: {message}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(title="commands")

    search = sub.add_parser("search", help="search for the program behind labels or a network")
    search.add_argument("--domain", default="grid:113x113", help="input domain, e.g. grid:113x113")
    source = search.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="label table: .npy, or .pkl with --key")
    source.add_argument("--model", help="trained network: checkpoint or state dict")
    search.add_argument("--key", help="key of the label array inside a .pkl file")
    search.add_argument("--arch", help="architecture of --model (e.g. mlp)")
    search.add_argument("--hint", help="image domains (mnist, digits): a user template, "
                                       "an image file or .npy")
    search.add_argument("--confidence", action="store_true",
                        help="with --model: a label counts in proportion to the network's "
                             "logit margin where that is among the smallest tenth "
                             "(synth.confidence); by default every label counts the same")
    search.add_argument("--answer-factors", type=int, default=0, metavar="K",
                        help="2-D grids: leaves from the top K principal directions of the "
                             "answer table over each input (oracles.answer_factors), read "
                             "from the fitted cells only; default 0, none")
    search.add_argument("--answer-steps", type=int, default=0, metavar="K",
                        help="2-D grids: leaves from each row's and column's best step "
                             "function with at most K changes (oracles.answer_steps; with "
                             "--confidence, a disagreement costs the answer's confidence), "
                             "read from the fitted cells only; default 0, none")
    add_search_options(search)
    search.set_defaults(run=run_search)

    demo = sub.add_parser("demo", help="train a network on a built-in hidden program and "
                                       "recover it blind")
    demo.add_argument("--domain", choices=("grid", "digits"), default="grid",
                      help="grid: integer pairs (default); digits: sklearn's 8x8 digit images")
    add_search_options(demo, time_limit=60.0)
    demo.set_defaults(run=run_demo)

    from synth import active, report_cli  # `synth report`, `synth active`
    report_cli.register(sub)
    active.register(sub)

    for ep in entry_points(group="synth.commands"):
        ep.load()(sub)
    return parser


def add_search_options(parser: argparse.ArgumentParser, time_limit: float = 60.0) -> None:
    parser.add_argument("--time-limit", type=float, default=time_limit, help="seconds")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what --time-limit counts: wall-clock seconds, or this process's "
                             "CPU seconds (the same result on a busy machine, only later)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-atoms", type=int, default=12,
                        help="largest number of atoms in a formula")
    parser.add_argument("--beam-width", type=int, default=4,
                        help="formulas kept at each step of the composition search")
    parser.add_argument("--max-feature-size", type=int, default=6)
    parser.add_argument("--tree-leaves", type=int, default=None,
                        help="largest decision tree over the features put on the front "
                             "(synth.trees); 0: none. Default 256; over images 0, as their "
                             "answer is cut at --max-size: trees there only extend the "
                             "report's front past the cut ('beyond')")
    parser.add_argument("--primitives", action="append", default=[],
                        help="Python file registering extra primitives (repeatable)")
    parser.add_argument("--json", help="write the result as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def load_primitive_files(paths: Sequence[str]) -> None:
    """Import user files that register primitives with ``dsl.primitive``."""
    for i, path in enumerate(paths):
        import_user_file(path, f"synth_user_primitives_{i}", "primitives")


def synthesizer_from(args):
    from synth.search import Synthesizer
    load_primitive_files(args.primitives)
    trees = {} if args.tree_leaves is None else {"tree_leaves": args.tree_leaves}
    return Synthesizer(time_limit=args.time_limit, seed=args.seed, max_atoms=args.max_atoms,
                       beam_width=args.beam_width, max_feature_size=args.max_feature_size,
                       clock=args.clock, progress=not args.quiet, **trees)


def run_search(args) -> int:
    if args.domain in ("mnist", "digits"):  # images: templates, then the search
        from synth.image_search import run_image_search
        return run_image_search(args)
    from dsl.domains import parse_domain
    domain = parse_domain(args.domain)
    synthesizer = synthesizer_from(args)
    oracle = _oracle(args, domain)
    inputs = domain.all_inputs()
    labels = oracle.labels(inputs)
    weights = oracle_weights(oracle, inputs) if args.confidence else None
    if args.answer_factors or args.answer_steps:
        from synth.answer_leaves import answer_leaves
        synthesizer.features = (*synthesizer.features, *answer_leaves(
            labels, domain, synthesizer, factors=args.answer_factors, steps=args.answer_steps,
            weights=weights))
    synthesizer.fit(inputs, labels, sample_weight=weights)
    from synth.report import grid_data  # the data `synth report` draws heatmaps from
    report(synthesizer.result_, args.json,
           extra={"data": grid_data(domain, labels),
                  "label_weights": "uniform" if weights is None else "network confidence"})
    return 0


def _oracle(args, domain):
    if args.labels:
        from oracles.table import TableOracle
        return TableOracle.from_file(args.labels, domain, key=args.key)
    from oracles.torch_oracle import TorchOracle
    return TorchOracle.from_file(args.model, args.arch, domain)


def run_demo(args) -> int:
    if args.domain == "digits":
        from synth.demo_digits import run
    else:
        from synth.demo import run
    return run(args)


def report(result: SearchResult, json_path: str | None, out=None,
           extra: dict | None = None) -> None:
    """Print the Pareto front as a table and the best program as Python; write
    the result (with ``extra`` top-level entries) as JSON when a path is given."""
    out = out or sys.stdout
    print(format_front(result), file=out)
    stats = result.stats
    print(f"\n{stats.programs_evaluated:,} distinct programs evaluated in {stats.seconds:.1f} s "
          f"({stats.programs_per_second:,.0f} per second); features indexed: "
          f"{stats.features_indexed:,}; queries: {stats.queries:,}"
          + ("; interrupted, best so far" if stats.interrupted else ""), file=out)
    print(f"\nBest program (size {result.best.size}, fidelity {result.best.fidelity:.4f}"
          + (f", held-out {result.best.holdout_fidelity:.4f}"
             if result.best.holdout_fidelity is not None else "") + "):\n", file=out)
    print(result.best.python, file=out)
    if json_path:
        write_json_atomic(json_path, {**result.to_json(), **(extra or {})})
        print(f"wrote {json_path}", file=out)


#: Characters of a program shown in the printed front.
FRONT_TEXT = 200


def format_front(result: SearchResult) -> str:
    rows = [("size", "fidelity", "held-out", "program")]
    for c in result.pareto:
        held = f"{c.holdout_fidelity:.4f}" if c.holdout_fidelity is not None else "-"
        marker = " *" if c is result.best else ""
        text = str(c.program)
        if len(text) > FRONT_TEXT:  # a large tree: its whole text is in the JSON
            text = text[:FRONT_TEXT - 3] + "..."
        rows.append((str(c.size), f"{c.fidelity:.4f}", held, text + marker))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:>{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}"
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "Pareto front (size against fidelity; * = best):\n" + "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
