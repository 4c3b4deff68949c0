"""Enumeration throughput: distinct programs evaluated per second.

Measures the bottom-up enumerator alone (the search's generator of
programs) on a grid domain: candidates built and evaluated vectorised over
every query point, and distinct programs kept after observational
equivalence.  ``--processes 2`` runs two enumerations side by side and
reports their sum, which is how a second core is used (a single numpy
enumeration is single-threaded).

    python -m benchmarks.throughput --side 113 --points all --max-size 6
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import numpy as np

from dsl.domains import GridDomain
from dsl.primitives import ARITHMETIC, REGISTRY
from dsl.program import Var, const
from synth.enumerate import Enumerator, Grammar


def grammar() -> Grammar:
    """The default grammar of integer searches (see ``Synthesizer._grammar``)."""
    moduli = tuple(const(m) for m in range(2, 21))
    return Grammar((Var("x"), Var("y")), (const(1), const(2)),
                   tuple(REGISTRY.select(ARITHMETIC)), (("mod", moduli), ("floordiv", moduli)))


def measure(side: int, points: int | None, max_size: int, seed: int = 0) -> dict:
    env = GridDomain((side, side)).all_inputs()
    n = len(env["x"])
    if points is not None and points < n:
        rows = np.random.default_rng(seed).choice(n, size=points, replace=False)
        env = {k: v[rows] for k, v in env.items()}
    enumerator = Enumerator(grammar(), env, seed=seed)
    start = time.perf_counter()
    for _ in enumerator.run(max_size):
        pass
    seconds = time.perf_counter() - start
    return {"side": side, "points": len(env["x"]), "max_size": max_size,
            "candidates": enumerator.candidates, "distinct": enumerator.kept,
            "seconds": round(seconds, 3),
            "candidates_per_second": round(enumerator.candidates / seconds),
            "distinct_per_second": round(enumerator.kept / seconds)}


def _worker(args) -> dict:
    return measure(*args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=113)
    parser.add_argument("--points", default="all", help="'all' or a number of sampled points")
    parser.add_argument("--max-size", type=int, default=6)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    points = None if args.points == "all" else int(args.points)
    jobs = [(args.side, points, args.max_size, seed) for seed in range(args.processes)]
    if args.processes == 1:
        results = [_worker(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(args.processes) as pool:
            results = pool.map(_worker, jobs)
    summary = {"processes": args.processes, "runs": results,
               "total_distinct_per_second": sum(r["distinct_per_second"] for r in results),
               "total_candidates_per_second": sum(r["candidates_per_second"] for r in results)}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
