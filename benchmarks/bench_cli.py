"""``synth bench``: recover a suite of hidden programs and score the engine (and peers).

::

    synth bench --suite engine --out bench/engine            # issue 2's ten programs
    synth bench --suite grid --workers 2 --time-limit 60 --out bench/grid
    synth bench --program "x*x < 200*sqrt(y)" --source network --peers

Results land in ``--out`` as ``results.json``, ``results.csv``, ``table.md``
(markdown tables for BENCHMARKS.md) and ``recovery.svg`` (a bar chart);
rerunning with the same settings skips the tasks already finished there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from benchmarks.peers import PEERS
    from benchmarks.train_cli import TrainSettings

    parser = sub.add_parser("bench", help="benchmark recovery of hidden programs (and peers)",
                            description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--suite", default=None,
                        help="grid (48 graded programs), engine (issue 2's ten), "
                             "images or casper (not built yet); default grid, or none "
                             "when --program is given")
    parser.add_argument("--program", action="append", default=[],
                        help="an ad-hoc hidden program (Python expression over the inputs, "
                             "or a .py file defining label); repeatable")
    parser.add_argument("--domain", default="grid:113x113",
                        help="domain of --program tasks (default grid:113x113)")
    parser.add_argument("--task", action="append", default=[],
                        help="run only the suite's tasks of this name (repeatable)")
    parser.add_argument("--atoms", type=int, action="append", default=[],
                        help="run only tasks with this many atoms (repeatable)")
    parser.add_argument("--limit", type=int, help="run only the first K tasks")
    parser.add_argument("--source", choices=("labels", "network"), default="labels",
                        help="search the hidden program's labels, or the predictions of an MLP "
                             "trained on half of the domain (cached in $SYNTH_CACHE_DIR or "
                             "~/.cache/synth)")
    parser.add_argument("--peers", nargs="?", const=",".join(PEERS), default="",
                        help=f"also run peers on the same labels and budget: all of them "
                             f"({', '.join(PEERS)}) or a comma-separated subset")
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
    parser.add_argument("--epochs", type=int, default=TrainSettings.epochs,
                        help="--source network: training epochs")
    parser.add_argument("--hidden", default="256,256",
                        help="--source network: hidden widths of the MLP")
    parser.add_argument("--out", help="results folder (default bench/<suite>-<source>)")
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


def run_bench(args) -> int:
    from benchmarks.executors import make_executor
    from benchmarks.report import markdown_table
    from benchmarks.runner import BenchConfig, run_benchmark
    from benchmarks.train_cli import TrainSettings, parse_widths

    tasks, suite = select_tasks(args)
    options = {}
    if args.max_atoms is not None:
        options["max_atoms"] = args.max_atoms
    if args.max_feature_size is not None:
        options["max_feature_size"] = args.max_feature_size
    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    config = BenchConfig(source=args.source, seed=args.seed, time_limit=args.time_limit,
                         peers=peers, synth_options=options,
                         train=TrainSettings(seed=args.seed, epochs=args.epochs,
                                             hidden=parse_widths(args.hidden)))
    out = Path(args.out or f"bench/{suite}-{args.source}")
    executor = make_executor(args.workers, args.ray_address)
    try:
        docs = run_benchmark(tasks, config, out, executor=executor, progress=not args.quiet)
    finally:
        executor.close()
    print(markdown_table(docs, config.fingerprint()))
    failed = [d["key"] for d in docs if "error" in d]
    print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'table.md'} and "
          f"{out / 'recovery.svg'}", file=sys.stderr)
    if failed:
        print(f"synth bench: {len(failed)} task(s) failed: {', '.join(failed)} "
              f"(see results.json)", file=sys.stderr)
        return 1
    return 0
