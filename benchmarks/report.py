"""Markdown tables of benchmark results, ready to paste into BENCHMARKS.md.

``markdown_table(docs)`` renders, from the per-task documents of
:func:`benchmarks.runner.run_benchmark` (or ``results.json``'s ``tasks``):

1. a summary by number of atoms: per method, exact recoveries and mean
   agreement with the hidden program;
2. one row per task for the engine: hidden and recovered program, exact,
   agreement, fidelity, size, time, programs per second;
3. with peers, one row per task and peer, and per peer how often the
   engine's front is at least as faithful at equal size (``equal_size_table``);

and two plain SVG charts (no plotting library): ``recovery_svg``, exact
recovery by number of atoms per method, and ``fidelity_svg``, fidelity
against program size per task and method.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


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
            r = _result(doc, m)
            if r is None:  # not a peer of this task's kind (grid or image)
                continue
            if r.get("error"):
                body.append([doc["task"]["name"], m, "-", "-", "-", "-", "-", "-", "-",
                             f"error: {_code(r['error'])}"])
                continue
            body.append([doc["task"]["name"], m, _cell(r["exact"]), _cell(r["agreement"]),
                         _cell(r["fidelity"]), _cell(r.get("holdout_fidelity")),
                         _cell(r["size"]), _cell(r["seconds"], 1),
                         _cell(r.get("cpu_seconds"), 1), _code(r["program"])])
    return _table(header, body, "llcrrrrrrl")


def best_within(front: Sequence[Sequence], size: int) -> float | None:
    """The highest held-out fidelity (fit fidelity where none was held out) on a
    front of ``[size, fit fidelity, held-out fidelity, ...]`` among programs of at
    most ``size`` nodes; None if it has none so small."""
    scores = [p[2] if p[2] is not None else p[1] for p in front if p[0] <= size]
    return max(scores) if scores else None


def _front_of(result: dict) -> list:
    """A result's front; a program alone (a genetic program) is a front of one."""
    return result.get("front") or [[result["size"], result.get("fit_fidelity",
                                                                result["fidelity"]),
                                     result.get("holdout_fidelity")]]


# An exact two-sided McNemar test of a lead of d held-out rows has p >= 2 * 0.5**d
# (all discordant rows on one side): 0.0625 for 5 rows, 0.031 for 6.  A lead of fewer
# rows is never significant at 5%, whatever the rows.
SIGNIFICANT_LEAD_ROWS = 6


def _lead_rows(ours: float | None, theirs: float | None, rows: int | None) -> int | None:
    """By how many held-out rows ``theirs`` beats ``ours`` (None where unknown)."""
    if ours is None or theirs is None or not rows:
        return None
    return int(round((theirs - ours) * rows))


def equal_size_table(docs: Sequence[dict]) -> str:
    """Per peer: on how many tasks the engine's front is at least as faithful
    (held out) as the peer's at the engine's chosen size, and at the peer's
    chosen size -- each side's best program of that size or smaller, sizes in
    the engine's units (:mod:`benchmarks.peer_sizes`) -- and on how many the
    peer leads at either size by at least ``SIGNIFICANT_LEAD_ROWS`` held-out
    rows, the least lead a paired test at 5% can tell from a tie ("-" where
    the results do not record ``holdout_rows``).

    Then the suite as a whole, at the peer's sizes: the tasks the engine wins,
    ties and loses there, with the two-sided sign test of wins against losses
    (a suite where the engine is ahead has more wins than a fair coin gives),
    and the held-out rows it gets right beyond the peer's, summed over the
    tasks, at the engine's sizes and at the peer's."""
    from scipy.stats import binomtest

    header = ["peer", "tasks", "synth ahead at synth's size", "synth ahead at the peer's size",
              f"peer ahead by >= {SIGNIFICANT_LEAD_ROWS} held-out rows",
              "at the peer's size: synth wins / ties / losses (sign test p)",
              "held-out rows synth leads by, all tasks: at synth's sizes / at the peer's",
              "median size: synth", "median size: peer"]
    body = []
    for m in [m for m in _methods(docs) if m != "synth"]:
        pairs = [(_result(d, "synth"), _result(d, m)) for d in docs]
        pairs = [(e, p) for e, p in pairs if e and p and not e.get("error")
                 and not p.get("error") and e.get("front")]
        if not pairs:
            continue
        at_engine = at_peer = real_leads = 0
        outcomes = {"win": 0, "tie": 0, "loss": 0}
        suite_lead = [0, 0]  # held-out rows, at the engine's sizes and at the peer's
        counted = all(e.get("holdout_rows") for e, _ in pairs)
        for e, p in pairs:
            ours, theirs = e["front"], _front_of(p)
            rival = best_within(theirs, e["size"])
            at_engine += rival is None or best_within(ours, e["size"]) >= rival
            mine, peers_best = best_within(ours, p["size"]), best_within(theirs, p["size"])
            at_peer += mine is not None and mine >= peers_best
            leads = [_lead_rows(best_within(ours, size) or 0.0, best_within(theirs, size),
                                e.get("holdout_rows")) for size in (e["size"], p["size"])]
            real_leads += any(d is not None and d >= SIGNIFICANT_LEAD_ROWS for d in leads)
            for i, d in enumerate(leads):
                suite_lead[i] -= d or 0
            outcomes[_outcome(mine, peers_best, leads[1])] += 1
        decided = outcomes["win"] + outcomes["loss"]
        p_value = binomtest(outcomes["win"], decided).pvalue if decided else 1.0
        body.append([m, str(len(pairs)), f"{at_engine}/{len(pairs)}", f"{at_peer}/{len(pairs)}",
                     f"{real_leads}/{len(pairs)}" if counted else "-",
                     f"{outcomes['win']} / {outcomes['tie']} / {outcomes['loss']} "
                     f"({_p_value(p_value)})",
                     f"{suite_lead[0]:+,} / {suite_lead[1]:+,}" if counted else "-",
                     _cell(float(np.median([e["size"] for e, _ in pairs])), 0),
                     _cell(float(np.median([p["size"] for _, p in pairs])), 0)])
    return _table(header, body, "lrrrrrrrr") if body else ""


def _outcome(ours: float | None, theirs: float | None, lead: int | None) -> str:
    """"win", "tie" or "loss" for the engine: by whole held-out rows where they are
    counted (a difference in the last float digit is a tie), else by fidelity."""
    if lead is not None:
        return "win" if lead < 0 else "loss" if lead > 0 else "tie"
    ours = -1.0 if ours is None else ours
    return "win" if ours > theirs else "loss" if ours < theirs else "tie"


def _p_value(p: float) -> str:
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4"


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
        equal = equal_size_table(docs)
        if equal:
            parts.append("Fidelity at equal size (held out; sizes in the engine's units):\n\n"
                         + equal)
    return "\n\n".join(parts) + "\n"


_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def recovery_svg(docs: Sequence[dict], width: int = 640, height: int = 300) -> str:
    """A grouped bar chart (plain SVG, no plotting library): fraction of tasks recovered
    exactly, by number of atoms, one bar per method."""
    from xml.sax.saxutils import escape

    methods = _methods(docs)
    atoms = _by_atoms({d["task"]["atoms"] for d in docs}) or [0]
    box = _Box(width, height)
    out = box.frame("exact recovery by number of atoms",
                    [(frac, f"{frac:.0%}") for frac in (0, 0.25, 0.5, 0.75, 1)])
    group_w = box.w / len(atoms)
    bar_w = group_w * 0.8 / max(len(methods), 1)
    for g, a in enumerate(atoms):
        group = [d for d in docs if d["task"]["atoms"] == a]
        x0 = box.left + g * group_w + group_w * 0.1
        for m, method in enumerate(methods):
            rs = [_result(d, method) for d in group]
            rate = sum(bool(r and r.get("exact")) for r in rs) / max(len(group), 1)
            h = box.h * rate
            out.append(f'<rect x="{x0 + m * bar_w:.1f}" y="{box.top + box.h - h:.1f}" '
                       f'width="{bar_w * 0.95:.1f}" height="{h:.1f}" '
                       f'fill="{_colour(m)}"><title>{escape(method)}, '
                       f'{a} atoms: {rate:.0%} of {len(group)}</title></rect>')
        out.append(f'<text x="{box.left + (g + 0.5) * group_w:.1f}" '
                   f'y="{box.top + box.h + 16}" text-anchor="middle">{_atoms_label(a)}</text>')
    return box.close(out, methods)


def fidelity_svg(docs: Sequence[dict], width: int = 640, height: int = 320) -> str:
    """Fidelity to the oracle against program size (log scale), one point per task
    and method: who explains the labels as well with a smaller program."""
    from xml.sax.saxutils import escape

    methods = _methods(docs)
    points = [(m, doc["task"]["name"], r["size"], r["fidelity"])
              for doc in docs for m in methods
              if (r := _result(doc, m)) and not r.get("error") and r.get("size")]
    low = min([p[3] for p in points] + [0.9])
    low = np.floor(low * 20) / 20  # the y axis starts at a multiple of 0.05
    top_size = max([p[2] for p in points] + [10])
    decades = max(1, int(np.ceil(np.log10(top_size))))
    box = _Box(width, height)
    ticks = [(frac, f"{low + frac * (1 - low):.2f}") for frac in (0, 0.25, 0.5, 0.75, 1)]
    out = box.frame("fidelity to the oracle against program size (nodes, log scale)", ticks)
    for d in range(decades + 1):
        x = box.left + box.w * d / decades
        out.append(f'<text x="{x:.1f}" y="{box.top + box.h + 16}" '
                   f'text-anchor="middle">{10 ** d}</text>')
    for method, task, size, fidelity in points:
        x = box.left + box.w * np.log10(size) / decades
        y = box.top + box.h * (1 - (fidelity - low) / (1 - low))
        colour = _colour(methods.index(method))
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" '
                   f'fill-opacity="0.7"><title>{escape(method)}, {escape(task)}: size {size}, '
                   f'fidelity {fidelity:.4f}</title></circle>')
    return box.close(out, methods)


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


class _Box:
    """The plot area of an SVG chart: frame, horizontal grid, legend."""

    left, bottom, top, right = 48, 40, 36, 12

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.w = width - self.left - self.right
        self.h = height - self.top - self.bottom

    def frame(self, title: str, ticks: list[tuple[float, str]]) -> list[str]:
        """The opening of the SVG: title and grid lines at ``ticks`` (fraction of height, label)."""
        from xml.sax.saxutils import escape
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
               f'height="{self.height}" font-family="sans-serif" font-size="11">',
               f'<text x="{self.left}" y="14">{escape(title)}</text>']
        for frac, label in ticks:
            y = self.top + self.h * (1 - frac)
            out.append(f'<line x1="{self.left}" x2="{self.left + self.w}" y1="{y:.1f}" '
                       f'y2="{y:.1f}" stroke="#ddd"/><text x="{self.left - 6}" '
                       f'y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        return out

    def close(self, out: list[str], methods: Sequence[str]) -> str:
        """``out`` with a legend of ``methods`` and the closing tag."""
        from xml.sax.saxutils import escape
        step = min(110.0, (self.width - self.left) / max(len(methods), 1))
        for m, method in enumerate(methods):
            x = round(self.left + m * step, 1)
            out.append(f'<rect x="{x}" y="{self.height - 14}" width="10" height="10" '
                       f'fill="{_colour(m)}"/><text x="{x + 14}" '
                       f'y="{self.height - 5}">{escape(method)}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"


def write_section(path: str | Path, key: str, text: str) -> None:
    """Put ``text`` into the markdown file ``path`` between the markers
    ``<!-- bench:KEY -->`` and ``<!-- /bench:KEY -->``: in place of what they held,
    or appended as a new section; the rest of the file is left as it was (atomic)."""
    from benchmarks.runner import write_text_atomic

    if not key or any(c in key for c in "<>\n"):
        raise ValueError(f"a section key must be non-empty text without '<', '>' or "
                         f"newlines, got {key!r}")
    path = Path(path)
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old:
        if old.count(begin) != 1 or old.count(end) != 1 or old.index(end) < old.index(begin):
            raise ValueError(f"{path}: the markers of section {key!r} are not one well-formed "
                             f"pair; fix the file by hand")
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + block + "\n"
    write_text_atomic(path, new)


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
