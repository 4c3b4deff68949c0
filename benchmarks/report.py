"""Markdown tables of benchmark results, ready to paste into BENCHMARKS.md.

``markdown_table(docs)`` renders, from the per-task documents of
:func:`benchmarks.runner.run_benchmark` (or ``results.json``'s ``tasks``):

1. a summary by number of atoms: per method, exact recoveries and mean
   agreement with the hidden program;
2. one row per task for the engine: hidden and recovered program, exact,
   agreement, fidelity, size, time, programs per second;
3. with peers, one row per task and peer.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def _cell(value, digits: int = 4) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _code(text) -> str:
    if text is None:
        return "-"
    text = str(text).replace("|", "\\|").replace("\n", " ")
    if len(text) > 90:
        text = text[:87] + "..."
    return f"`{text}`"


def _table(header: Sequence[str], body: list[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" * len(header)
    marks = {"l": "---", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _methods(docs) -> list[str]:
    seen: dict[str, None] = {}
    for doc in docs:
        for r in doc["results"]:
            seen.setdefault(r["method"], None)
    return list(seen) or ["synth"]


def _result(doc, method):
    return next((r for r in doc["results"] if r.get("method") == method), None)


def summary_table(docs: Sequence[dict]) -> str:
    methods = _methods(docs)
    by_atoms: dict[int | None, list[dict]] = {}
    for doc in docs:
        by_atoms.setdefault(doc["task"]["atoms"], []).append(doc)
    groups = [(_atoms_label(a), by_atoms[a]) for a in _by_atoms(by_atoms)]
    groups.append(("all", list(docs)))
    header = ["atoms", "tasks"] + [f"{m}: exact" for m in methods] + \
        [f"{m}: agreement" for m in methods]
    body = []
    for label, group in groups:
        row = [label, str(len(group))]
        agree = []
        secret = sum(d["task"]["atoms"] is None for d in group)  # no truth to score against
        for m in methods:
            rs = [_result(d, m) for d in group]
            ok = [r for r in rs if r and not r.get("error") and r.get("agreement") is not None]
            row.append(f"{sum(bool(r['exact']) for r in ok)}/{len(group) - secret}")
            agree.append(_cell(sum(r["agreement"] for r in ok) / len(ok)) if ok else "-")
        body.append(row + agree)
    return _table(header, body, "rr" + "r" * 2 * len(methods))


def _by_atoms(atoms) -> list:
    """Atom counts in order, a challenge's unknown count (None) last."""
    return sorted(atoms, key=lambda a: (a is None, a or 0))


def _atoms_label(atoms: int | None) -> str:
    return "secret" if atoms is None else str(atoms)


def engine_table(docs: Sequence[dict], method: str = "synth") -> str:
    network = any(d.get("network") for d in docs)
    header = ["task", "atoms", "hidden program", "recovered program", "exact", "agreement",
              "fidelity", "held-out", "size", "time (s)", "CPU (s)", "programs/s"]
    if network:
        header.insert(4, "net vs hidden")
    body = []
    for doc in docs:
        r = _result(doc, method) or {}
        err = doc.get("error") or r.get("error")
        row = [doc["task"]["name"], _atoms_label(doc["task"]["atoms"]),
               _code(doc["task"]["program"]),
               _code(r.get("program")) if not err else f"error: {_code(err)}",
               _cell(r.get("exact")), _cell(r.get("agreement")), _cell(r.get("fidelity")),
               _cell(r.get("holdout_fidelity")), _cell(r.get("size")),
               _cell(r.get("seconds"), 1), _cell(r.get("cpu_seconds"), 1),
               f"{r['programs_per_second']:,.0f}" if r.get("programs_per_second") else "-"]
        if network:
            row.insert(4, _cell((doc.get("network") or {}).get("oracle_agreement")))
        body.append(row)
    return _table(header, body, "lrll" + ("r" if network else "") + "crrrrrrr")


def peers_table(docs: Sequence[dict]) -> str:
    methods = [m for m in _methods(docs) if m != "synth"]
    header = ["task", "method", "exact", "agreement", "fidelity", "held-out", "size (nodes)",
              "time (s)", "CPU (s)", "program"]
    body = []
    for doc in docs:
        for m in methods:
            r = _result(doc, m) or {"error": "not run"}
            if r.get("error"):
                body.append([doc["task"]["name"], m, "-", "-", "-", "-", "-", "-", "-",
                             f"error: {_code(r['error'])}"])
                continue
            body.append([doc["task"]["name"], m, _cell(r["exact"]), _cell(r["agreement"]),
                         _cell(r["fidelity"]), _cell(r.get("holdout_fidelity")),
                         _cell(r["size"]), _cell(r["seconds"], 1),
                         _cell(r.get("cpu_seconds"), 1), _code(r["program"])])
    return _table(header, body, "llcrrrrrrl")


def markdown_table(docs: Sequence[dict], config: dict | None = None) -> str:
    parts = []
    if config:
        parts.append("Settings: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in config.items()
                                              if v not in ({}, [], None)))
    if not docs:
        return "\n\n".join(parts + ["(no finished tasks)"]) + "\n"
    parts += [summary_table(docs), engine_table(docs)]
    if len(_methods(docs)) > 1:
        parts.append(peers_table(docs))
    return "\n\n".join(parts) + "\n"


_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def recovery_svg(docs: Sequence[dict], width: int = 640, height: int = 300) -> str:
    """A grouped bar chart (plain SVG, no plotting library): fraction of tasks recovered
    exactly, by number of atoms, one bar per method."""
    from xml.sax.saxutils import escape

    methods = _methods(docs)
    atoms = _by_atoms({d["task"]["atoms"] for d in docs}) or [0]
    left, bottom, top, right = 48, 40, 36, 12
    plot_w, plot_h = width - left - right, height - top - bottom
    group_w = plot_w / len(atoms)
    bar_w = group_w * 0.8 / max(len(methods), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="14">exact recovery by number of atoms</text>']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{frac:.0%}</text>')
    for g, a in enumerate(atoms):
        group = [d for d in docs if d["task"]["atoms"] == a]
        x0 = left + g * group_w + group_w * 0.1
        for m, method in enumerate(methods):
            rs = [_result(d, method) for d in group]
            rate = sum(bool(r and r.get("exact")) for r in rs) / max(len(group), 1)
            h = plot_h * rate
            out.append(f'<rect x="{x0 + m * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                       f'width="{bar_w * 0.95:.1f}" height="{h:.1f}" '
                       f'fill="{_COLOURS[m % len(_COLOURS)]}"><title>{escape(method)}, '
                       f'{a} atoms: {rate:.0%} of {len(group)}</title></rect>')
        out.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{top + plot_h + 16}" '
                   f'text-anchor="middle">{_atoms_label(a)}</text>')
    for m, method in enumerate(methods):
        x = left + m * 110
        out.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
                   f'fill="{_COLOURS[m % len(_COLOURS)]}"/><text x="{x + 14}" '
                   f'y="{height - 5}">{escape(method)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def load_results(path: str | Path) -> list[dict]:
    """The task documents of a ``results.json`` (or of the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text())["tasks"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report OUT_DIR``: print the tables of a finished run."""
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m benchmarks.report OUT_DIR|results.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    data = json.loads((path / "results.json" if path.is_dir() else path).read_text())
    print(markdown_table(data["tasks"], data.get("config")), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
