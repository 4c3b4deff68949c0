"""Templates read off a network: input gradients, Jacobian directions, first-layer filters.

A template is a constant image (:class:`dsl.images.Template`); the search
compares images with it (``dot``, ``cosine``, ``centered_dot``).  Templates
from the *data* (class means, principal components, exemplars) live in
:mod:`dsl.images`; the ones here come from the *network*, through a
:class:`~oracles.torch_oracle.TorchOracle`:

* ``grad_aligned``: the input gradient of the logit difference, averaged
  over images after aligning each gradient's sign with the leading singular
  vector of all of them.  A label that is a band on a linear function of the
  pixels (``a < w . x < b``) has gradients ``+w`` on one side of the band and
  ``-w`` on the other: a plain mean cancels them, the aligned mean recovers
  ``w``.
* ``grad_smooth``: the same over noisy copies of the images (SmoothGrad),
  which averages out the piecewise-linear jitter of ReLU and max-pooling.
* ``jacobian_sv<k>``: the leading right singular vectors of the stacked
  gradients (the directions the logit is most sensitive to).
* ``grad_mask_pos`` / ``grad_mask_neg``: where the aligned gradient is
  clearly positive (negative): a region mask.
* ``conv1_<c>``: each first-layer filter *applied*: where channel ``c``
  responds more on positive-labelled than on negative-labelled images.
* ``grad_exemplar_<i>``: the data images whose signed form (``2x - 1``)
  lines up best with the aligned gradient: what the network's sensitivity
  looks like, as a real image.

Every template is scaled to a largest absolute pixel of 1 with that pixel
positive (signs of gradient directions are arbitrary: thresholds and bands
do not care), and records its ``source`` ("network:grad-aligned" ...).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import nn

from dsl.images import Template
from oracles.base import OracleError

#: Name of the image input of image oracles.
IMAGE_INPUT = "image"


def _normalise(v: np.ndarray) -> np.ndarray:
    """Scaled to a largest absolute value of 1, that value positive (0 stays 0)."""
    v = np.asarray(v, dtype=np.float64)
    peak = v.flat[int(np.argmax(np.abs(v)))]
    return v / peak if peak != 0 else v


def _images(images) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 3 or len(arr) == 0:
        raise OracleError(f"images must be a non-empty (N, H, W) array, got shape {arr.shape}")
    return arr


def aligned_mean(gradients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(aligned mean, leading right singular vector) of per-image gradients (N, H, W).

    Each gradient's sign is flipped to agree with the leading singular
    vector ``v`` (``sign(g . v)``), then the gradients are averaged.
    """
    g = np.asarray(gradients, dtype=np.float64)
    flat = g.reshape(len(g), -1)
    v = _top_directions(flat, 1)[0]
    signs = np.sign(flat @ v)
    signs[signs == 0] = 1.0
    return (signs[:, None] * flat).mean(axis=0).reshape(g.shape[1:]), v.reshape(g.shape[1:])


def _top_directions(flat: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading right singular vectors of ``flat`` (N, D), as rows."""
    if len(flat) >= flat.shape[1]:
        values, vectors = np.linalg.eigh(flat.T @ flat)
        return vectors[:, np.argsort(values)[::-1][:k]].T
    return np.linalg.svd(flat, full_matrices=False)[2][:k]


def gradient_templates(oracle, images, *, singular: int = 2, smooth_samples: int = 2,
                       noise: float = 0.3, masks: bool = True, max_images: int = 3000,
                       seed: int = 0) -> list[Template]:
    """Templates from the input gradients of the logit difference (see the module doc).

    ``oracle`` needs ``input_gradients`` (a TorchOracle over one image input);
    at most ``max_images`` of ``images`` (N, H, W) in [0, 1] are used.
    ``smooth_samples`` noisy copies (Gaussian, std ``noise``, clipped to
    [0, 1]) give ``grad_smooth``; 0 leaves it out.
    """
    arr = _images(images)
    rng = np.random.default_rng(seed)
    if len(arr) > max_images:
        arr = arr[np.sort(rng.choice(len(arr), max_images, replace=False))]
    grads = oracle.input_gradients({IMAGE_INPUT: arr})
    if grads.shape != arr.shape:
        raise OracleError(f"input gradients have shape {grads.shape}, expected {arr.shape}: "
                          f"the oracle must read one image input")
    mean, _ = aligned_mean(grads)
    out = [Template.from_array(_normalise(mean), "grad_aligned", source="network:grad-aligned")]
    if smooth_samples > 0:
        total = np.zeros_like(grads)
        for _ in range(smooth_samples):
            noisy = np.clip(arr + rng.normal(0.0, noise, arr.shape), 0.0, 1.0).astype(arr.dtype)
            total += oracle.input_gradients({IMAGE_INPUT: noisy})
        smooth, _ = aligned_mean(total)
        out.append(Template.from_array(_normalise(smooth), "grad_smooth",
                                       source=f"network:smoothgrad(noise={noise:g})"))
    directions = _top_directions(grads.reshape(len(grads), -1), singular) if singular else []
    for k, v in enumerate(directions):
        out.append(Template.from_array(_normalise(v.reshape(arr.shape[1:])), f"jacobian_sv{k}",
                                       source=f"network:jacobian-sv{k}"))
    if masks:
        scaled = _normalise(mean)
        cut = 0.1  # "clearly" signed: beyond a tenth of the peak
        for name, mask in (("grad_mask_pos", scaled > cut), ("grad_mask_neg", scaled < -cut)):
            if mask.any() and not mask.all():
                out.append(Template.from_array(mask.astype(np.float64), name,
                                               source=f"network:{name.replace('_', '-')}"))
    return out


def first_conv(module: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of the first ``Conv2d`` of ``module``."""
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Conv2d):
            return name, sub
    raise OracleError(f"{type(module).__name__} has no Conv2d layer")


def filter_templates(oracle, images, labels, *, max_images: int = 3000,
                     seed: int = 0) -> list[Template]:
    """First-layer filters applied: per channel, the mean response map on
    positive-labelled images minus that on negative ones, placed back on the
    input grid (a valid 3x3 convolution's output pixel sits at the centre of
    its window).  Channels that never respond differently are left out."""
    arr = _images(images)
    z = np.asarray(labels).astype(bool)
    if z.shape != (len(arr),):
        raise OracleError(f"labels must have shape ({len(arr)},), got {z.shape}")
    if z.all() or not z.any():
        return []
    name, conv = first_conv(oracle.module)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(arr))
    if len(arr) > max_images:
        rows = np.sort(rng.choice(len(arr), max_images, replace=False))
    acts = oracle.features({IMAGE_INPUT: arr[rows]}, [name])[name]
    c = conv.out_channels
    side = acts.shape[1] // c
    h_out = int(round(np.sqrt(side)))
    if h_out * h_out != side:
        raise OracleError(f"layer {name!r} output of width {acts.shape[1]} is not {c} square maps")
    maps = np.maximum(acts, 0.0).reshape(len(rows), c, h_out, h_out)
    contrast = maps[z[rows]].mean(axis=0) - maps[~z[rows]].mean(axis=0)
    h, w = arr.shape[1:]
    kh, kw = conv.kernel_size
    ph, pw = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
    top, left = kh // 2 - ph, kw // 2 - pw
    out = []
    for k in range(c):
        grid = np.zeros((h, w))
        hh, ww = min(h_out, h - top), min(h_out, w - left)
        grid[top:top + hh, left:left + ww] = contrast[k, :hh, :ww]
        if np.abs(grid).max() > 1e-9:
            out.append(Template.from_array(_normalise(grid), f"conv1_{k}",
                                           source=f"network:{name}-filter{k}-applied"))
    return out


def network_aligned_exemplars(images, direction: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` images whose signed form ``2x - 1`` lines up best
    (by |cosine|) with a network direction (e.g. the aligned gradient): the
    data points the network's sensitivity looks like."""
    arr = _images(images).reshape(len(images), -1).astype(np.float64)
    d = np.asarray(direction, dtype=np.float64).ravel()
    signed = 2 * arr - 1
    score = np.abs(signed @ d) / (np.linalg.norm(signed, axis=1) * np.linalg.norm(d) + 1e-12)
    return np.argsort(-score, kind="stable")[:k]


def network_templates(oracle, images, labels=None, *, exemplars: int = 3,
                      filters: bool = True, row_ids: Sequence[int] | None = None,
                      **kwargs) -> list[Template]:
    """All network templates: gradients (:func:`gradient_templates`), applied
    first-layer filters (when the network has a Conv2d and ``labels`` are
    given), and the ``exemplars`` images most like the aligned gradient,
    named by ``row_ids[i]`` (default ``i``): their rows in the caller's data."""
    out = gradient_templates(oracle, images, **kwargs)
    if filters and labels is not None:
        try:
            out += filter_templates(oracle, images, labels)
        except OracleError:  # no convolution to read: gradients only
            pass
    if exemplars > 0:
        aligned = next(t for t in out if t.name == "grad_aligned")
        arr = _images(images)
        ids = np.arange(len(arr)) if row_ids is None else np.asarray(row_ids)
        for i in network_aligned_exemplars(arr, aligned.array, exemplars):
            k = int(ids[int(i)])
            out.append(Template.from_array(arr[int(i)], f"grad_exemplar_{k}",
                                           source=f"exemplar:{k} (aligned with "
                                                  f"network:grad-aligned)"))
    return out


def template_sources(templates: Sequence[Template]) -> Mapping[str, str]:
    """``{T_<name>: source}`` for printing and JSON."""
    return {t.identifier: t.source for t in templates}


__all__ = ["aligned_mean", "gradient_templates", "filter_templates", "first_conv",
           "network_aligned_exemplars", "network_templates", "template_sources"]
