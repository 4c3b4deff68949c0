"""Image inputs: template constants and scalar image features.

Images are grayscale float arrays in [0, 1]: one image is (H, W), a batch is
(N, H, W), read from the input named ``image`` (type ``IMAGE``).  A program
over images reads scalar features of the input and compares them, e.g.
``0.2 < ink_in_cell(image, 0, 1) and dot(image, T_mean_3) > 3.1``.

* :class:`Template` is a constant image (a class mean, a principal
  component, an exemplar, a hint file).  Printed Python defines it once as a
  module-level ``T_<name> = np.array([...], dtype=float)``.
* Every feature is a registered primitive ``IMAGE (, ...) -> REAL`` (counts
  are ``INT``), vectorised over the batch, and prints as a call to a
  self-contained helper computing the same value on ONE (H, W) array with
  numpy (and ``scipy.ndimage`` for components, holes and thickness).
  Feature implementations take any leading batch shape: an ``IMAGE``
  argument may be the input (N, H, W) or a Template (H, W).

Conventions shared by the vectorised code and the helpers:

* rows and columns are 0-based pixel indices; ink is the pixel value;
* a blank image (no ink) has its centroid at the geometric centre and zero
  moments, orientation, thickness and cosine similarity: features are total;
* binarised features (components, holes, thickness) use ``pixel > 0.5``;
  ink components are 8-connected, background components (holes)
  4-connected, the dual connectivity that makes a diagonal ring enclose its
  hole;
* the grid of ``ink_in_cell`` splits rows (and columns) so that row ``r`` of
  ``H`` lies in cell ``r * G // H``: a partition for every image size.
  Indices outside ``0..G-1`` select an empty cell (0.0).
"""
from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.ndimage
import sympy

from dsl.primitives import REGISTRY, Primitive, primitive
from dsl.program import Apply, Const, Program, Var
from dsl.types import IMAGE, INT, REAL, Type

#: Decimals kept in template pixels: printed literals stay short and readable,
#: and printed and vectorised evaluation use the very same values.
TEMPLATE_DECIMALS = 3
#: Default grid of ``ink_in_cell``, ``ink_in_row_band`` and ``ink_in_col_band``.
GRID = 4
#: Threshold of binarised features: a pixel is ink when its value exceeds it.
BINARY_THRESHOLD = 0.5

_NP = ("numpy as np",)
_NP_NDIMAGE = ("numpy as np", "scipy.ndimage")


def _round_pixel(v: float) -> float:
    # Through the decimal string, so that the printed literal parses back to
    # exactly this float; "+ 0.0" turns -0.0 into 0.0.
    return float(f"{v:.{TEMPLATE_DECIMALS}f}") + 0.0


# ---------------------------------------------------------------------------
# Template: a constant image.

@dataclass(frozen=True)
class Template(Program):
    """A constant (H, W) image; pixels rounded to ``TEMPLATE_DECIMALS`` decimals.

    Pixels are stored as float64 bytes so the node hashes and compares by
    value (name and source included).  Build one with :meth:`from_array`.
    ``name`` must make ``T_<name>`` an identifier: the printed constant.
    ``source`` records where it came from ("class-mean:3", "pca:0", "hint").
    """

    name: str
    pixels: bytes = field(repr=False)
    shape: tuple[int, int]
    source: str = ""

    #: Modules the printed constant needs (read by ``dsl.printing``).
    imports = _NP

    def __post_init__(self) -> None:
        if not self.identifier.isidentifier() or keyword.iskeyword(self.identifier):
            raise ValueError(f"template name {self.name!r} does not make an identifier "
                             f"T_{self.name}")
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ValueError(f"template {self.name!r}: shape must be (H, W) with H, W >= 1, "
                             f"got {self.shape}")
        values = np.frombuffer(self.pixels, dtype=np.float64)
        if values.size != self.shape[0] * self.shape[1]:
            raise ValueError(f"template {self.name!r}: {values.size} pixels do not fill "
                             f"shape {self.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"template {self.name!r} has NaN or inf pixels")
        rounded = np.array([_round_pixel(v) for v in values.tolist()], dtype=np.float64)
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        object.__setattr__(self, "pixels", rounded.tobytes())

    @classmethod
    def from_array(cls, array: np.ndarray, name: str, source: str = "") -> Template:
        """A template of a 2-D array (its pixels get rounded)."""
        arr = np.asarray(array, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"template {name!r} must be 2-D (H, W), got shape {arr.shape}")
        return cls(name=name, pixels=np.ascontiguousarray(arr).tobytes(),
                   shape=arr.shape, source=source)

    @property
    def type(self) -> Type:  # type: ignore[override]
        return IMAGE

    @property
    def size(self) -> int:
        return 1

    @cached_property
    def array(self) -> np.ndarray:
        """The pixels as a read-only (H, W) float64 array."""
        return np.frombuffer(self.pixels, dtype=np.float64).reshape(self.shape)

    @property
    def identifier(self) -> str:
        """Name of the constant in printed Python."""
        return f"T_{self.name}"

    def _eval(self, env):
        return self.array

    # Printing hooks read by dsl.printing.
    def python_expression(self) -> str:
        return self.identifier

    def python_definition(self) -> str:
        rows = ",\n".join("    [" + ", ".join(repr(v) for v in row) + "]"
                          for row in self.array.tolist())
        return f"{self.identifier} = np.array([\n{rows},\n], dtype=float)"

    def sympy_expression(self) -> sympy.Basic:
        return sympy.Symbol(self.identifier)


# ---------------------------------------------------------------------------
# Shared vectorised pieces.  Arrays are (..., H, W); results (...).

def _as_images(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"an image argument must be (H, W) or (N, H, W), got shape {a.shape}")
    return a


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_images(a), _as_images(b)
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"template of shape {b.shape[-2:]} does not match images of shape "
                         f"{a.shape[-2:]}")
    return a, b


def _sum2(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=(-2, -1))


def _safe_div(num: np.ndarray, den: np.ndarray, default) -> np.ndarray:
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), default)


def _by_image(fn, a: np.ndarray) -> np.ndarray:
    """Apply ``fn`` (a (M, H, W) batch -> (M,)) over any leading shape."""
    flat = a.reshape((-1,) + a.shape[-2:])
    return fn(flat).reshape(a.shape[:-2])


def _count_labels(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Connected components of each (H, W) slice of ``mask`` (M, H, W).

    One ``scipy.ndimage.label`` call labels the whole batch: the 3-D structure
    has the 2-D one as its middle plane, so no component crosses images.
    """
    struct3 = np.zeros((3, 3, 3), dtype=bool)
    struct3[1] = structure
    labels, n = scipy.ndimage.label(mask, structure=struct3)
    image_of = np.zeros(n + 1, dtype=np.int64)
    hit = labels > 0
    image_of[labels[hit]] = np.nonzero(hit)[0]
    return np.bincount(image_of[1:], minlength=len(mask)).astype(np.int64)


_EIGHT = np.ones((3, 3), dtype=bool)
_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


# ---------------------------------------------------------------------------
# Template similarity.

@primitive("dot", (IMAGE, IMAGE), REAL, imports=_NP, python='''\
def dot(image, template):
    image = np.asarray(image, dtype=float)
    return float((image * template).sum())''')
def _dot(a, b):
    a, b = _pair(a, b)
    return _sum2(a * b)


@primitive("cosine", (IMAGE, IMAGE), REAL, imports=_NP, commutative=True, python='''\
def cosine(image, template):
    image = np.asarray(image, dtype=float)
    norms = np.sqrt((image * image).sum() * (template * template).sum())
    return float((image * template).sum() / norms) if norms > 0 else 0.0''')
def _cosine(a, b):
    a, b = _pair(a, b)
    norms = np.sqrt(_sum2(a * a) * _sum2(b * b))
    return _safe_div(_sum2(a * b), norms, 0.0)


@primitive("centered_dot", (IMAGE, IMAGE), REAL, imports=_NP, python='''\
def centered_dot(image, template):
    image = np.asarray(image, dtype=float)
    return float(((image - image.mean()) * (template - template.mean())).sum())''')
def _centered_dot(a, b):
    a, b = _pair(a, b)
    return _sum2((a - a.mean(axis=(-2, -1), keepdims=True))
                 * (b - b.mean(axis=(-2, -1), keepdims=True)))


# ---------------------------------------------------------------------------
# Ink.

@primitive("ink", (IMAGE,), REAL, imports=_NP, python='''\
def ink(image):
    return float(np.asarray(image, dtype=float).sum())''')
def _ink(a):
    return _sum2(_as_images(a))


def _border_width(h: int, w: int) -> int:
    return max(1, min(h, w) // 4)


@primitive("ink_center", (IMAGE,), REAL, imports=_NP, python='''\
def ink_center(image):
    image = np.asarray(image, dtype=float)
    h, w = image.shape
    b = max(1, min(h, w) // 4)
    return float(image[b:h - b, b:w - b].sum())''')
def _ink_center(a):
    """Ink away from a border ``max(1, min(H, W) // 4)`` pixels wide (14x14 of 28x28)."""
    a = _as_images(a)
    h, w = a.shape[-2:]
    b = _border_width(h, w)
    return _sum2(a[..., b:h - b, b:w - b])


@primitive("ink_border", (IMAGE,), REAL, imports=_NP, python='''\
def ink_border(image):
    image = np.asarray(image, dtype=float)
    h, w = image.shape
    b = max(1, min(h, w) // 4)
    return float(image.sum() - image[b:h - b, b:w - b].sum())''')
def _ink_border(a):
    a = _as_images(a)
    h, w = a.shape[-2:]
    b = _border_width(h, w)
    return _sum2(a) - _sum2(a[..., b:h - b, b:w - b])


def _membership(n: int, grid: int) -> np.ndarray:
    """(grid, n) 0/1 matrix: pixel row ``r`` belongs to cell ``r * grid // n``."""
    return (np.arange(grid)[:, None] == np.arange(n)[None, :] * grid // n).astype(np.float64)


def _pick(values: np.ndarray, *indices) -> np.ndarray:
    """``values[..., i, (j)]`` per batch element; 0.0 where an index is off the grid."""
    grid = values.shape[-1]
    idx = [np.asarray(i, dtype=np.int64) for i in indices]
    k = len(idx)
    shape = np.broadcast_shapes(values.shape[:-k], *(i.shape for i in idx))
    idx = [np.broadcast_to(i, shape) for i in idx]
    ok = np.ones(shape, dtype=bool)
    flat_index = np.zeros(shape, dtype=np.int64)
    for i in idx:
        ok &= (i >= 0) & (i < grid)
        flat_index = flat_index * grid + np.clip(i, 0, grid - 1)
    flat = np.broadcast_to(values, shape + values.shape[-k:]).reshape(-1, grid**k)
    picked = flat[np.arange(flat.shape[0]), flat_index.reshape(-1)].reshape(shape)
    return np.where(ok, picked, 0.0)


def _grid_names(grid: int) -> tuple[str, str, str]:
    if grid == GRID:
        return "ink_in_cell", "ink_in_row_band", "ink_in_col_band"
    return f"ink_in_cell_{grid}x{grid}", f"ink_in_row_band_{grid}", f"ink_in_col_band_{grid}"


def grid_primitives(grid: int = GRID) -> tuple[Primitive, Primitive, Primitive]:
    """``ink_in_cell(image, i, j)``, ``ink_in_row_band(image, i)`` and
    ``ink_in_col_band(image, j)`` over a ``grid`` x ``grid`` grid.

    The default grid's primitives are registered on import; another grid size
    registers its own (``ink_in_cell_3x3``...) on first use.
    """
    if not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    grid = int(grid)
    names = _grid_names(grid)
    if all(n in REGISTRY for n in names):
        return tuple(REGISTRY[n] for n in names)  # type: ignore[return-value]
    cell, rows, cols = names

    def cells(a, i, j):
        a = _as_images(a)
        h, w = a.shape[-2:]
        sums = _membership(h, grid) @ a @ _membership(w, grid).T
        return _pick(sums, i, j)

    def row_band(a, i):
        a = _as_images(a)
        return _pick(a.sum(axis=-1) @ _membership(a.shape[-2], grid).T, i)

    def col_band(a, j):
        a = _as_images(a)
        return _pick(a.sum(axis=-2) @ _membership(a.shape[-1], grid).T, j)

    cell_src = f'''\
def {cell}(image, i, j):
    image = np.asarray(image, dtype=float)
    if not (0 <= i < {grid} and 0 <= j < {grid}):
        return 0.0
    h, w = image.shape
    rows = np.arange(h) * {grid} // h == i
    cols = np.arange(w) * {grid} // w == j
    return float(image[np.ix_(rows, cols)].sum())'''
    band_src = '''\
def {name}(image, i):
    image = np.asarray(image, dtype=float)
    if not 0 <= i < {grid}:
        return 0.0
    n = image.shape[{axis}]
    return float(image[{index}].sum())'''
    row_src = band_src.format(name=rows, grid=grid, axis=0,
                              index=f"np.arange(n) * {grid} // n == i, :")
    col_src = band_src.format(name=cols, grid=grid, axis=1,
                              index=f":, np.arange(n) * {grid} // n == i")
    made = (Primitive(cell, (IMAGE, INT, INT), REAL, cells, call=cell, helper=cell_src,
                      imports=_NP),
            Primitive(rows, (IMAGE, INT), REAL, row_band, call=rows, helper=row_src,
                      imports=_NP),
            Primitive(cols, (IMAGE, INT), REAL, col_band, call=cols, helper=col_src,
                      imports=_NP))
    return tuple(REGISTRY.register(p, replace=True) for p in made)  # type: ignore[return-value]


grid_primitives(GRID)


# ---------------------------------------------------------------------------
# Moments.

def _moments(a: np.ndarray) -> dict[str, np.ndarray]:
    """Centroid, variances and covariance of the ink (as the helpers compute them)."""
    a = _as_images(a)
    h, w = a.shape[-2:]
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    total = _sum2(a)
    row_mass, col_mass = a.sum(axis=-1), a.sum(axis=-2)
    cr = _safe_div((row_mass * rows).sum(axis=-1), total, (h - 1) / 2)
    cc = _safe_div((col_mass * cols).sum(axis=-1), total, (w - 1) / 2)
    dr = rows - cr[..., None]
    dc = cols - cc[..., None]
    var_r = _safe_div((dr * dr * row_mass).sum(axis=-1), total, 0.0)
    var_c = _safe_div((dc * dc * col_mass).sum(axis=-1), total, 0.0)
    cov = _safe_div(_sum2(dr[..., :, None] * dc[..., None, :] * a), total, 0.0)
    return {"row": cr, "col": cc, "var_row": var_r, "var_col": var_c, "cov": cov}


@primitive("centroid_row", (IMAGE,), REAL, imports=_NP, python='''\
def centroid_row(image):
    image = np.asarray(image, dtype=float)
    h = image.shape[0]
    total = image.sum()
    if not total > 0:
        return (h - 1) / 2
    return float((image.sum(axis=1) * np.arange(h)).sum() / total)''')
def _centroid_row(a):
    """Ink-weighted mean row index ((H - 1) / 2 for a blank image)."""
    return _moments(a)["row"]


@primitive("centroid_col", (IMAGE,), REAL, imports=_NP, python='''\
def centroid_col(image):
    image = np.asarray(image, dtype=float)
    w = image.shape[1]
    total = image.sum()
    if not total > 0:
        return (w - 1) / 2
    return float((image.sum(axis=0) * np.arange(w)).sum() / total)''')
def _centroid_col(a):
    """Ink-weighted mean column index ((W - 1) / 2 for a blank image)."""
    return _moments(a)["col"]


@primitive("row_variance", (IMAGE,), REAL, imports=_NP, python='''\
def row_variance(image):
    image = np.asarray(image, dtype=float)
    total = image.sum()
    if not total > 0:
        return 0.0
    mass, rows = image.sum(axis=1), np.arange(image.shape[0])
    d = rows - (mass * rows).sum() / total
    return float((d * d * mass).sum() / total)''')
def _row_variance(a):
    """Ink-weighted variance of the row index (vertical spread; 0 when blank)."""
    return _moments(a)["var_row"]


@primitive("col_variance", (IMAGE,), REAL, imports=_NP, python='''\
def col_variance(image):
    image = np.asarray(image, dtype=float)
    total = image.sum()
    if not total > 0:
        return 0.0
    mass, cols = image.sum(axis=0), np.arange(image.shape[1])
    d = cols - (mass * cols).sum() / total
    return float((d * d * mass).sum() / total)''')
def _col_variance(a):
    """Ink-weighted variance of the column index (horizontal spread; 0 when blank)."""
    return _moments(a)["var_col"]


@primitive("covariance", (IMAGE,), REAL, imports=_NP, python='''\
def covariance(image):
    image = np.asarray(image, dtype=float)
    total = image.sum()
    if not total > 0:
        return 0.0
    rows, cols = np.arange(image.shape[0]), np.arange(image.shape[1])
    dr = rows - (image.sum(axis=1) * rows).sum() / total
    dc = cols - (image.sum(axis=0) * cols).sum() / total
    return float((dr[:, None] * dc[None, :] * image).sum() / total)''')
def _covariance(a):
    """Ink-weighted covariance of row and column (> 0 for ink leaning like '\\')."""
    return _moments(a)["cov"]


@primitive("orientation", (IMAGE,), REAL, imports=_NP, python='''\
def orientation(image):
    image = np.asarray(image, dtype=float)
    total = image.sum()
    if not total > 0:
        return 0.0
    row_mass, col_mass = image.sum(axis=1), image.sum(axis=0)
    rows, cols = np.arange(image.shape[0]), np.arange(image.shape[1])
    dr = rows - (row_mass * rows).sum() / total
    dc = cols - (col_mass * cols).sum() / total
    var_r = (dr * dr * row_mass).sum() / total
    var_c = (dc * dc * col_mass).sum() / total
    cov = (dr[:, None] * dc[None, :] * image).sum() / total
    spread = var_r - var_c
    tiny = 1e-9 * (var_r + var_c)
    cov = 0.0 if abs(cov) <= tiny else cov
    spread = 0.0 if abs(spread) <= tiny else spread
    return float(np.arctan2(2 * cov, spread) / 2)''')
def _orientation(a):
    """Angle (radians, in (-pi/2, pi/2]) of the ink's principal axis from the
    vertical: 0 for upright ink, > 0 when it leans like '\\' (columns grow
    with rows), < 0 like '/', pi/2 for horizontal ink (0 when blank).

    The angle jumps between -pi/2 and pi/2 at horizontal ink, away from the
    upright strokes of digits.  A covariance or variance difference within
    1e-9 of the total variance counts as 0, so symmetric shapes get exactly
    0 or pi/2 instead of a value decided by rounding noise.
    """
    m = _moments(a)
    spread = m["var_row"] - m["var_col"]
    tiny = 1e-9 * (m["var_row"] + m["var_col"])
    cov = np.where(np.abs(m["cov"]) <= tiny, 0.0, m["cov"])
    spread = np.where(np.abs(spread) <= tiny, 0.0, spread)
    return np.arctan2(2 * cov, spread) / 2


# ---------------------------------------------------------------------------
# Symmetry.

@primitive("symmetry_lr", (IMAGE,), REAL, imports=_NP, python='''\
def symmetry_lr(image):
    image = np.asarray(image, dtype=float)
    return float(1.0 - np.abs(image - image[:, ::-1]).mean())''')
def _symmetry_lr(a):
    """1 - mean |image - image mirrored left-right|: 1 for a symmetric image."""
    a = _as_images(a)
    return 1.0 - np.abs(a - a[..., :, ::-1]).mean(axis=(-2, -1))


@primitive("symmetry_tb", (IMAGE,), REAL, imports=_NP, python='''\
def symmetry_tb(image):
    image = np.asarray(image, dtype=float)
    return float(1.0 - np.abs(image - image[::-1, :]).mean())''')
def _symmetry_tb(a):
    a = _as_images(a)
    return 1.0 - np.abs(a - a[..., ::-1, :]).mean(axis=(-2, -1))


# ---------------------------------------------------------------------------
# Topology of the binarised image.  One scipy.ndimage call per batch (see
# _count_labels); numpy cannot vectorise labelling further.

@primitive("components", (IMAGE,), INT, imports=_NP_NDIMAGE, python='''\
def components(image):
    ink = np.asarray(image, dtype=float) > 0.5
    return int(scipy.ndimage.label(ink, structure=np.ones((3, 3)))[1])''')
def _components(a):
    """Number of 8-connected components of the ink (pixels > 0.5)."""
    a = _as_images(a)
    return _by_image(lambda m: _count_labels(m > BINARY_THRESHOLD, _EIGHT), a)


@primitive("holes", (IMAGE,), INT, imports=_NP_NDIMAGE, python='''\
def holes(image):
    background = np.pad(np.asarray(image, dtype=float) <= 0.5, 1, constant_values=True)
    return int(scipy.ndimage.label(background)[1]) - 1''')
def _holes(a):
    """Number of 4-connected background components (pixels <= 0.5) not touching the
    border: the image is framed with background, whose component is not a hole."""
    def count(m):
        framed = np.pad(m <= BINARY_THRESHOLD, ((0, 0), (1, 1), (1, 1)), constant_values=True)
        return _count_labels(framed, _FOUR) - 1
    return _by_image(count, _as_images(a))


@primitive("thickness", (IMAGE,), REAL, imports=_NP_NDIMAGE, python='''\
def thickness(image):
    ink = np.asarray(image, dtype=float) > 0.5
    area = int(ink.sum())
    if area == 0:
        return 0.0
    interior = scipy.ndimage.binary_erosion(ink, border_value=0)
    return area / (area - int(interior.sum()))''')
def _thickness(a):
    """Ink pixels per boundary pixel of the binarised ink (0.0 when blank).

    A boundary pixel is an ink pixel with a 4-neighbour that is background or
    off the image.  A stroke w pixels wide gives about w / 2 (1 for w <= 2):
    it grows with the pen width and ignores the stroke length.
    """
    ink = _as_images(a) > BINARY_THRESHOLD
    pad = [(0, 0)] * (ink.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(ink, pad, constant_values=False)
    interior = (ink & p[..., :-2, 1:-1] & p[..., 2:, 1:-1]
                & p[..., 1:-1, :-2] & p[..., 1:-1, 2:])
    area = ink.sum(axis=(-2, -1))
    boundary = area - interior.sum(axis=(-2, -1))
    return _safe_div(area.astype(np.float64), boundary.astype(np.float64), 0.0)


#: Features of the image alone, in feature-bank order.
SCALAR_FEATURES = ("ink", "ink_center", "ink_border", "centroid_row", "centroid_col",
                   "row_variance", "col_variance", "covariance", "orientation",
                   "symmetry_lr", "symmetry_tb", "components", "holes", "thickness")
#: Features of the image and a template.
TEMPLATE_FEATURES = ("dot", "cosine", "centered_dot")


def image_features(templates: Sequence[Template] = (), grid: int = GRID,
                   image: Var | None = None) -> list[Program]:
    """The standard feature bank: every image feature applied to the input.

    Scalar features, then every cell of the ``grid`` x ``grid`` grid, every
    row band and column band, then dot / cosine / centered_dot with each
    template.  ``image`` defaults to ``Var("image", IMAGE)``.
    """
    image = image if image is not None else Var("image", IMAGE)
    if image.type is not IMAGE:
        raise TypeError(f"image features need an Image input, got {image}")
    out: list[Program] = [Apply(REGISTRY[name], (image,)) for name in SCALAR_FEATURES]
    cell, rows, cols = grid_primitives(grid)
    index = [Const(i, INT) for i in range(grid)]
    out += [Apply(cell, (image, i, j)) for i in index for j in index]
    out += [Apply(rows, (image, i)) for i in index]
    out += [Apply(cols, (image, j)) for j in index]
    for t in templates:
        if not isinstance(t, Template):
            raise TypeError(f"templates must be Template nodes, got {type(t).__name__}")
        out += [Apply(REGISTRY[name], (image, t)) for name in TEMPLATE_FEATURES]
    return out


# ---------------------------------------------------------------------------
# Templates from data.

def _image_batch(images) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W) array, got shape {arr.shape}")
    return arr


def class_mean_templates(images, classes) -> list[Template]:
    """The mean image of each class (``classes[i]`` is the class of ``images[i]``),
    named ``mean_<class>``, in increasing class order."""
    arr = _image_batch(images)
    labels = np.asarray(classes)
    if labels.shape != (len(arr),):
        raise ValueError(f"classes must have shape ({len(arr)},), got {labels.shape}")
    out = []
    for c in np.unique(labels):
        tag = str(c.item())
        name = f"mean_{tag}" if tag.isidentifier() or tag.isdigit() else f"mean_{len(out)}"
        out.append(Template.from_array(arr[labels == c].mean(axis=0), name,
                                       source=f"class-mean:{tag}"))
    return out


def pca_templates(images, k: int) -> list[Template]:
    """The first ``k`` principal components of the images, named ``pca_<i>``.

    Each component is scaled to a largest absolute pixel of 1 (so 3 decimals
    keep it precise) with that pixel positive (a deterministic sign).
    ``dot(image, pca_i)`` is then an increasing affine function of the
    image's i-th principal score: thresholds on one are thresholds on the other.
    """
    arr = _image_batch(images)
    flat = arr.reshape(len(arr), -1)
    if not 1 <= k <= min(flat.shape):
        raise ValueError(f"k must be in 1..{min(flat.shape)} for {len(arr)} images of "
                         f"{flat.shape[1]} pixels, got {k}")
    centred = flat - flat.mean(axis=0)
    if len(flat) >= flat.shape[1]:  # many images: eigenvectors of the small covariance
        values, vectors = np.linalg.eigh(centred.T @ centred)
        axes = vectors[:, np.argsort(values)[::-1]].T
    else:
        axes = np.linalg.svd(centred, full_matrices=False)[2]
    out = []
    for i, v in enumerate(axes[:k]):
        peak = v[np.argmax(np.abs(v))]
        scaled = v / peak if peak != 0 else v
        out.append(Template.from_array(scaled.reshape(arr.shape[1:]), f"pca_{i}",
                                       source=f"pca:{i}"))
    return out


def exemplar_templates(images, indices: Sequence[int]) -> list[Template]:
    """``images[i]`` for each ``i`` in ``indices``, named ``exemplar_<i>``."""
    arr = _image_batch(images)
    out = []
    for i in indices:
        i = int(i)
        if not -len(arr) <= i < len(arr):
            raise IndexError(f"exemplar index {i} out of range for {len(arr)} images")
        i %= len(arr)
        out.append(Template.from_array(arr[i], f"exemplar_{i}", source=f"exemplar:{i}"))
    return out


_NPY_MAGIC = b"\x93NUMPY"
_RESAMPLE = ("nearest", "box", "bilinear", "bicubic", "lanczos")


def _to_unit(arr: np.ndarray, where: str) -> np.ndarray:
    """Pixel values scaled to [0, 1]: bool as 0/1, uint8 / 255, uint16 / 65535;
    other values as they are when already in [0, 1], else min-max rescaled."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float64)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) / 65535.0
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{where}: pixel values must be numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: pixel values contain NaN or inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return arr
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def _read_image_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
                # Transparent pixels count as background (0): gray * alpha.
                rgba = im.convert("RGBA")
                gray = np.asarray(rgba.convert("L"), dtype=np.float64) / 255.0
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
                return gray * alpha
            if im.mode.startswith("I") or im.mode == "F":
                return _to_unit(np.asarray(im), str(path))
            return _to_unit(np.asarray(im.convert("L")), str(path))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path} is neither a .npy array nor an image file PIL can read "
                         f"({exc})") from None


def load_hint(path: str | Path, shape: tuple[int, int], resample: str = "nearest") -> np.ndarray:
    """A hint image as an (H, W) = ``shape`` float64 array in [0, 1].

    ``path`` is an image file (PNG or anything PIL reads; any mode, converted
    to grayscale, transparent pixels as 0) or a .npy file holding a 2-D array
    (see ``_to_unit`` for its scaling).  It is resized to ``shape`` with PIL;
    ``resample="nearest"`` (the default) samples each output pixel at the
    centre of its source block, which recovers a nearest-neighbour-upscaled
    image (like the challenge's MNIST hint) exactly; use "box" to average a
    smooth picture.  Raises ValueError naming the file when it is neither an
    image nor a 2-D array.
    """
    from PIL import Image

    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"hint shape must be (H, W) with H, W >= 1, got {shape}")
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {_RESAMPLE}, got {resample!r}")
    if not path.is_file():
        raise FileNotFoundError(f"hint file {path} does not exist")
    with open(path, "rb") as fh:
        is_npy = fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    if is_npy:
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path} is not a readable .npy array ({exc})") from None
        if not isinstance(raw, np.ndarray) or raw.ndim != 2 or min(raw.shape) < 1:
            raise ValueError(f"{path} holds an array of shape {np.shape(raw)}; a hint must be "
                             f"a non-empty 2-D (H, W) array")
        arr = _to_unit(raw, str(path))
    else:
        arr = _read_image_file(path)
    if arr.shape != shape:
        method = getattr(Image.Resampling, resample.upper())
        small = Image.fromarray(arr.astype(np.float32)).resize((shape[1], shape[0]), method)
        arr = np.asarray(small, dtype=np.float64)
    return np.clip(arr, 0.0, 1.0)


def hint_template(path: str | Path, shape: tuple[int, int], name: str = "hint",
                  resample: str = "nearest") -> Template:
    """:func:`load_hint` as a Template (source ``hint:<file name>``)."""
    return Template.from_array(load_hint(path, shape, resample), name,
                               source=f"hint:{Path(path).name}")


__all__ = ["Template", "TEMPLATE_DECIMALS", "GRID", "BINARY_THRESHOLD", "SCALAR_FEATURES",
           "TEMPLATE_FEATURES", "grid_primitives", "image_features", "class_mean_templates",
           "pca_templates", "exemplar_templates", "load_hint", "hint_template"]
