"""``synth report``: one self-contained HTML page per search result.

The page reads a result JSON as ``synth search --json`` (or ``synth challenge
... --json``, ``synth active --json``) writes it and shows what a researcher
needs to judge the answer:

* the best program, as the Python source it prints as;
* the Pareto front of size against fidelity, as a table and a plot;
* for grid domains, the best program's decision boundary beside the labels it
  was searched on, and where the two differ (heatmaps);
* for image programs, their templates drawn as pictures, each feature's
  histogram over held-out images by the network's label with the program's
  thresholds, and the images nearest a threshold (from ``data.images``, built
  by :func:`image_data`);
* the decodability of the program's features from each layer (a plot and a
  table) and the causal tests (:mod:`synth.causal`): counterfactual fidelity
  beside its random control, per test, with edited images when there are any;
* every other ``evidence`` entry of the best candidate, rendered generically
  from nested dicts and lists, so new kinds of evidence appear without changes;
* the search statistics and settings, and any other top-level entry.

Everything is inline (CSS, a few lines of JavaScript for sortable tables,
plots as base64 PNG drawn with matplotlib's Agg canvas): the file can be
mailed, archived, or opened offline.

What the decision-boundary section needs
----------------------------------------
The program is re-evaluated from the JSON itself (``best.expression``
parsed and evaluated vectorised; ``best.python`` compiled as a fallback).
The domain and the labels come from an optional top-level ``data`` entry::

    "data": {
      "domain": "grid:113x113",                 # required for the section
      "names": ["x", "y"],                      # optional; default from the spec
      "labels": ARRAY,                          # optional: the labels searched on
      "known": ARRAY                            # optional: bool mask of the points
    }                                           # whose labels were queried

or, for image programs, ``"data": {"images": ...}`` as :func:`image_data` writes it;
where ``ARRAY`` is either a reference to a file, ``{"path": "labels.npy"}``
or ``{"path": "info.pkl", "key": "labels"}`` (relative paths are resolved
against the JSON file's folder, then the working directory), or the array
inline as written by :func:`encode_array` (``{"shape": [...], "packbits":
BASE64}`` for 0/1 arrays, ``{"shape": [...], "npy": BASE64}`` otherwise).
:func:`grid_data` builds the entry; ``synth report --domain ... --labels ...``
supplies (or overrides) it from the command line for results written
without one.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from oracles.table import load_array

#: Keys of a result JSON that have sections of their own.
_OWN_SECTIONS = ("best", "pareto", "stats", "settings", "data")
#: Largest grid evaluated in full (more is drawn on a strided sub-grid).
_FULL_GRID = 4_000_000
#: Most cells per side of a drawn heatmap.
_DRAW_SIDE = 400
#: Rows of a generic table shown before the rest is summarised.
_MAX_ROWS = 200
#: Items of a list of scalars shown inline.
_MAX_INLINE = 24
#: Characters of a string shown in generic tables (the best program is always whole).
_MAX_TEXT = 1500


# -- arrays in JSON ------------------------------------------------------------------
def encode_array(array) -> dict:
    """An array as a JSON-friendly dict: packed bits for 0/1 arrays, ``.npy`` bytes otherwise."""
    array = np.asarray(array)
    shape = list(array.shape)
    if array.dtype.kind in "biu" and (array.size == 0 or
                                     (array.min() >= 0 and array.max() <= 1)):
        bits = np.packbits(array.astype(bool).ravel())
        return {"shape": shape, "dtype": "bool" if array.dtype.kind == "b" else "int64",
                "packbits": base64.b64encode(bits.tobytes()).decode("ascii")}
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return {"shape": shape, "npy": base64.b64encode(buffer.getvalue()).decode("ascii")}


def decode_array(ref, base_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The array an ``ARRAY`` entry (see the module docstring) stands for."""
    if isinstance(ref, list):
        return np.asarray(ref)
    if not isinstance(ref, Mapping):
        raise ValueError(f"cannot read an array from {type(ref).__name__}")
    if "packbits" in ref:
        shape = tuple(int(s) for s in ref["shape"])
        bits = np.frombuffer(base64.b64decode(ref["packbits"]), dtype=np.uint8)
        flat = np.unpackbits(bits, count=int(np.prod(shape)))
        return flat.astype(bool if ref.get("dtype") == "bool" else np.int64).reshape(shape)
    if "npy" in ref:
        return np.load(io.BytesIO(base64.b64decode(ref["npy"])), allow_pickle=False)
    if "path" in ref:
        return load_array_file(ref["path"], ref.get("key"), base_dir)
    raise ValueError(f"an array entry needs 'packbits', 'npy' or 'path'; got keys {sorted(ref)}")


def load_array_file(path: str | os.PathLike, key: str | None = None,
                    base_dir: str | os.PathLike | None = None) -> np.ndarray:
    """A ``.npy`` array, or the array ``key`` of a ``.pkl`` dict (read safely)."""
    path = Path(path)
    if not path.is_absolute() and base_dir is not None and (Path(base_dir) / path).exists():
        path = Path(base_dir) / path
    if not path.exists():
        raise FileNotFoundError(f"label file {str(path)!r} does not exist")
    return load_array(path, key)


def grid_data(domain, labels=None, *, path: str | None = None, key: str | None = None,
              known=None, inline_limit: int = 4_000_000) -> dict:
    """The ``data`` entry of a result JSON for a grid domain.

    ``labels`` (an array over the grid) is stored inline when it has at most
    ``inline_limit`` points; otherwise, or when no array is given, ``path``
    (and ``key``) reference the file it came from.  ``known`` marks the
    points that were actually queried (active search)."""
    out: dict = {"domain": str(domain), "names": list(domain.names)}
    if labels is not None and np.asarray(labels).size <= inline_limit:
        out["labels"] = encode_array(np.asarray(labels).reshape(tuple(domain.shape)))
    elif path is not None:
        out["labels"] = {"path": str(path), **({"key": key} if key is not None else {})}
    if known is not None:
        out["known"] = encode_array(np.asarray(known, dtype=bool).reshape(tuple(domain.shape)))
    return out


def encode_image(image) -> dict:
    """A grey image with values in [0, 1] as an ``ARRAY`` of 0..255 levels (compact)."""
    return encode_array(np.round(np.clip(np.asarray(image, dtype=np.float64), 0, 1) * 255)
                        .astype(np.uint8))


def decode_image(ref, base_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The image an :func:`encode_image` entry stands for, in [0, 1]."""
    array = decode_array(ref, base_dir)
    return array / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)


def feature_thresholds(program) -> dict:
    """``{feature: [thresholds]}``: the constants each of ``program``'s features
    is compared with (``f < 18.5`` gives 18.5), in order, once each."""
    from dsl.program import Const
    from synth.evidence import program_features
    from synth.evidence_grid import atoms_of

    out: dict = {f: [] for f in program_features(program)}
    for atom in atoms_of(program):
        left, right = atom.args
        for feature, other in ((left, right), (right, left)):
            if feature in out and isinstance(other, Const) and other.value not in out[feature]:
                out[feature].append(float(other.value))
    return out


def image_data(program, images, labels, *, bins: int = 40, examples: int = 8,
               name: str = "image") -> dict:
    """The ``data`` entry of a result JSON for a program over images.

    ``images`` (N, H, W) in [0, 1] and the network's ``labels`` should be
    held out from the search.  Holds the program's templates (as arrays), each
    feature's histogram over the images split by label, with the thresholds
    the program compares it with, and per feature the ``examples`` images
    nearest one of its thresholds, with their labels and the program's."""
    from dsl.images import Template

    arr = np.asarray(images, dtype=np.float64)
    z = np.asarray(labels).astype(np.int64)
    if arr.ndim != 3 or z.shape != (len(arr),):
        raise ValueError(f"need images (N, H, W) and one label each; got shapes {arr.shape} "
                         f"and {z.shape}")
    env = {name: arr}
    with np.errstate(all="ignore"):
        pred = np.asarray(program.evaluate(env)).astype(np.int64)
    templates = {node.identifier: encode_array(node.array) for node in program.walk()
                 if isinstance(node, Template)}
    features, near = [], []
    for feature, cuts in feature_thresholds(program).items():
        with np.errstate(all="ignore"):
            values = np.asarray(feature.evaluate(env), dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            continue
        span = [float(values[finite].min()), float(values[finite].max())] + cuts
        edges = np.linspace(min(span), max(span), bins + 1)
        counts = {str(k): np.histogram(values[finite & (z == k)], edges)[0].tolist()
                  for k in np.unique(z)}
        features.append({"feature": str(feature), "thresholds": cuts,
                         "edges": [round(float(e), 6) for e in edges], "counts": counts})
        if cuts:
            gap = np.min(np.abs(values[:, None] - np.asarray(cuts)[None, :]), axis=1)
            for i in np.argsort(np.where(finite, gap, np.inf), kind="stable")[:examples]:
                near.append({"feature": str(feature), "value": round(float(values[i]), 4),
                             "network": int(z[i]), "program": int(pred[i]),
                             "image": encode_image(arr[i])})
    return {"images": {"count": int(len(arr)), "shape": list(arr.shape[1:]),
                       "templates": templates, "features": features, "near_boundary": near}}


# -- the page ----------------------------------------------------------------------
def write_report(json_path: str | os.PathLike, html_path: str | os.PathLike | None = None, *,
                 domain: str | None = None, labels: str | None = None,
                 key: str | None = None, title: str | None = None) -> Path:
    """Render the result JSON at ``json_path`` to ``html_path`` (default: beside
    it, ``.html``); ``domain``/``labels``/``key`` supply or override its ``data``."""
    json_path = Path(json_path)
    try:
        result = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"result file {str(json_path)!r} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{json_path} is not a result JSON: {err}") from None
    if not isinstance(result, dict) or "best" not in result:
        raise ValueError(f"{json_path} is not a search result: it has no 'best' entry")
    if domain is not None or labels is not None:
        data = dict(result.get("data") or {})
        if domain is not None:
            from dsl.domains import parse_domain
            data["domain"] = str(parse_domain(domain))
            data.pop("names", None)
        if labels is not None:
            data["labels"] = {"path": str(Path(labels).resolve()),
                              **({"key": key} if key is not None else {})}
            data.pop("known", None)
        result["data"] = data
    page = render_report(result, title=title or json_path.name, base_dir=json_path.parent)
    out = Path(html_path) if html_path is not None else json_path.with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


def render_report(result: Mapping, *, title: str = "search result",
                  base_dir: str | os.PathLike | None = None) -> str:
    """The HTML page (a string) for a result dict."""
    best = result.get("best") or {}
    settings = result.get("settings") or {}
    penalty = settings.get("complexity_penalty") if isinstance(settings, Mapping) else None
    sections = [_summary(best), _program_section(best),
                _pareto_section(result.get("pareto") or [], best, penalty)]
    data = result.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("images"), Mapping):
        sections += _image_sections(data["images"], base_dir)
    else:
        sections.append(_grid_section(result, best, base_dir))
    evidence = best.get("evidence")
    if isinstance(evidence, Mapping):
        sections += [_decodability_section(evidence), _causal_section(evidence)]
        rest = {k: v for k, v in evidence.items() if k not in _evidence_shown(evidence)}
        if rest:
            sections.append(_section("Evidence", render_value(rest), "evidence"))
    elif evidence:
        sections.append(_section("Evidence", render_value(evidence), "evidence"))
    for name, value in result.items():
        if name not in _OWN_SECTIONS and not (name == "evidence" and value == evidence):
            sections.append(_section(_title_of(name), render_value(value), f"extra-{name}"))
    if result.get("stats"):
        sections.append(_section("Search statistics", render_value(result["stats"]), "stats"))
    if settings:
        sections.append(_section("Settings", render_value(settings), "settings"))
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = "\n".join(s for s in sections if s)
    return _PAGE.format(title=_e(f"synth report: {title}"), heading=_e(title), body=body,
                        css=_CSS, script=_SCRIPT, stamp=_e(stamp))


def _summary(best: Mapping) -> str:
    items = [("program", f"<code>{_e(best.get('expression', '?'))}</code>")]
    for key, label in (("size", "size"), ("fidelity", "fidelity"),
                       ("holdout_fidelity", "held-out fidelity")):
        if best.get(key) is not None:
            items.append((label, _e(_fmt(best[key]))))
    cells = "".join(f"<div class='kv'><span>{k}</span><b>{v}</b></div>" for k, v in items)
    return f"<section class='summary' id='summary'>{cells}</section>"


def _program_section(best: Mapping) -> str:
    source = best.get("python")
    if not source:
        return _section("Best program", "<p class='note'>The result holds no Python source.</p>",
                        "program")
    return _section("Best program", f"<pre class='code'><code>{_e(source)}</code></pre>",
                    "program")


def _pareto_section(pareto: Sequence, best: Mapping, penalty) -> str:
    if not pareto:
        return _section("Pareto front", "<p class='note'>The result holds no Pareto front.</p>",
                        "pareto")
    rows = []
    header = ["#", "size", "fidelity", "held-out"] + (["penalised"] if penalty else []) + \
        ["program"]
    for i, c in enumerate(pareto, 1):
        is_best = c.get("python") == best.get("python") and c.get("python") is not None
        cells = [str(i), _fmt(c.get("size")), _fmt(c.get("fidelity")),
                 _fmt(c.get("holdout_fidelity"))]
        if penalty:
            fid, size = c.get("fidelity"), c.get("size")
            cells.append(_fmt(fid - penalty * size) if _is_num(fid) and _is_num(size) else "-")
        tds = "".join(f"<td class='num'>{_e(v)}</td>" for v in cells)
        tds += f"<td><code>{_e(c.get('expression', ''))}</code>{' ★' if is_best else ''}</td>"
        rows.append(f"<tr{' class=best' if is_best else ''}>{tds}</tr>")
    table = (f"<table class='sortable'><thead><tr>{''.join(f'<th>{_e(h)}</th>' for h in header)}"
             f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    image = _plot(lambda: _pareto_png(pareto, best), "Pareto front: size against fidelity")
    note = ("<p class='note'>★ marks the best program: the highest fidelity minus "
            f"{_fmt(penalty)} per unit of size.</p>" if penalty else "")
    return _section("Pareto front", f"<div class='pair'><div>{table}{note}</div>"
                                    f"<div>{image}</div></div>", "pareto")


def _grid_section(result: Mapping, best: Mapping, base_dir) -> str:
    data = result.get("data")
    if not isinstance(data, Mapping) or not data.get("domain"):
        return _section("Decision boundary", "<p class='note'>The result names no grid domain: "
                        "rerun <code>synth report</code> with <code>--domain grid:WxH</code> "
                        "(and <code>--labels FILE</code>) to draw the program over the grid "
                        "beside the labels.</p>", "boundary")
    try:
        grid = _GridView.build(data, best, base_dir)
        return _section("Decision boundary", grid.html(), "boundary")
    except Exception as err:
        return _section("Decision boundary", f"<p class='note'>Cannot draw the grid: "
                        f"{_e(type(err).__name__)}: {_e(err)}</p>", "boundary")


class _GridView:
    """The best program and the labels over a grid, ready to draw."""

    @classmethod
    def build(cls, data: Mapping, best: Mapping, base_dir) -> _GridView:
        from dsl.domains import GridDomain, parse_domain
        domain = parse_domain(str(data["domain"]))
        names = tuple(data.get("names") or domain.names)
        domain = GridDomain(tuple(domain.shape), names)
        if len(domain.shape) > 2:
            raise ValueError(f"only 1- and 2-dimensional grids are drawn, not {domain}")
        view = cls()
        view.domain = domain
        view.shape = tuple(domain.shape) if len(domain.shape) == 2 else (1, domain.shape[0])
        view.labels = view.known = None
        if data.get("labels") is not None:
            view.labels = _on_grid(decode_array(data["labels"], base_dir), domain, "labels")
        if data.get("known") is not None:
            view.known = _on_grid(decode_array(data["known"], base_dir), domain,
                                  "known").astype(bool)
        view.pred, view.stride, view.method = _evaluate_grid(best, domain)
        return view

    def html(self) -> str:
        domain, stride = self.domain, self.stride
        notes = [f"Domain <code>{_e(domain)}</code> ({domain.size:,} points); the program "
                 f"was evaluated {_e(self.method)}."]
        if stride != (1, 1):
            notes.append(f"Drawn on every {stride[0]}th x {stride[1]}th point.")
        if self.labels is not None:
            full = self.pred.shape == self.labels.shape
            labels = self.labels if full else self.labels[::stride[0], ::stride[1]]
            wrong = self.pred != labels
            if self.known is not None:
                known = self.known if full else self.known[::stride[0], ::stride[1]]
                n, k = int(known.sum()), int((wrong & known).sum())
                notes.append(f"Labels known on {n:,} queried points; the program "
                             f"disagrees with {k:,} of them ({_pct(k, n)}).")
            else:
                n, k = wrong.size, int(wrong.sum())
                where = "" if full else " (on the drawn points)"
                notes.append(f"The program disagrees with the labels on {k:,} of {n:,} "
                             f"points{where} ({_pct(k, n)}).")
        png = _grid_png(self)
        return "".join(f"<p class='note'>{n}</p>" for n in notes) + _img(
            png, "best program, labels and disagreement over the grid")


def _on_grid(array: np.ndarray, domain, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.size != domain.size:
        raise ValueError(f"{what} hold {array.size:,} values; domain {domain} has "
                         f"{domain.size:,} points")
    shape = tuple(domain.shape) if len(domain.shape) == 2 else (1, domain.shape[0])
    return array.reshape(shape)


def _evaluate_grid(best: Mapping, domain) -> tuple[np.ndarray, tuple[int, int], str]:
    """The program's labels on the grid (full, or strided when large or slow),
    the strides, and how it was evaluated."""
    shape = tuple(domain.shape) if len(domain.shape) == 2 else (1, domain.shape[0])
    names = domain.names
    program = None
    if best.get("expression"):
        try:
            from dsl.parse import parse
            program = parse(best["expression"], {n: t for n, t in domain.input_types.items()})
        except Exception:
            program = None
    compiled = None
    if best.get("python"):
        from dsl.printing import compile_python
        compiled = compile_python(best["python"])
    if program is None and compiled is None:
        raise ValueError("the best candidate has neither an expression nor Python source")

    def axes(stride):
        vals = [np.arange(0, s, st, dtype=np.int64) for s, st in zip(shape, stride)]
        if len(domain.shape) == 1:
            vals = vals[1:]
        mesh = np.meshgrid(*vals, indexing="ij")
        return {n: m.ravel() for n, m in zip(names, mesh)}

    if program is not None and domain.size <= _FULL_GRID:
        env = axes((1, 1))
        with np.errstate(all="ignore"):
            pred = np.asarray(program.evaluate(env)).astype(np.int64)
        if compiled is not None:  # the printed Python is the reference: check a sample
            rows = np.random.default_rng(0).choice(len(pred), min(256, len(pred)), replace=False)
            ref = [int(compiled(*(int(env[n][r]) for n in names))) for r in rows]
            if not np.array_equal(pred[rows], ref):
                program = None
        if program is not None:
            return pred.reshape(shape), (1, 1), "in full, vectorised"
    stride = tuple(max(1, math.ceil(s / _DRAW_SIDE)) for s in shape)
    env = axes(stride)
    sub = tuple(len(range(0, s, st)) for s, st in zip(shape, stride))
    if program is not None:
        with np.errstate(all="ignore"):
            pred = np.asarray(program.evaluate(env)).astype(np.int64)
        return pred.reshape(sub), stride, "vectorised on a sub-grid"
    cols = [env[n].tolist() for n in names]
    pred = np.fromiter((int(compiled(*args)) for args in zip(*cols)), dtype=np.int64,
                       count=len(cols[0]))
    where = "on every point" if stride == (1, 1) else "on a sub-grid"
    return pred.reshape(sub), stride, f"from its Python source, point by point, {where}"


# -- plots ---------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _pareto_png(pareto: Sequence, best: Mapping) -> bytes:
    fig = _figure(5.2, 3.6)
    ax = fig.add_subplot()
    pts = [(c.get("size"), c.get("fidelity"), c.get("holdout_fidelity"), c)
           for c in pareto if _is_num(c.get("size")) and _is_num(c.get("fidelity"))]
    sizes = [p[0] for p in pts]
    ax.step(sizes, [p[1] for p in pts], where="post", color="#2b5d9b", lw=1.2, alpha=0.6)
    ax.plot(sizes, [p[1] for p in pts], "o", color="#2b5d9b", label="fidelity (fitted)")
    held = [(p[0], p[2]) for p in pts if _is_num(p[2])]
    if held:
        ax.plot(*zip(*held), "o", mfc="none", color="#d9822b", label="held-out")
    for i, (size, fid, _, c) in enumerate(pts, 1):
        ax.annotate(str(i), (size, fid), textcoords="offset points", xytext=(4, -11),
                    fontsize=7, color="#555")
        if c.get("python") is not None and c.get("python") == best.get("python"):
            ax.plot([size], [fid], "*", ms=16, color="#c0392b", label="best", zorder=5)
    ax.set_xlabel("program size")
    ax.set_ylabel("fidelity")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _grid_png(view: _GridView) -> bytes:
    from matplotlib.colors import ListedColormap
    pred, labels, known, stride = view.pred, view.labels, view.known, view.stride
    names = view.domain.names
    one_d = len(view.domain.shape) == 1
    binary = ListedColormap(["#f3efe6", "#2b5d9b"])
    panels = 1 if labels is None else 3
    fig = _figure(4.2 * panels, 4.0 if not one_d else 1.8)
    full = labels is not None and pred.shape == labels.shape
    draw_stride = tuple(max(1, math.ceil(s / _DRAW_SIDE)) for s in pred.shape)

    def show(ax, grid, title, cmap, vmin=None, vmax=None):
        ax.imshow(grid.T if not one_d else grid, origin="lower", cmap=cmap, vmin=vmin,
                  vmax=vmax, interpolation="nearest", aspect="auto" if one_d else "equal",
                  extent=_extent(view, one_d))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(names[0])
        if not one_d:
            ax.set_ylabel(names[1])
        else:
            ax.set_yticks([])

    def thin(grid, how="first"):
        if draw_stride == (1, 1):
            return grid
        if how == "any":
            return _block_any(grid, draw_stride)
        return grid[::draw_stride[0], ::draw_stride[1]]

    pmax = max(1, int(pred.max()) if pred.size else 1)
    cmap_p = binary if pmax <= 1 else "viridis"
    show(fig.add_subplot(1, panels, 1), thin(pred), "best program", cmap_p, 0, pmax)
    if labels is not None:
        lab = labels if full else labels[::stride[0], ::stride[1]]
        lmax = max(1, int(lab.max()) if lab.size else 1)
        cmap_l = binary if lmax <= 1 else "viridis"
        wrong = pred != lab
        if known is None:
            show(fig.add_subplot(1, panels, 2), thin(lab), "labels searched on", cmap_l, 0, lmax)
            k = int(wrong.sum())
            show(fig.add_subplot(1, panels, 3), thin(wrong.astype(np.int64), "any"),
                 f"disagreement ({k:,} points)", ListedColormap(["#ffffff", "#c0392b"]), 0, 1)
        else:
            kn = known if full else known[::stride[0], ::stride[1]]
            ax = fig.add_subplot(1, panels, 2)
            show(ax, thin(pred), "queried labels (over the program)",
                 ListedColormap(["#f6f4ef", "#dfe7f2"]), 0, 1)
            xs, ys, vals = _scatter_points(view, kn, lab, stride)
            points = ListedColormap(["#d9822b", "#2b5d9b"]) if lmax <= 1 else "viridis"
            ax.scatter(xs, ys, c=vals, cmap=points, vmin=0, vmax=lmax, s=4, linewidths=0)
            ax = fig.add_subplot(1, panels, 3)
            bad = kn & wrong
            show(ax, thin(pred) * 0.25, f"errors on queried points ({int(bad.sum()):,})",
                 "Greys", 0, 1)
            xs, ys, _ = _scatter_points(view, bad, lab, stride)
            ax.scatter(xs, ys, c="#c0392b", s=6, linewidths=0)
    fig.tight_layout()
    return _png(fig)


def _extent(view: _GridView, one_d: bool):
    if one_d:
        return (-0.5, view.domain.shape[0] - 0.5, 0, 1)
    w, h = view.domain.shape
    return (-0.5, w - 0.5, -0.5, h - 0.5)


def _scatter_points(view: _GridView, mask: np.ndarray, labels: np.ndarray, stride,
                    limit: int = 30_000):
    """Grid coordinates and labels of the points of ``mask`` (a random ``limit`` of them)."""
    idx = np.flatnonzero(mask.ravel())
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(0).choice(idx, limit, replace=False))
    i, j = np.unravel_index(idx, mask.shape)
    values = labels.ravel()[idx]
    if len(view.domain.shape) == 1:
        return j * stride[1], np.full(len(j), 0.5), values
    return i * stride[0], j * stride[1], values


def _block_any(grid: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Max-pool a 0/1 grid by ``block`` (thin lines of errors stay visible when drawn small)."""
    bx, by = block
    h, w = grid.shape
    padded = np.zeros((math.ceil(h / bx) * bx, math.ceil(w / by) * by), dtype=grid.dtype)
    padded[:h, :w] = grid
    return padded.reshape(padded.shape[0] // bx, bx, padded.shape[1] // by, by).max(axis=(1, 3))


# -- image programs ------------------------------------------------------------------
def _image_sections(images: Mapping, base_dir) -> list[str]:
    """Templates, feature histograms with thresholds, and images near the boundary."""
    count = images.get("count")
    held = f" over {_fmt(count)} held-out images" if _is_num(count) else ""
    out = []
    templates = images.get("templates") or {}
    if templates:
        out.append(_section("Templates", "<p class='note'>The constant images the program "
                            "compares with (blue negative, red positive).</p>" + _plot(
                                lambda: _templates_png(templates, base_dir), "templates"),
                            "templates"))
    features = [f for f in images.get("features") or [] if isinstance(f, Mapping)]
    if features:
        out.append(_section("Features and thresholds", f"<p class='note'>Each feature{held}, "
                            "by the network's label; dashed lines are the program's "
                            "thresholds.</p>" + _plot(lambda: _histograms_png(features),
                                                      "feature histograms"), "features"))
    near = [e for e in images.get("near_boundary") or [] if isinstance(e, Mapping)]
    if near:
        captions = [f"{_fmt(e.get('value'))}\nnet {e.get('network')} / prog "
                    f"{e.get('program')}" for e in near]
        out.append(_section("Examples near the boundary", "<p class='note'>The held-out "
                            "images whose feature lies nearest a threshold: the feature's "
                            "value, the network's label and the program's.</p>" + _plot(
                                lambda: _pictures_png([decode_image(e["image"], base_dir)
                                                       for e in near], captions), "examples"),
                            "near-boundary"))
    return out


def _plot(draw, alt: str) -> str:
    """A drawn plot, or a note saying why there is none (a plot is a nicety)."""
    try:
        return _img(draw(), alt)
    except Exception as err:
        return f"<p class='note'>No plot: {_e(type(err).__name__)}: {_e(err)}</p>"


def _templates_png(templates: Mapping, base_dir) -> bytes:
    arrays = {name: decode_array(ref, base_dir) for name, ref in templates.items()}
    fig = _figure(2.6 * len(arrays), 2.7)
    for k, (name, arr) in enumerate(arrays.items(), 1):
        ax = fig.add_subplot(1, len(arrays), k)
        bound = float(np.abs(arr).max()) or 1.0
        shown = ax.imshow(arr, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(fig)


def _histograms_png(features: Sequence[Mapping]) -> bytes:
    colours = {"0": "#d9822b", "1": "#2b5d9b"}
    fig = _figure(5.0 * len(features), 3.2)
    for k, entry in enumerate(features, 1):
        ax = fig.add_subplot(1, len(features), k)
        edges = np.asarray(entry["edges"], dtype=np.float64)
        for label, counts in (entry.get("counts") or {}).items():
            ax.stairs(counts, edges, fill=True, alpha=0.45, color=colours.get(label),
                      label=f"network label {label}")
        for t in entry.get("thresholds") or []:
            ax.axvline(t, color="#c0392b", ls="--", lw=1.2)
        ax.set_title(_short(entry.get("feature", ""), 60), fontsize=9)
        ax.set_ylabel("images")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _pictures_png(pictures: Sequence[np.ndarray], captions: Sequence[str],
                  per_row: int = 8) -> bytes:
    rows = math.ceil(len(pictures) / per_row)
    cols = min(per_row, len(pictures))
    fig = _figure(1.45 * cols, 1.75 * rows)
    for k, (picture, caption) in enumerate(zip(pictures, captions), 1):
        ax = fig.add_subplot(rows, cols, k)
        ax.imshow(picture, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(caption, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _png(fig)


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- decodability and causal tests --------------------------------------------------
#: Keys of a decodability result (synth.evidence.decodability), drawn in their own section.
_DECODABILITY = ("method", "rows", "layers", "features", "control", "atoms")


def _has_decodability(evidence: Mapping) -> bool:
    return isinstance(evidence.get("layers"), list) and isinstance(evidence.get("features"),
                                                                   list)


def _causal_reports(evidence: Mapping) -> list[Mapping]:
    reports = evidence.get("causal")
    if not isinstance(reports, list):
        return []
    return [r for r in reports if isinstance(r, Mapping) and isinstance(r.get("tests"), list)]


def _evidence_shown(evidence: Mapping) -> set[str]:
    """Keys of the evidence that have sections of their own."""
    shown = set(_DECODABILITY) if _has_decodability(evidence) else set()
    return shown | ({"causal"} if _causal_reports(evidence) else set())


def _decodability_section(evidence: Mapping) -> str:
    if not _has_decodability(evidence):
        return ""
    rows = evidence.get("rows") or {}
    note = (f"<p class='note'>{_e(evidence.get('method', ''))}; fitted on "
            f"{_e(_fmt(rows.get('train')))} images, scored on {_e(_fmt(rows.get('test')))} "
            f"others.</p>")
    table = render_value({k: evidence[k] for k in ("features", "control", "atoms")
                          if k in evidence})
    return _section("Decodability from each layer", note + _plot(
        lambda: _decodability_png(evidence), "decodability by layer") + table, "decodability")


def _decodability_png(evidence: Mapping) -> bytes:
    layers = list(evidence["layers"])
    atoms = [a for a in evidence.get("atoms") or [] if isinstance(a.get("accuracy"), Mapping)]
    panels = 2 if atoms else 1
    fig = _figure(5.5 * panels, 3.4)
    ax = fig.add_subplot(1, panels, 1)
    for entry in evidence["features"]:
        ax.plot(layers, [entry["r2"].get(n) for n in layers], "o-",
                label=_short(entry["feature"], 40))
    if isinstance(evidence.get("control"), Mapping):
        ax.plot(layers, [evidence["control"]["r2"].get(n) for n in layers], "--", color="#888",
                label="control (shuffled)")
    _layer_axis(ax, "features: held-out R^2")
    if atoms:
        ax = fig.add_subplot(1, panels, 2)
        for entry in atoms:
            line, = ax.plot(layers, [entry["accuracy"].get(n) for n in layers], "o-",
                            label=_short(entry["atom"], 40))
            ax.axhline(entry.get("majority", 0.5), color=line.get_color(), ls=":", lw=1)
        _layer_axis(ax, "atoms: held-out accuracy (dotted: majority)")
    fig.tight_layout()
    return _png(fig)


def _layer_axis(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _causal_section(evidence: Mapping) -> str:
    reports = _causal_reports(evidence)
    if not reports:
        return ""
    parts = ["<p class='note'>Inputs edited so that the program's atoms (or features) "
             "change; counterfactual fidelity is the share of edited inputs on which the "
             "network's label is the program's. The control makes edits of the same size in "
             "random directions.</p>"]
    if _is_num(evidence.get("evidence_score")):
        parts.append(f"<p>Evidence score (used to break ties between equally faithful "
                     f"programs): <b>{_e(_fmt(evidence['evidence_score']))}</b></p>")
    for rep in reports:
        edits, control = rep.get("edits") or {}, rep.get("control") or {}
        items = [("counterfactual fidelity", rep.get("counterfactual_fidelity")),
                 ("edits", edits.get("n")),
                 ("network label changed", edits.get("network_changes")),
                 ("program label changed", edits.get("program_changes")),
                 ("control: network label changed", control.get("network_changes")),
                 ("control: fidelity", control.get("fidelity"))]
        boxes = "".join(f"<div class='kv'><span>{_e(k)}</span><b>{_e(_fmt(v))}</b></div>"
                        for k, v in items)
        parts.append(f"<h3>{_e(str(rep.get('kind', 'test')).capitalize())} on "
                     f"{_e(rep.get('network', 'the network'))}</h3><div class='summary'>"
                     f"{boxes}</div><p class='note'>{_e(rep.get('method', ''))}</p>"
                     f"<div class='wide'>{render_value(rep['tests'])}</div>")
        examples = [e for e in rep.get("examples") or [] if isinstance(e, Mapping)]
        if examples:
            captions = []
            for e in examples:
                net, prog = e.get("network", ["?", "?"]), e.get("program", ["?", "?"])
                captions += [f"before\nnet {net[0]} / prog {prog[0]}",
                             f"after\nnet {net[1]} / prog {prog[1]}"]
            parts.append("<p class='note'>Edited images whose program label changed "
                         "(before and after).</p>" + _plot(
                             lambda: _pictures_png([decode_image(e[k]) for e in examples
                                                    for k in ("original", "edited")], captions),
                             "edited images"))
    return _section("Causal tests", "".join(parts), "causal")


# -- generic rendering -----------------------------------------------------------------
def render_value(value, depth: int = 0) -> str:
    """HTML for any JSON value: scalars inline, dicts and lists as (nested) tables."""
    if _is_scalar(value):
        return _scalar(value)
    if depth > 8:
        return f"<pre class='json'>{_e(_short_json(value))}</pre>"
    if isinstance(value, Mapping):
        if not value:
            return "<span class='muted'>(empty)</span>"
        matrix = _matrix_of_dicts(value)
        if matrix is not None:
            return matrix
        rows = []
        for k, v in value.items():
            inner = render_value(v, depth + 1)
            if not _is_scalar(v) and _bulky(v):
                inner = (f"<details{' open' if depth < 1 else ''}><summary>{_e(_describe(v))}"
                         f"</summary>{inner}</details>")
            rows.append(f"<tr><th>{_e(k)}</th><td>{inner}</td></tr>")
        return f"<table class='kvt'><tbody>{''.join(rows)}</tbody></table>"
    if isinstance(value, (list, tuple)):
        if not value:
            return "<span class='muted'>(none)</span>"
        if all(_is_scalar(v) for v in value):
            shown = ", ".join(_scalar(v) for v in value[:_MAX_INLINE])
            more = len(value) - _MAX_INLINE
            extra = ""
            if more > 0:
                extra = f" <span class='muted'>… {more:,} more"
                nums = [v for v in value if _is_num(v)]
                if len(nums) == len(value):
                    extra += (f" (min {_e(_fmt(min(nums)))}, mean "
                              f"{_e(_fmt(sum(nums) / len(nums)))}, max {_e(_fmt(max(nums)))})")
                extra += "</span>"
            return f"<span class='list'>[{shown}]{extra}</span>"
        if all(isinstance(v, Mapping) for v in value):
            return _records_table(value, depth)
        if all(isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v) for v in value):
            return _rows_table(value)
        items = "".join(f"<li>{render_value(v, depth + 1)}</li>" for v in value[:_MAX_ROWS])
        more = len(value) - _MAX_ROWS
        tail = f"<li class='muted'>… {more:,} more</li>" if more > 0 else ""
        return f"<ol class='items'>{items}{tail}</ol>"
    return _e(repr(value))


def _records_table(records: Sequence[Mapping], depth: int) -> str:
    """One row per record; a field that is a small dict of scalars in every record
    (``{"r2": {layer: value}}``) spreads over one column per key."""
    columns: list[tuple[str, str | None]] = []
    for r in records:
        for k in r:
            if any(c[0] == k for c in columns):
                continue
            keys = _spread_keys(records, k)
            columns += [(k, sub) for sub in keys] if keys else [(k, None)]
    head = "".join(f"<th>{_e(k if sub is None else f'{k}: {sub}')}</th>" for k, sub in columns)
    body = []
    for r in records[:_MAX_ROWS]:
        cells = []
        for k, sub in columns:
            present = k in r and (sub is None or sub in (r[k] or {}))
            v = r.get(k) if sub is None else (r.get(k) or {}).get(sub)
            cls = " class='num'" if _is_num(v) else ""
            cells.append(f"<td{cls}>{render_value(v, depth + 1) if present else ''}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = len(records) - _MAX_ROWS
    foot = (f"<tfoot><tr><td colspan='{len(columns)}' class='muted'>… {more:,} more rows"
            f"</td></tr></tfoot>" if more > 0 else "")
    return (f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody>{foot}</table>")


def _spread_keys(records: Sequence[Mapping], key: str) -> list[str] | None:
    """The keys of field ``key`` when it is a small dict of scalars wherever present."""
    keys: list[str] = []
    for r in records:
        v = r.get(key)
        if v is None:
            continue
        if not isinstance(v, Mapping) or not v or not all(_is_scalar(x) for x in v.values()):
            return None
        keys += [k for k in v if k not in keys]
    return keys if 0 < len(keys) <= 12 else None


def _rows_table(rows: Sequence[Sequence]) -> str:
    width = max(len(r) for r in rows)
    if width > 40:
        return f"<span class='muted'>{len(rows):,} x {width:,} array</span>"
    body = "".join("<tr>" + "".join(f"<td class='num'>{_scalar(v)}</td>" for v in r) + "</tr>"
                   for r in rows[:_MAX_ROWS])
    more = len(rows) - _MAX_ROWS
    tail = (f"<tr><td colspan='{width}' class='muted'>… {more:,} more rows</td></tr>"
            if more > 0 else "")
    return f"<table class='matrix'><tbody>{body}{tail}</tbody></table>"


def _matrix_of_dicts(value: Mapping) -> str | None:
    """``{row: {column: scalar}}`` with shared columns as one table, or None."""
    if len(value) < 2 or not all(isinstance(v, Mapping) and v and
                                 all(_is_scalar(x) for x in v.values())
                                 for v in value.values()):
        return None
    columns: list[str] = []
    for v in value.values():
        for k in v:
            if k not in columns:
                columns.append(k)
    if len(columns) > 12 or any(len(v) * 2 < len(columns) for v in value.values()):
        return None
    head = "<th></th>" + "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{_e(k)}</th>" + "".join(
            f"<td class='num'>{_scalar(v[c]) if c in v else ''}</td>" for c in columns) + "</tr>"
        for k, v in value.items())
    return f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bulky(value) -> bool:
    text = _short_json(value, limit=400)
    return len(text) >= 400


def _describe(value) -> str:
    if isinstance(value, Mapping):
        return f"{len(value):,} entries"
    return f"{len(value):,} items"


def _short_json(value, limit: int = 4000) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + " …"


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(value) -> str:
    if value is None:
        return "<span class='muted'>–</span>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        more = ""
        if len(value) > _MAX_TEXT:
            more = f"<span class='muted'>… {len(value) - _MAX_TEXT:,} more characters</span>"
            value = value[:_MAX_TEXT]
        if "\n" in value or len(value) > 160:
            return f"<pre class='code'><code>{_e(value)}</code></pre>{more}"
        return _e(value) + more
    return _e(_fmt(value))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            text = f"{value:.4f}".rstrip("0").rstrip(".")
            return text if text not in ("", "-0") else "0"
        return f"{value:.3g}"
    return str(value)


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.3f}%" if n else "-"


def _title_of(key: str) -> str:
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img class='plot' alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def _section(title: str, body: str, anchor: str) -> str:
    return f"<section id='{_e(anchor)}'><h2>{_e(title)}</h2>{body}</section>"


_CSS = """
:root { --ink: #1d2330; --muted: #6b7280; --line: #e3e0d8; --accent: #2b5d9b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1400px; background: #fbfaf7; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; }
.kv { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.kv span { display: block; color: var(--muted); font-size: 12px; }
.kv b { font-weight: 600; }
pre.code { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
  overflow: auto; max-height: 560px; margin: 4px 0; }
code, pre { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
table { border-collapse: collapse; background: #fff; margin: 4px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #f1eee7; cursor: pointer; user-select: none; }
table.kvt > tbody > tr > th { background: #f7f5f0; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fdf3e7; font-weight: 600; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
img.plot { max-width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.note, .muted { color: var(--muted); } .note { margin: 4px 0; }
details > summary { cursor: pointer; color: var(--accent); }
ol.items { margin: 0; padding-left: 22px; }
.wide { overflow-x: auto; max-width: 100%; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""

_SCRIPT = """
(function () {
  function key(cell) {
    var t = cell.textContent.trim().replace(/,/g, '');
    var n = parseFloat(t);
    return isNaN(n) || !/^[-+]?[0-9.]/.test(t) ? t.toLowerCase() : n;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var asc = th.getAttribute('data-dir') !== 'asc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col] ? key(a.cells[col]) : '', y = b.cells[col] ? key(b.cells[col]) : '';
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute('data-dir', asc ? 'asc' : 'desc');
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var head = table.tHead;
    if (!head || !head.rows.length) { return; }
    Array.prototype.forEach.call(head.rows[0].cells, function (th, col) {
      th.title = 'sort';
      th.addEventListener('click', function () { sortBy(table, col, th); });
    });
  });
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img');
    var ok = 0;
    imgs.forEach(function (img) { if (img.complete && img.naturalWidth > 0) { ok += 1; } });
    document.body.setAttribute('data-images', ok + '/' + imgs.length);
    document.body.setAttribute('data-rendered', 'ok');
  });
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{heading}</h1>
<p class="sub">synth search result</p>
{body}
<footer>Written by <code>synth report</code> on {stamp}.
Self-contained: no external resources.</footer>
<script>{script}</script>
</body>
</html>
"""
