"""The ``images`` suite (issue 5): hidden programs over MNIST test images.

A hidden image program is a Python expression over one image ``image`` (an
(H, W) float array in [0, 1]) with numpy as ``np``, ``scipy.ndimage`` as
``ndimage`` and ``MEAN`` -- the class means of the data set, ``MEAN[d]`` the
mean image of digit ``d`` -- e.g. ``image[14:].sum() > 50``; or a ``.py``
file defining ``label(image)``.  Expressions are checked before they run: a
whitelist of syntax, of names and of attribute names (no underscores), and
no builtins.

For each task (:func:`run_image_task`):

1. the hidden program labels every image (the truth);
2. a network of the challenge-1 CNN architecture (``casper-cnn``) is trained
   from a seed on a fixed half of the images, on the truth (cached outside
   the repository, see :func:`benchmarks.train_cli.cached_image_network`);
3. the engine (:func:`synth.image_search.recover_image_program`, data and
   network templates) searches the *network's* labels on every image, blind;
4. the recovered program is scored against the hidden one on the images the
   network never trained on: ``exact`` when it agrees on at least
   ``EXACT_AGREEMENT`` (99.5%) of them.

Peers (same labels, fit rows, budget): ``tree-pixels``, a decision tree on
the raw pixels; ``tree-features``, a decision tree on the engine's scalar
features (with the templates the engine searched); ``gplearn``, genetic
programming on those same features.  Trees take the smallest depth within
0.1% of the best 3-fold cross-validated accuracy (up to 12).
"""
from __future__ import annotations

import ast
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import CodeType

import numpy as np

from benchmarks.programs import parse_expression
from benchmarks.train_cli import ImageTrainSettings

#: Image domains hidden programs and networks are defined on (28x28: the CNN's input).
IMAGE_DOMAINS = ("mnist",)
#: Agreement with the hidden program, on the images the network did not train on,
#: that counts as exact recovery.
EXACT_AGREEMENT = 0.995
IMAGE_PEERS = ("tree-pixels", "tree-features", "gplearn")

_NAMES = ("image", "np", "ndimage", "MEAN")
_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub, ast.Mult,
          ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult, ast.BitAnd, ast.BitOr,
          ast.UnaryOp, ast.USub, ast.UAdd, ast.Not, ast.Invert, ast.Compare, ast.Lt, ast.LtE,
          ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.IfExp, ast.Call, ast.keyword, ast.Attribute,
          ast.Subscript, ast.Slice, ast.Tuple, ast.Name, ast.Load, ast.Constant)
#: Attributes a hidden image program may read: numpy / scipy.ndimage functions and
#: array methods.  Nothing that reads or writes files.
_ATTRIBUTES = frozenset((
    "sum", "mean", "max", "min", "std", "var", "median", "abs", "sqrt", "square", "exp", "log",
    "arange", "linspace", "ones", "zeros", "pad", "where", "clip", "round", "count_nonzero",
    "maximum", "minimum", "hypot", "dot", "outer", "flip", "fliplr", "flipud", "argmax",
    "argmin", "any", "all", "astype", "ravel", "reshape", "cumsum", "diff", "sort", "T",
    "shape", "size", "linalg", "norm", "logical_and", "logical_or", "logical_not", "label",
    "binary_erosion", "binary_dilation", "binary_fill_holes", "center_of_mass"))


# ---------------------------------------------------------------------------
# Hidden programs over images.

@dataclass(frozen=True)
class ImageProgram:
    """A checked hidden program over one image: an expression or a ``label`` function."""

    source: str
    tree: ast.Expression | None = field(default=None, repr=False, compare=False)
    code: CodeType | None = field(default=None, repr=False, compare=False)
    function: Callable | None = field(default=None, repr=False, compare=False)

    @property
    def atoms(self) -> int:
        """Leaf comparisons, counted as for grid programs (0 for files)."""
        from benchmarks.programs import HiddenProgram
        return HiddenProgram(self.source, ("image",), tree=self.tree).atoms if self.tree else 0

    def evaluate(self, images: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
        """Labels (int64 0/1) of each image; ``classes`` (digit of each image)
        define ``MEAN``, which a program reading it needs."""
        from benchmarks.programs import _as_labels

        arr = np.asarray(images, dtype=np.float64)
        if arr.ndim != 3:
            raise ValueError(f"images must be (N, H, W), got shape {arr.shape}")
        scope = {"np": np, "ndimage": _ndimage(), "MEAN": _MissingMeans()}
        if classes is not None:
            scope["MEAN"] = class_means(arr, classes)
        values = np.empty(len(arr), dtype=object)
        for i, image in enumerate(arr):
            try:
                values[i] = (self.function(image) if self.function is not None else
                             eval(self.code, _GLOBALS, {**scope, "image": image}))
            except Exception as err:
                raise ValueError(f"hidden program {self.source!r} failed on image {i}: "
                                 f"{type(err).__name__}: {err}") from None
        return _as_labels(values, self.source)


#: Globals of an expression: no builtins but ``__import__``, which numpy's C code looks
#: up in the running frame for its own lazy imports (the checker keeps the expression
#: itself to its whitelisted names).
_GLOBALS = {"__builtins__": {"__import__": __import__}}


class _MissingMeans:
    def __getitem__(self, key):
        raise ValueError("MEAN needs the digit classes of the images")


def _ndimage():
    import scipy.ndimage
    return scipy.ndimage


def class_means(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``MEAN``: (10, H, W), the mean image of each digit 0..9 (zeros for an absent digit)."""
    arr = np.asarray(images, dtype=np.float64)
    classes = np.asarray(classes)
    if classes.shape != (len(arr),):
        raise ValueError(f"classes must have shape ({len(arr)},), got {classes.shape}")
    return np.stack([arr[classes == d].mean(axis=0) if (classes == d).any()
                     else np.zeros(arr.shape[1:]) for d in range(10)])


class _Checker(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: ast.AST, why: str):
        raise ValueError(f"hidden image program {self.source!r}: {why} "
                         f"(at {ast.unparse(node)!r})")

    def generic_visit(self, node: ast.AST):
        if not isinstance(node, _NODES):
            self.fail(node, f"unsupported syntax {type(node).__name__}; allowed: arithmetic, "
                            f"comparisons, and/or/not, & | ~, indexing, calls, numbers")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name):
        if node.id not in _NAMES:
            self.fail(node, f"unknown name {node.id!r}; a hidden image program reads "
                            f"{', '.join(_NAMES)}")

    def visit_Attribute(self, node: ast.Attribute):
        if node.attr not in _ATTRIBUTES:
            self.fail(node, f"attribute {node.attr!r} is not allowed; allowed: "
                            f"{', '.join(sorted(_ATTRIBUTES))}")
        self.visit(node.value)

    def visit_Constant(self, node: ast.Constant):
        if not isinstance(node.value, (bool, int, float, str, type(None))):
            self.fail(node, f"unsupported literal {node.value!r}")


def parse_image_program(source: str) -> ImageProgram:
    """Check the expression ``source`` over ``image``; ValueError naming the problem."""
    text, tree = parse_expression(source, "hidden image program")
    _Checker(text).visit(tree)
    return ImageProgram(text, tree, compile(tree, "<hidden image program>", "eval"))


def load_image_program(spec: str) -> ImageProgram:
    """An expression, or the path of a ``.py`` file defining ``label(image)``."""
    if spec.strip().endswith(".py"):
        from synth.user_code import import_user_file
        path = Path(spec.strip())
        module = import_user_file(path, f"synth_hidden_image_{abs(hash(str(path)))}",
                                  "hidden image program")
        if not callable(getattr(module, "label", None)):
            raise ValueError(f"hidden image program file {path} must define label(image)")
        return ImageProgram(str(path), function=module.label)
    return parse_image_program(spec)


# ---------------------------------------------------------------------------
# Running a task.

@dataclass(frozen=True)
class ImageBenchSettings:
    """How image tasks run (recorded with each result): the images (a seeded
    subset of ``max_images``, or all), the network recipe, and the engine's
    program size limit and template refinement (0: templates as they come;
    refined templates are fitted to the network's labels and copy its
    mistakes, see :mod:`synth.image_search`), and the leaves of the decision
    trees grown past that limit (0: none), which the answer never is but the
    comparison with peers at their sizes reads."""

    max_images: int | None = None
    max_size: int = 20
    refine: int = 0
    tree_leaves: int = 0
    train: ImageTrainSettings = field(default_factory=ImageTrainSettings)

    def __post_init__(self) -> None:
        if self.max_images is not None and self.max_images < 50:
            raise ValueError(f"an image task needs at least 50 images, got {self.max_images}")
        if self.max_size < 4:
            raise ValueError(f"max_size must be at least 4, got {self.max_size}")
        if self.tree_leaves < 0:
            raise ValueError(f"tree_leaves must be 0 (no trees) or more, got {self.tree_leaves}")

    def to_json(self) -> dict:
        return asdict(self)


class ImageRun:
    """One image task: the truth, the network's labels, then the engine and peers on them."""

    def __init__(self, task, config) -> None:
        from benchmarks.train_cli import cached_image_network, train_split
        from oracles.torch_oracle import TorchOracle
        from synth.image_search import load_domain_images

        self.config = config
        self.settings = config.images or ImageBenchSettings()
        if task.domain not in IMAGE_DOMAINS:
            raise ValueError(f"image tasks run on {IMAGE_DOMAINS}, not {task.domain!r}")
        self.images, self.classes = load_domain_images(task.domain, self.settings.max_images,
                                                       config.seed)
        self.truth = task.hidden().evaluate(self.images, self.classes)
        n = len(self.images)
        self.unseen = np.setdiff1d(np.arange(n), train_split(
            n, self.settings.train.seed, self.settings.train.train_fraction))
        self.oracle, self.report = None, None
        if config.source == "labels":
            self.labels, self.network = self.truth, None
            return
        start = time.perf_counter()
        root = Path(config.cache_dir) if config.cache_dir else None
        path, info = cached_image_network(task.program, self.images, self.truth,
                                          self.settings.train, root)
        self.oracle = TorchOracle.from_file(path)
        self.labels = self.oracle.labels({"image": self.images})
        self.network = {"checkpoint": str(path), **info,
                        "oracle_agreement": self._agreement(self.labels),
                        "oracle_agreement_all": self._agreement(self.labels, slice(None)),
                        "load_seconds": time.perf_counter() - start}

    def _agreement(self, pred: np.ndarray, rows: np.ndarray | None = None) -> float | None:
        """Agreement with the hidden program on ``rows`` (default: the images the
        network did not train on); None when the program is secret."""
        if self.truth is None:
            return None
        rows = self.unseen if rows is None else rows
        return float(np.mean(pred[rows] == self.truth[rows]))

    def score(self, method: str, pred: np.ndarray, seconds: float, cpu: float, **extra) -> dict:
        """A result row: fidelity to the labels searched, agreement with the hidden
        program on the images the network did not train on (and on all)."""
        from benchmarks.runner import _load
        from synth.image_search import search_split

        pred = np.asarray(pred).astype(np.int64)
        fit_rows, hold_rows = search_split(len(pred), self.config.seed)
        agreement = self._agreement(pred)
        return {"method": method, **extra, "fidelity": float(np.mean(pred == self.labels)),
                "fit_fidelity": float(np.mean(pred[fit_rows] == self.labels[fit_rows])),
                "holdout_fidelity": float(np.mean(pred[hold_rows] == self.labels[hold_rows])),
                "holdout_rows": len(hold_rows), "agreement": agreement, "agreement_all": self._agreement(pred, slice(None)),
                "exact": None if agreement is None else agreement >= EXACT_AGREEMENT,
                "seconds": seconds, "cpu_seconds": cpu, "load": _load(), "error": None}

    def engine(self) -> dict:
        from benchmarks.runner import front_rows
        from synth.image_search import atoms_within, recover_image_program

        s, start, cpu = self.settings, time.perf_counter(), time.process_time()
        options = {"max_atoms": atoms_within(s.max_size), **self.config.synth_options}
        self.report = recover_image_program(
            self.images, self.labels, oracle=self.oracle, classes=self.classes,
            time_limit=self.config.time_limit, max_size=s.max_size, refine=s.refine,
            tree_leaves=s.tree_leaves, evidence=False, seed=self.config.seed, **options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        best, stats = self.report.best, self.report.result.stats
        pred = best.program.evaluate({"image": np.asarray(self.images, dtype=np.float64)})
        return self.score("synth", pred, seconds, cpu, program=str(best.program),
                          python=best.python, size=best.size,
                          programs_evaluated=stats.programs_evaluated,
                          programs_per_second=stats.programs_per_second,
                          template_sources=self.report.sources(),
                          timings=self.report.timings,
                          front=front_rows(self.report.result.pareto, self.report.beyond,
                                           self.report.result.as_fitted))

    def feature_columns(self) -> tuple[np.ndarray, list]:
        """The engine's scalar features (with the templates it searched) on every image,
        and those features (programs)."""
        from synth.image_search import build_template_bank, search_features

        if self.report is not None:
            templates = [s.template for s in self.report.screened[:40]]
        else:
            templates = build_template_bank(self.images, self.labels, oracle=self.oracle,
                                            classes=self.classes, refine=self.settings.refine,
                                            seed=self.config.seed).chosen(40)
        features = search_features(templates)
        env = {"image": np.asarray(self.images, dtype=np.float64)}
        with np.errstate(all="ignore"):
            columns = np.stack([np.asarray(f.evaluate(env), dtype=np.float64)
                                for f in features], axis=1)
        return np.where(np.isfinite(columns), columns, 0.0), list(features)

    def peer(self, name: str) -> dict:
        from benchmarks.casper_mnist import gplearn_peer, tree_peer
        from synth.image_search import search_split

        if name not in IMAGE_PEERS:
            raise ValueError(f"unknown image peer {name!r}; known: {', '.join(IMAGE_PEERS)}")
        start, cpu = time.perf_counter(), time.process_time()
        if name == "tree-pixels":
            x, what = self.images.reshape(len(self.images), -1).astype(np.float64), "pixels"
            sizes = None  # a pixel counts 1 node
        else:
            x, features = self.feature_columns()
            what, sizes = f"{len(features)} engine features", [f.size for f in features]
        fit_rows, _ = search_split(len(x), self.config.seed)
        budget = max(1.0, self.config.time_limit - (time.perf_counter() - start))
        if name == "gplearn":
            try:
                fit = gplearn_peer(x, [f"f{i}" for i in range(x.shape[1])], self.labels,
                                   fit_rows, time_limit=budget, seed=self.config.seed,
                                   feature_sizes=sizes)
            except ImportError as err:
                return {"method": name, "error": f"gplearn is not installed ({err}); "
                                                 f"pip install -e .[peers]"}
        else:
            fit = tree_peer(x, self.labels, fit_rows, depth=None, time_limit=budget,
                            seed=self.config.seed, what=what, feature_sizes=sizes)
        pred = fit.pop("predictions")
        fit.pop("seconds")
        return self.score(name, pred, time.perf_counter() - start, time.process_time() - cpu,
                          programs_evaluated=None, programs_per_second=None, **fit)


__all__ = ["IMAGE_DOMAINS", "EXACT_AGREEMENT", "IMAGE_PEERS", "ImageProgram", "class_means",
           "parse_image_program", "load_image_program", "ImageBenchSettings", "ImageRun"]
