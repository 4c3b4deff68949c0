"""Image data sets: the MNIST test set from ``$SYNTH_DATA_DIR`` and sklearn's digits.

Data files never go into the repository: ``SYNTH_DATA_DIR`` names the folder
holding them (``mnist/t10k-images-idx3-ubyte.gz``...).  Images come back as
float32 (N, H, W) arrays in [0, 1] with int64 class labels (N,), the form
``dsl.images`` features evaluate on.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

#: Environment variable naming the data folder.
DATA_ENV = "SYNTH_DATA_DIR"

MNIST_TEST_IMAGES = "mnist/t10k-images-idx3-ubyte.gz"
MNIST_TEST_LABELS = "mnist/t10k-labels-idx1-ubyte.gz"
MNIST_TEST_COUNT = 10000

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


class DataError(RuntimeError):
    """Data cannot be read: the data folder is not configured or a file is malformed."""


def data_dir() -> Path:
    """The folder named by ``$SYNTH_DATA_DIR``; a DataError when it is unset or not a folder."""
    value = os.environ.get(DATA_ENV, "")
    if not value:
        raise DataError(f"{DATA_ENV} is not set: point it at the data folder "
                        f"(e.g. export {DATA_ENV}=/path/to/shared/data)")
    path = Path(value)
    if not path.is_dir():
        raise DataError(f"{DATA_ENV}={value} is not a directory")
    return path


def data_file(relative: str, root: str | Path | None = None) -> Path:
    """``root / relative`` (root defaults to :func:`data_dir`); FileNotFoundError if missing."""
    base = Path(root) if root is not None else data_dir()
    path = base / relative
    if not path.is_file():
        where = f"the data folder {base}" if root is not None else f"{DATA_ENV}={base}"
        raise FileNotFoundError(f"data file {path} does not exist ({relative} under {where})")
    return path


def _read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc})") from None


def _header(data: bytes, path: Path, magic: int, ndims: int) -> tuple[int, ...]:
    size = 4 * (1 + ndims)
    if len(data) < size:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header "
                        f"of {size} bytes")
    found, *dims = (int(v) for v in np.frombuffer(data[:size], dtype=">u4"))
    if found != magic:
        raise DataError(f"{path}: IDX magic number is {found}, expected {magic}")
    expected = size + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: header announces {dims} ({expected} bytes in all), "
                        f"the file holds {len(data)} bytes")
    return tuple(dims)


def read_idx_images(path: str | Path) -> np.ndarray:
    """A gzipped IDX image file (magic 2051, 16-byte header) as uint8 (N, H, W)."""
    path = Path(path)
    data = _read_gzip(path)
    n, h, w = _header(data, path, _IDX_IMAGES_MAGIC, 3)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h, w)


def read_idx_labels(path: str | Path) -> np.ndarray:
    """A gzipped IDX label file (magic 2049, 8-byte header) as uint8 (N,)."""
    path = Path(path)
    data = _read_gzip(path)
    (n,) = _header(data, path, _IDX_LABELS_MAGIC, 1)
    return np.frombuffer(data, dtype=np.uint8, offset=8).copy()


def load_mnist_test(root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set: images float32 (10000, 28, 28) in [0, 1], labels int64 (10000,).

    ``root`` is the data folder holding ``mnist/`` (default ``$SYNTH_DATA_DIR``).
    """
    images_path = data_file(MNIST_TEST_IMAGES, root)
    labels_path = data_file(MNIST_TEST_LABELS, root)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape != (MNIST_TEST_COUNT, 28, 28):
        raise DataError(f"{images_path}: expected {MNIST_TEST_COUNT} images of 28x28, "
                        f"got shape {images.shape}")
    if labels.shape != (MNIST_TEST_COUNT,):
        raise DataError(f"{labels_path}: expected {MNIST_TEST_COUNT} labels, "
                        f"got {len(labels)}")
    if labels.max() > 9:
        raise DataError(f"{labels_path}: digit labels must be 0..9, found {labels.max()}")
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled 8x8 digits (no download): images float32 (1797, 8, 8) in
    [0, 1] (the stored 0..16 divided by 16), labels int64 (1797,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float32) / np.float32(16.0)
    return images, np.asarray(digits.target, dtype=np.int64)


__all__ = ["DATA_ENV", "DataError", "data_dir", "data_file", "read_idx_images",
           "read_idx_labels", "load_mnist_test", "load_digits_images"]
