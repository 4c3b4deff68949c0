"""``synth report RESULT.json [--html OUT]``: the result as one self-contained HTML page."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="render a result JSON (synth search/challenge/active --json) as one "
                       "self-contained HTML page")
    parser.add_argument("result", help="result JSON written with --json")
    parser.add_argument("--html", help="output file (default: RESULT with .html)")
    parser.add_argument("--domain", help="grid domain the search ran on, e.g. grid:113x113 "
                                         "(overrides the JSON's data.domain)")
    parser.add_argument("--labels", help="labels searched on: .npy, or .pkl with --key "
                                         "(overrides the JSON's data.labels)")
    parser.add_argument("--key", help="key of the label array inside a .pkl file")
    parser.add_argument("--title", help="page title (default: the JSON's file name)")
    parser.set_defaults(run=_run)


def _run(args) -> int:
    from synth.report import write_report
    out = write_report(args.result, args.html, domain=args.domain, labels=args.labels,
                       key=args.key, title=args.title)
    print(f"wrote {out}")
    return 0
