"""``synth bench``: recover a suite of hidden programs and score the engine (and peers).

::

    synth bench --suite engine --out bench/engine            # issue 2's ten programs
    synth bench --suite grid --workers 2 --time-limit 60 --out bench/grid
    synth bench --suite grid --source network --arch casper-transformer --task a1-cut
    synth bench --program "x*x < 200*sqrt(y)" --source network --peers
    synth bench --suite images --peers tree-pixels,tree-features --out bench/images
    synth bench --suite casper --peers --out bench/casper       # the two EIS VII challenges

Results land in ``--out`` as ``results.json``, ``results.csv``, ``table.md``
(markdown tables for BENCHMARKS.md), ``recovery.svg`` (exact recovery by atoms)
and ``fidelity.svg`` (fidelity against size, per task and method);
rerunning with the same settings skips the tasks already finished there, and
rerunning with other ``--peers`` keeps the engine's stored results and runs
only the peers not yet there.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.images_suite import IMAGE_PEERS


def register(sub: argparse._SubParsersAction) -> None:
    from benchmarks.images_suite import ImageBenchSettings
    from benchmarks.peers import PEERS
    from benchmarks.train_cli import ARCHES, DEFAULT_EPOCHS

    parser = sub.add_parser("bench", help="benchmark recovery of hidden programs (and peers)",
                            description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--suite", default=None,
                        help="grid (48 graded programs), engine (issue 2's ten), images "
                             "(15 programs over MNIST test images), casper (the two challenge "
                             "networks, scored against the published ground truth); "
                             "default grid, or none when --program is given")
    parser.add_argument("--program", action="append", default=[],
                        help="an ad-hoc hidden program (Python expression over the inputs, "
                             "or a .py file defining label); repeatable")
    parser.add_argument("--domain", default="grid:113x113",
                        help="domain of --program tasks (default grid:113x113; mnist: "
                             "numpy expressions over image)")
    parser.add_argument("--task", action="append", default=[],
                        help="run only the suite's tasks of this name (repeatable)")
    parser.add_argument("--atoms", type=int, action="append", default=[],
                        help="run only tasks with this many atoms (repeatable)")
    parser.add_argument("--limit", type=int, help="run only the first K tasks")
    parser.add_argument("--source", choices=("labels", "network"),
                        help="search the hidden program's labels, or the predictions of a "
                             "network trained on half of the domain (an MLP on grids, the "
                             "challenge-1 CNN on images; cached in $SYNTH_CACHE_DIR or "
                             "~/.cache/synth; casper: the challenge networks themselves); "
                             "default labels, network for image tasks and the casper suite")
    parser.add_argument("--peers", nargs="?", const="all", default="",
                        help=f"also run peers on the same labels and budget: all of them "
                             f"(grids: {', '.join(PEERS)}; images: {', '.join(IMAGE_PEERS)}) "
                             f"or a comma-separated subset")
    parser.add_argument("--confidence", action="store_true",
                        help="grid tasks from networks: a label counts in proportion to the "
                             "network's logit margin where that is among the smallest tenth "
                             "(synth.confidence); by default every label counts the same")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--ray-address",
                        help="run tasks on Ray instead ('local' starts one here, 'auto' joins "
                             "a running cluster, or ray://host:port)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="seconds per search (engine and each peer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-atoms", type=int,
                        help="engine: most atoms in a formula (default: the engine's)")
    parser.add_argument("--max-feature-size", type=int,
                        help="engine: largest feature enumerated (default: the engine's)")
    parser.add_argument("--arch", default="mlp", choices=ARCHES,
                        help="--source network on grids: the network trained on each task "
                             "(default mlp; casper-transformer: the challenge-2 transformer "
                             "and its published recipe, square grids only)")
    parser.add_argument("--epochs", type=int,
                        help="--source network: training epochs (default "
                             f"{DEFAULT_EPOCHS['mlp']} for the MLP, "
                             f"{DEFAULT_EPOCHS['casper-transformer']} for the transformer; "
                             f"{ImageBenchSettings().train.epochs} for the CNN, then "
                             f"{ImageBenchSettings().train.decay_epochs} at a tenth of the "
                             f"rate)")
    parser.add_argument("--hidden", default="256,256",
                        help="--source network: hidden widths of the MLP")
    parser.add_argument("--max-images", type=int,
                        help="image tasks: a seeded random subset of the images")
    parser.add_argument("--max-size", type=int, default=ImageBenchSettings.max_size,
                        help="image tasks: largest program (nodes)")
    parser.add_argument("--image-tree-leaves", type=int, default=ImageBenchSettings.tree_leaves,
                        help="image tasks: decision trees of up to this many leaves over the "
                             "engine's features past --max-size, never the answer, for the "
                             "comparison at peers' sizes (default 0: none)")
    parser.add_argument("--out", help="results folder (default bench/<suite>-<source>)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the tables into FILE (e.g. BENCHMARKS.md) between "
                             "the markers <!-- bench:NAME --> and <!-- /bench:NAME -->, NAME "
                             "the --out folder's name; appended when FILE has none")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_bench)


def select_tasks(args):
    from benchmarks.suites import custom_tasks, get_suite

    suite = args.suite or (None if args.program else "grid")
    tasks = list(get_suite(suite)) if suite else []
    if args.task:
        names = {t.name for t in tasks}
        unknown = [n for n in args.task if n not in names]
        if unknown:
            raise ValueError(f"no task named {unknown} in suite {suite!r}")
        tasks = [t for t in tasks if t.name in args.task]
    if args.atoms:
        tasks = [t for t in tasks if t.atoms in args.atoms]
    tasks += list(custom_tasks(args.program, args.domain))
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be positive, got {args.limit}")
        tasks = tasks[: args.limit]
    if not tasks:
        raise ValueError("no tasks selected")
    return tasks, suite or "custom"


def select_peers(text: str, tasks) -> tuple[str, ...]:
    """The peers of ``--peers`` ("all": every peer of the tasks' kind), each checked
    against the peers that run on the selected tasks."""
    from benchmarks.peers import PEERS

    kinds = {t.on_images for t in tasks}
    # one of each: grid and image peers share names (tree-features, gplearn)
    known = tuple(dict.fromkeys((IMAGE_PEERS if True in kinds else ())
                                + (PEERS if False in kinds else ())))
    if text.strip() == "all":
        return known
    peers = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in peers if p not in known]
    if unknown:
        raise ValueError(f"peers {unknown} do not run on the selected tasks; "
                         f"choose from {', '.join(known)}")
    return peers


def image_settings(args):
    """The settings of image tasks from the command line."""
    from dataclasses import replace

    from benchmarks.images_suite import ImageBenchSettings
    settings = ImageBenchSettings(max_images=args.max_images, max_size=args.max_size,
                                  tree_leaves=args.image_tree_leaves)
    train = replace(settings.train, seed=args.seed,
                    **({} if args.epochs is None else {"epochs": args.epochs}))
    return replace(settings, train=train)


def run_bench(args) -> int:
    from benchmarks.executors import make_executor
    from benchmarks.report import markdown_table, write_section
    from benchmarks.runner import BenchConfig, run_benchmark
    from benchmarks.suites import CASPER_DOMAINS
    from benchmarks.train_cli import DEFAULT_EPOCHS, TrainSettings, parse_widths

    tasks, suite = select_tasks(args)
    images = [t for t in tasks if t.on_images]
    options = {}
    if args.max_atoms is not None:
        options["max_atoms"] = args.max_atoms
    if args.max_feature_size is not None:
        options["max_feature_size"] = args.max_feature_size
    networks = images or any(t.domain in CASPER_DOMAINS for t in tasks)  # the challenges
    source = args.source or ("network" if networks else "labels")
    train = TrainSettings(arch=args.arch, seed=args.seed, hidden=parse_widths(args.hidden),
                          epochs=DEFAULT_EPOCHS[args.arch] if args.epochs is None
                          else args.epochs)
    config = BenchConfig(source=source, seed=args.seed, time_limit=args.time_limit,
                         peers=select_peers(args.peers, tasks), synth_options=options,
                         train=train, images=image_settings(args) if images else None,
                         confidence=args.confidence)
    out = Path(args.out or f"bench/{suite}-{source}")
    executor = make_executor(args.workers, args.ray_address)
    try:
        docs = run_benchmark(tasks, config, out, executor=executor, progress=not args.quiet)
    finally:
        executor.close()
    table = markdown_table(docs, config.fingerprint())
    print(table)
    if args.markdown:
        command = shlex.join(getattr(args, "argv", sys.argv[1:]))
        write_section(args.markdown, out.name, f"`synth {command}`\n\n{table}")
        print(f"wrote section {out.name!r} of {args.markdown}", file=sys.stderr)
    failed = [d["key"] for d in docs if "error" in d]
    print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'table.md'}, "
          f"{out / 'recovery.svg'}, {out / 'fidelity.svg'}", file=sys.stderr)
    if failed:
        print(f"synth bench: {len(failed)} task(s) failed: {', '.join(failed)} "
              f"(see results.json)", file=sys.stderr)
        return 1
    return 0
