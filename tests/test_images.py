"""Image features, templates, hint files and image data sets.

Every vectorised feature is checked against a slow reference written here
with plain loops over pixels, and against its own printed Python.  Tests that
read data files skip only when SYNTH_DATA_DIR is unset; when it is set, a
missing file fails them.
"""
from __future__ import annotations

import gzip
import math
import os
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from dsl.images import (GRID, SCALAR_FEATURES, TEMPLATE_FEATURES, Template, class_mean_templates,
                        exemplar_templates, grid_primitives, hint_template, image_features,
                        load_hint, pca_templates)
from dsl.printing import compile_python, to_python, to_sympy
from dsl.program import Apply, Const, Var, apply, const
from dsl.types import IMAGE, INT, REAL
from oracles.data import (DataError, data_dir, load_digits_images, load_mnist_test,
                          read_idx_labels)

IMAGE_VAR = Var("image", IMAGE)
TOL = dict(rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------
# Slow references: plain loops over pixels, written independently of dsl.images.

def pixels(img):
    h, w = img.shape
    for r in range(h):
        for c in range(w):
            yield r, c, float(img[r, c])


def ref_ink(img):
    return sum(v for _, _, v in pixels(img))


def ref_dot(img, t):
    return sum(v * float(t[r, c]) for r, c, v in pixels(img))


def ref_cosine(img, t):
    na = math.sqrt(sum(v * v for _, _, v in pixels(img)))
    nb = math.sqrt(sum(v * v for _, _, v in pixels(t)))
    return ref_dot(img, t) / (na * nb) if na > 0 and nb > 0 else 0.0


def ref_centered_dot(img, t):
    n = img.size
    ma, mb = ref_ink(img) / n, ref_ink(t) / n
    return sum((v - ma) * (float(t[r, c]) - mb) for r, c, v in pixels(img))


def cell_range(i, n, grid):
    """Pixel rows of cell i: those r with i <= r * grid / n < i + 1."""
    return range(math.ceil(i * n / grid), math.ceil((i + 1) * n / grid))


def ref_cell(img, i, j, grid=GRID):
    if not (0 <= i < grid and 0 <= j < grid):
        return 0.0
    h, w = img.shape
    return sum(float(img[r, c]) for r in cell_range(i, h, grid) for c in cell_range(j, w, grid))


def ref_row_band(img, i, grid=GRID):
    return sum(ref_cell(img, i, j, grid) for j in range(grid)) if 0 <= i < grid else 0.0


def ref_col_band(img, j, grid=GRID):
    return sum(ref_cell(img, i, j, grid) for i in range(grid)) if 0 <= j < grid else 0.0


def ref_center(img):
    h, w = img.shape
    b = max(1, min(h, w) // 4)
    return sum(v for r, c, v in pixels(img) if b <= r < h - b and b <= c < w - b)


def ref_border(img):
    h, w = img.shape
    b = max(1, min(h, w) // 4)
    return sum(v for r, c, v in pixels(img) if not (b <= r < h - b and b <= c < w - b))


def ref_moments(img):
    h, w = img.shape
    m = ref_ink(img)
    if m <= 0:
        return (h - 1) / 2, (w - 1) / 2, 0.0, 0.0, 0.0
    cr = sum(r * v for r, _, v in pixels(img)) / m
    cc = sum(c * v for _, c, v in pixels(img)) / m
    vr = sum((r - cr) ** 2 * v for r, _, v in pixels(img)) / m
    vc = sum((c - cc) ** 2 * v for _, c, v in pixels(img)) / m
    cov = sum((r - cr) * (c - cc) * v for r, c, v in pixels(img)) / m
    return cr, cc, vr, vc, cov


def ref_orientation(img):
    _, _, vr, vc, cov = ref_moments(img)
    tiny = 1e-9 * (vr + vc)  # below this, rounding noise: exactly 0
    cov = 0.0 if abs(cov) <= tiny else cov
    spread = 0.0 if abs(vr - vc) <= tiny else vr - vc
    return 0.5 * math.atan2(2 * cov, spread)


def ref_symmetry_lr(img):
    h, w = img.shape
    return 1 - sum(abs(v - float(img[r, w - 1 - c])) for r, c, v in pixels(img)) / (h * w)


def ref_symmetry_tb(img):
    h, w = img.shape
    return 1 - sum(abs(v - float(img[h - 1 - r, c])) for r, c, v in pixels(img)) / (h * w)


EIGHT = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
FOUR = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def flood(mask, start, steps, seen):
    h, w = len(mask), len(mask[0])
    queue = deque([start])
    seen.add(start)
    while queue:
        r, c = queue.popleft()
        for dr, dc in steps:
            q = (r + dr, c + dc)
            if 0 <= q[0] < h and 0 <= q[1] < w and mask[q[0]][q[1]] and q not in seen:
                seen.add(q)
                queue.append(q)


def ref_components(img):
    h, w = img.shape
    ink = [[float(img[r, c]) > 0.5 for c in range(w)] for r in range(h)]
    seen, count = set(), 0
    for r in range(h):
        for c in range(w):
            if ink[r][c] and (r, c) not in seen:
                count += 1
                flood(ink, (r, c), EIGHT, seen)
    return count


def ref_holes(img):
    h, w = img.shape
    bg = [[float(img[r, c]) <= 0.5 for c in range(w)] for r in range(h)]
    seen = set()
    for r in range(h):
        for c in range(w):
            on_border = r in (0, h - 1) or c in (0, w - 1)
            if on_border and bg[r][c] and (r, c) not in seen:
                flood(bg, (r, c), FOUR, seen)
    count = 0
    for r in range(h):
        for c in range(w):
            if bg[r][c] and (r, c) not in seen:
                count += 1
                flood(bg, (r, c), FOUR, seen)
    return count


def ref_thickness(img):
    h, w = img.shape
    ink = [[float(img[r, c]) > 0.5 for c in range(w)] for r in range(h)]
    area = boundary = 0
    for r in range(h):
        for c in range(w):
            if not ink[r][c]:
                continue
            area += 1
            if any(not (0 <= r + dr < h and 0 <= c + dc < w) or not ink[r + dr][c + dc]
                   for dr, dc in FOUR):
                boundary += 1
    return area / boundary if area else 0.0


SCALAR_REFS = {
    "ink": ref_ink,
    "ink_center": ref_center,
    "ink_border": ref_border,
    "centroid_row": lambda im: ref_moments(im)[0],
    "centroid_col": lambda im: ref_moments(im)[1],
    "row_variance": lambda im: ref_moments(im)[2],
    "col_variance": lambda im: ref_moments(im)[3],
    "covariance": lambda im: ref_moments(im)[4],
    "orientation": ref_orientation,
    "symmetry_lr": ref_symmetry_lr,
    "symmetry_tb": ref_symmetry_tb,
    "components": ref_components,
    "holes": ref_holes,
    "thickness": ref_thickness,
}
TEMPLATE_REFS = {"dot": ref_dot, "cosine": ref_cosine, "centered_dot": ref_centered_dot}


# ---------------------------------------------------------------------------
# Strategies: small batches of one shape, continuous, binary and few-level images.

@st.composite
def image_batches(draw, min_side=6, max_side=10):
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    n = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["real", "binary", "levels", "random-binary"]))
    if kind == "random-binary":
        seed = draw(st.integers(0, 2**32 - 1))
        density = draw(st.floats(0.2, 0.8))
        return (np.random.default_rng(seed).random((n, h, w)) < density).astype(np.float64)
    # Pixels are 0 or at least 1e-6, as in real images (8-bit steps are 1/255):
    # products of near-subnormal values underflow and lose all precision.
    elements = {
        "real": st.floats(0.0, 1.0).map(lambda v: v if v >= 1e-6 else 0.0),
        "binary": st.sampled_from([0.0, 1.0]),
        "levels": st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),  # 0.5 is background
    }[kind]
    return draw(hnp.arrays(np.float64, (n, h, w), elements=elements))


def template_for(shape, seed=0, name="t"):
    values = np.random.default_rng(seed).random(shape)
    return Template.from_array(values, name, source="test")


def per_image(fn, batch):
    return np.array([fn(img) for img in batch], dtype=np.float64)


# ---------------------------------------------------------------------------
# Vectorised features against the references.

def test_every_image_primitive_has_a_slow_reference():
    from dsl.primitives import REGISTRY

    ours = {p.name for p in REGISTRY
            if IMAGE in p.arg_types and p.impl.__module__ == "dsl.images"}
    grids = {n for n in ours if n.startswith("ink_in_")}  # checked for every grid size below
    assert grids >= {p.name for p in grid_primitives(GRID)}
    assert ours - grids == set(SCALAR_REFS) | set(TEMPLATE_REFS)
    assert set(SCALAR_REFS) == set(SCALAR_FEATURES)
    assert set(TEMPLATE_REFS) == set(TEMPLATE_FEATURES)


@settings(max_examples=60, deadline=None)
@given(image_batches())
def test_scalar_features_match_references(batch):
    for name, ref in SCALAR_REFS.items():
        got = apply(name, IMAGE_VAR).evaluate({"image": batch})
        np.testing.assert_allclose(got, per_image(ref, batch), err_msg=name, **TOL)


@settings(max_examples=40, deadline=None)
@given(image_batches(), st.integers(0, 2**32 - 1))
def test_template_features_match_references(batch, seed):
    t = template_for(batch.shape[1:], seed)
    for name, ref in TEMPLATE_REFS.items():
        got = apply(name, IMAGE_VAR, t).evaluate({"image": batch})
        np.testing.assert_allclose(got, per_image(lambda im: ref(im, t.array), batch),
                                   err_msg=name, **TOL)


@settings(max_examples=40, deadline=None)
@given(image_batches(), st.sampled_from([1, 2, 3, 4, 5]))
def test_grid_features_match_references(batch, grid):
    cell, rows, cols = grid_primitives(grid)
    env = {"image": batch}
    for i in range(-1, grid + 1):
        got = Apply(rows, (IMAGE_VAR, const(i))).evaluate(env)
        np.testing.assert_allclose(got, per_image(lambda im: ref_row_band(im, i, grid), batch),
                                   err_msg=f"{rows.name} {i}", **TOL)
        got = Apply(cols, (IMAGE_VAR, const(i))).evaluate(env)
        np.testing.assert_allclose(got, per_image(lambda im: ref_col_band(im, i, grid), batch),
                                   err_msg=f"{cols.name} {i}", **TOL)
        for j in range(-1, grid + 1):
            got = Apply(cell, (IMAGE_VAR, const(i), const(j))).evaluate(env)
            np.testing.assert_allclose(got, per_image(lambda im: ref_cell(im, i, j, grid), batch),
                                       err_msg=f"{cell.name} {i} {j}", **TOL)


def test_grid_cells_partition_the_image():
    img = np.random.default_rng(1).random((1, 9, 7))
    total = sum(apply("ink_in_cell", IMAGE_VAR, const(i), const(j)).evaluate({"image": img})
                for i in range(GRID) for j in range(GRID))
    np.testing.assert_allclose(total, img.sum(axis=(1, 2)))


def test_blank_image_is_total():
    blank = np.zeros((2, 8, 8))
    env = {"image": blank}
    values = {name: apply(name, IMAGE_VAR).evaluate(env)[0] for name in SCALAR_FEATURES}
    assert values["centroid_row"] == values["centroid_col"] == 3.5
    assert values["components"] == values["holes"] == values["thickness"] == 0
    assert values["symmetry_lr"] == values["symmetry_tb"] == 1.0
    assert apply("cosine", IMAGE_VAR, template_for((8, 8))).evaluate(env)[0] == 0.0


def test_known_shapes():
    ring = np.zeros((7, 7))
    ring[1:6, 1:6] = 1.0
    ring[2:5, 2:5] = 0.0
    ring[3, 3] = 1.0  # a dot inside the ring: two components, one hole (around the dot)
    diamond = np.zeros((7, 7))
    for r, c in [(1, 3), (2, 2), (2, 4), (3, 1), (3, 5), (4, 2), (4, 4), (5, 3)]:
        diamond[r, c] = 1.0  # an 8-connected ring enclosing (3, 3) only diagonally
    slash = np.eye(7)[::-1]
    env = {"image": np.stack([ring, diamond, slash])}
    assert apply("components", IMAGE_VAR).evaluate(env).tolist() == [2, 1, 1]
    assert apply("holes", IMAGE_VAR).evaluate(env).tolist() == [1, 1, 0]
    assert apply("components", IMAGE_VAR).type is INT
    orient = apply("orientation", IMAGE_VAR).evaluate(env)
    assert orient[2] == pytest.approx(-math.pi / 4)  # '/': columns shrink as rows grow
    assert orient[1] == 0.0  # no preferred direction
    bars = np.zeros((3, 6, 8))
    bars[0, :, 3] = 1.0  # upright
    bars[1, 2, :] = 1.0  # horizontal
    bars[2] = np.eye(6, 8)  # leaning like a backslash
    angles = apply("orientation", IMAGE_VAR).evaluate({"image": bars})
    np.testing.assert_allclose(angles, [0.0, math.pi / 2, math.pi / 4])
    np.testing.assert_allclose(apply("symmetry_lr", IMAGE_VAR).evaluate(env)[:2], [1.0, 1.0])


def test_mismatched_template_is_a_clear_error():
    t = template_for((5, 5))
    with pytest.raises(ValueError, match="does not match"):
        apply("dot", IMAGE_VAR, t).evaluate({"image": np.zeros((2, 6, 6))})


# ---------------------------------------------------------------------------
# Printed Python agrees with vectorised evaluation, image by image.

def assert_printed_matches(program, batch):
    source = to_python(program, ["image"])
    assert source.startswith("import numpy as np\n")
    fn = compile_python(source)
    got = program.evaluate({"image": batch})
    printed = np.array([fn(img) for img in batch], dtype=np.float64)
    np.testing.assert_allclose(printed, got, err_msg=source[-400:], **TOL)


@settings(max_examples=15, deadline=None)
@given(image_batches(), st.integers(0, 2**32 - 1))
def test_printed_features_match_vectorised(batch, seed):
    t = template_for(batch.shape[1:], seed, name="mean_3")
    for program in image_features([t]) + image_features(grid=3):
        assert_printed_matches(program, batch)


@settings(max_examples=30, deadline=None)
@given(image_batches())
def test_printed_composite_program_matches(batch):
    t = template_for(batch.shape[1:], 7, name="mean_3")
    cell = apply("ink_in_cell", IMAGE_VAR, const(0), const(1))
    program = apply("or_",
                    apply("and_", apply("lt", const(0.2), cell),
                          apply("gt", apply("dot", IMAGE_VAR, t), const(3.1))),
                    apply("ge", apply("add", apply("holes", IMAGE_VAR),
                                      apply("components", IMAGE_VAR)), const(2)))
    assert str(program).startswith("0.2 < ink_in_cell(image, 0, 1) and dot(image, T_mean_3) > 3.1")
    source = to_python(program, ["image"])
    assert "import scipy.ndimage" in source and source.count("T_mean_3 = np.array(") == 1
    fn = compile_python(source)
    got = program.evaluate({"image": batch}).astype(int)
    assert [fn(img) for img in batch] == got.tolist()


# ---------------------------------------------------------------------------
# Templates.

def test_template_values_round_and_print_exactly():
    raw = np.random.default_rng(3).normal(size=(5, 6))
    t = Template.from_array(raw, "pca_0", source="pca:0")
    assert t.array.tolist() == [[float(f"{v:.3f}") for v in row] for row in raw]
    namespace: dict = {}
    exec("import numpy as np\n" + t.python_definition(), namespace)  # noqa: S102
    assert namespace["T_pca_0"].tolist() == t.array.tolist()  # exact, not approximate
    assert t.size == 1 and t.type is IMAGE and t.children == ()
    assert repr(t) == "Template(name='pca_0', shape=(5, 6), source='pca:0')"
    assert str(to_sympy(apply("dot", IMAGE_VAR, t))) == "dot(image, T_pca_0)"
    batch = np.zeros((3, 5, 6))
    assert t.evaluate({"image": batch}).shape == (3, 5, 6)


def test_template_hashes_by_value():
    raw = np.random.default_rng(4).random((4, 4))
    a = Template.from_array(raw, "x", "s")
    b = Template.from_array(raw.copy(), "x", "s")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Template.from_array(raw, "y", "s")
    assert a != Template.from_array(raw + 0.01, "x", "s")
    assert apply("dot", IMAGE_VAR, a) == apply("dot", IMAGE_VAR, b)


def test_template_rejects_bad_input():
    with pytest.raises(ValueError, match="identifier"):
        Template.from_array(np.zeros((2, 2)), "not a name")
    with pytest.raises(ValueError, match="2-D"):
        Template.from_array(np.zeros((2, 2, 2)), "x")
    with pytest.raises(ValueError, match="NaN"):
        Template.from_array(np.full((2, 2), np.nan), "x")


def test_same_name_different_templates_cannot_print():
    a, b = template_for((4, 4), 1, "x"), template_for((4, 4), 2, "x")
    program = apply("gt", apply("dot", IMAGE_VAR, a), apply("dot", IMAGE_VAR, b))
    with pytest.raises(ValueError, match="T_x"):
        to_python(program, ["image"])


def test_image_features_bank():
    ts = [template_for((8, 8), i, f"t{i}") for i in range(2)]
    bank = image_features(ts)
    assert len(bank) == len(SCALAR_FEATURES) + GRID * GRID + 2 * GRID + 2 * len(TEMPLATE_FEATURES)
    assert len(set(bank)) == len(bank)
    assert all(p.type in (REAL, INT) and p.inputs == {"image"} for p in bank)
    cells = [p for p in bank if p.primitive.name == "ink_in_cell"]
    assert all(isinstance(a, Const) and a.type is INT for p in cells for a in p.args[1:])
    values = np.stack([p.evaluate({"image": np.random.default_rng(0).random((5, 8, 8))})
                       for p in bank])
    assert values.shape == (len(bank), 5) and np.isfinite(values).all()


def test_templates_from_data():
    rng = np.random.default_rng(5)
    images = rng.random((30, 6, 6))
    classes = np.arange(30) % 3
    means = class_mean_templates(images, classes)
    assert [t.name for t in means] == ["mean_0", "mean_1", "mean_2"]
    assert means[1].source == "class-mean:1"
    np.testing.assert_allclose(means[1].array, images[1::3].mean(axis=0), atol=5e-4)

    direction = np.zeros((6, 6))
    direction[2:4, :] = 1.0
    scores = rng.normal(size=200) * 5
    data = scores[:, None, None] * direction + rng.normal(size=(200, 6, 6)) * 0.01
    (pc,) = pca_templates(data, 1)
    assert pc.name == "pca_0" and pc.source == "pca:0"
    np.testing.assert_allclose(pc.array, direction, atol=0.02)  # scaled to peak 1, sign +
    dots = apply("dot", IMAGE_VAR, pc).evaluate({"image": data})
    assert np.corrcoef(dots, scores)[0, 1] > 0.999
    assert len(pca_templates(images[:4], 3)) == 3  # fewer images than pixels
    with pytest.raises(ValueError):
        pca_templates(images, 0)

    (ex,) = exemplar_templates(images, [7])
    assert ex.name == "exemplar_7" and ex.source == "exemplar:7"
    np.testing.assert_allclose(ex.array, images[7], atol=5e-4)


# ---------------------------------------------------------------------------
# Hint files.

def test_load_hint_png_with_alpha_and_resize(tmp_path):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[:10, :, 3] = 255  # top half opaque, bottom half transparent
    path = tmp_path / "hint.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_hint(path, (4, 6))
    assert arr.shape == (4, 6) and arr.dtype == np.float64
    np.testing.assert_allclose(arr[:2], 200 / 255, rtol=1e-6)
    np.testing.assert_allclose(arr[2:], 0.0)
    assert load_hint(path, (20, 30), resample="box").shape == (20, 30)


def test_load_hint_npy(tmp_path):
    path = tmp_path / "hint.npy"
    np.save(path, np.arange(12, dtype=np.float64).reshape(3, 4))
    arr = load_hint(path, (3, 4))
    np.testing.assert_allclose(arr, np.arange(12).reshape(3, 4) / 11)
    assert load_hint(path, (6, 8)).shape == (6, 8)
    t = hint_template(path, (3, 4))
    assert t.name == "hint" and t.source == "hint:hint.npy"


def test_load_hint_rejects_non_images(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    with pytest.raises(ValueError, match="notes.png.*neither"):
        load_hint(text, (28, 28))
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"cube.npy.*\(2, 3, 4\).*2-D"):
        load_hint(cube, (28, 28))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_hint(tmp_path / "missing.png", (28, 28))


# ---------------------------------------------------------------------------
# Data files: skip only when SYNTH_DATA_DIR is unset; a missing file fails.

def data_root() -> Path:
    if not os.environ.get("SYNTH_DATA_DIR"):
        pytest.skip("SYNTH_DATA_DIR is not set")
    return data_dir()


def test_load_hint_real_png():
    arr = load_hint(data_root() / "casper" / "mnist_example.png", (28, 28))
    assert arr.shape == (28, 28)
    assert arr.min() >= 0.0 and arr.max() <= 1.0 and arr.max() > 0.9
    assert arr[:3].max() == 0.0 and arr[-3:].max() == 0.0  # a centred digit on black
    assert len(np.unique(arr)) <= 256  # nearest sampling keeps the original gray levels


def test_mnist_test_set():
    data_root()
    images, labels = load_mnist_test()
    assert images.shape == (10000, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert images.min() == 0.0 and images.max() == 1.0
    assert np.bincount(labels).tolist()[:2] == [980, 1135]


def write_idx(path, magic, dims, payload):
    header = np.array([magic, *dims], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + bytes(payload))


def test_mnist_loader_errors(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist_test(tmp_path)
    write_idx(tmp_path / "mnist/t10k-images-idx3-ubyte.gz", 2049, [1, 2, 2], [0] * 4)
    write_idx(tmp_path / "mnist/t10k-labels-idx1-ubyte.gz", 2049, [1], [3])
    with pytest.raises(DataError, match="magic number is 2049, expected 2051"):
        load_mnist_test(tmp_path)
    write_idx(tmp_path / "mnist/t10k-images-idx3-ubyte.gz", 2051, [2, 2, 2], [0] * 4)
    with pytest.raises(DataError, match="header announces"):
        load_mnist_test(tmp_path)
    write_idx(tmp_path / "mnist/t10k-images-idx3-ubyte.gz", 2051, [1, 2, 2], [0] * 4)
    with pytest.raises(DataError, match="expected 10000 images"):
        load_mnist_test(tmp_path)
    assert read_idx_labels(tmp_path / "mnist/t10k-labels-idx1-ubyte.gz").tolist() == [3]
    (tmp_path / "broken.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="broken.gz"):
        read_idx_labels(tmp_path / "broken.gz")
    monkeypatch.delenv("SYNTH_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="SYNTH_DATA_DIR is not set"):
        load_mnist_test()
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="SYNTH_DATA_DIR=.*nowhere.*not a directory"):
        data_dir()


def test_digits_images():
    images, labels = load_digits_images()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(10))


@settings(max_examples=20, deadline=None)
@given(image_batches())
def test_features_lowered_to_variables_evaluate_alike_and_lift_back(batch):
    """Simplification evaluates a program many times; its image features are
    computed once, as variables, and the program lifted back is unchanged."""
    from synth.search import _feature_variables

    t = template_for(batch.shape[1:], 7, name="mean_3")
    cell = apply("ink_in_cell", IMAGE_VAR, const(0), const(1))
    dot = apply("dot", IMAGE_VAR, t)
    program = apply("or_", apply("lt", const(0.2), cell),
                    apply("gt", apply("add", dot, apply("mul", const(2), cell)), const(3.1)))
    env = {"image": batch}
    lower, lift, lowered_env = _feature_variables([program], [cell, dot, apply("holes", IMAGE_VAR)],
                                                  env)
    lowered = lower(program)
    assert not any(n.type is IMAGE for n in lowered.walk())
    assert np.array_equal(lowered.evaluate(lowered_env), program.evaluate(env))
    assert lift(lowered) == program
