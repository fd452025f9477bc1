"""Whole-volume inference at nnU-Net's standard: Gaussian-weighted sliding windows and mirroring.

nnU-Net (Isensee et al., Nature Methods 18, 2021; github.com/MIC-DKFZ/nnUNet, ``sliding_window_prediction.py``
and ``nnUNetPredictor.predict_sliding_window_return_logits``) predicts a volume with windows of the training
patch placed at a step of half the patch, each window's output weighted by a Gaussian importance map
(sigma 1/8 of the patch per axis, centred, scaled to 1 at the centre, never 0), the sum divided by the summed
weights, and optionally averaged over all mirrorings of the input (each spatial axis flipped or not: 8 in 3D,
4 in 2D). Here:

- :func:`window_starts`: nnU-Net's placement: ``ceil((size - patch) / (patch * step)) + 1`` windows per
  axis, spread evenly from 0 to ``size - patch`` (rounded), so the first and last touch the borders;
- :func:`gaussian_importance`: the map; a separable Gaussian ``exp(-(x - c)^2 / (2 sigma^2))`` per axis,
  ``c = patch // 2``;
- :func:`sliding_window`: a volume ``(D, H, W, C)`` (padded with 0 to at least one patch, the padding cut
  off again) to softmax probabilities ``(D, H, W, K)``: windows in batches through one ``tf.function``
  (mirrored copies in the same batch), probabilities (not logits: the same average an ensemble of runs
  takes) accumulated with the weights;
- :func:`slice_wise`: a 2D model's probabilities, slice by slice, each resized to the model's input and back
  (the slices are what the model trained on), mirrored over H and W when asked.

A window at least the size of the volume is the whole-volume output (the weights cancel); a model whose
output is constant gives that constant everywhere.
"""

from __future__ import annotations

import itertools
import math
import weakref
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

__all__ = ["window_starts", "gaussian_importance", "sliding_window", "slice_wise", "mirror_axes"]

SIGMA_SCALE = 1.0 / 8  # nnU-Net's default: sigma = patch / 8 per axis


def window_starts(size: int, patch: int, step: float = 0.5) -> list[int]:
    """Where windows of ``patch`` start along an axis of ``size`` (>= patch), at ``step`` of the patch."""
    if size < patch:
        raise ValueError(f"an axis of {size} is shorter than the window {patch}: pad it first")
    if size == patch:
        return [0]
    count = math.ceil((size - patch) / (patch * step)) + 1
    stride = (size - patch) / (count - 1)
    return [int(round(stride * k)) for k in range(count)]


def gaussian_importance(patch: Sequence[int], sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """The importance map of a window (``patch`` shape, float32): 1 at ``patch // 2``, never 0."""
    axes = []
    for n in patch:
        x = np.arange(n, dtype=np.float64)
        sigma = max(n * sigma_scale, 1e-6)
        axes.append(np.exp(-((x - n // 2) ** 2) / (2 * sigma**2)))
    weights = axes[0]
    for axis in axes[1:]:
        weights = np.multiply.outer(weights, axis)
    weights = weights / weights.max()
    smallest = weights[weights > 0].min()
    return np.where(weights > 0, weights, smallest).astype(np.float32)


def mirror_axes(rank: int, tta: bool) -> list[tuple[int, ...]]:
    """The spatial axes flipped by each mirrored copy (batch axis 0, channels last): ``[()]`` without TTA."""
    spatial = range(1, rank + 1)
    if not tta:
        return [()]
    return [axes for k in range(rank + 1) for axes in itertools.combinations(spatial, k)]


_TRACED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()  # per model: traced once, all cases


#: how a model's outputs become probabilities: over the classes (labels) or per output (regions)
ACTIVATIONS = {"softmax": lambda x: tf.nn.softmax(x, axis=-1), "sigmoid": tf.sigmoid}


def _mirrored_probabilities(model: Any, rank: int, tta: bool, activation: str = "softmax") -> Any:
    """A ``tf.function``: windows ``(B, *patch, C)`` -> probabilities (``activation``), averaged over the mirrorings."""
    known = _TRACED.setdefault(model, {})
    if (rank, tta, activation) not in known:
        known[rank, tta, activation] = _trace(model, rank, tta, ACTIVATIONS[activation])
    return known[rank, tta, activation]


def _trace(model: Any, rank: int, tta: bool, activate: Any) -> Any:
    flips = mirror_axes(rank, tta)

    @tf.function(reduce_retracing=True)
    def run(x: tf.Tensor) -> tf.Tensor:
        outputs = []
        for axes in flips:  # unrolled when traced: the mirrorings run as one graph
            inputs = tf.reverse(x, axis=list(axes)) if axes else x
            probs = activate(tf.cast(model(inputs, training=False), tf.float32))
            outputs.append(tf.reverse(probs, axis=list(axes)) if axes else probs)
        return tf.add_n(outputs) / len(flips)

    return run


def sliding_window(
    model: Any,
    image: np.ndarray,
    patch: Sequence[int],
    *,
    batch: int = 2,
    step: float = 0.5,
    tta: bool = False,
    activation: str = "softmax",
) -> np.ndarray:
    """Probabilities ``(D, H, W, K)`` of a 3D ``model`` over ``image`` ``(D, H, W, C)`` (module docstring):
    softmax over the classes, or ``activation="sigmoid"`` per output (region models)."""
    image = np.asarray(image, np.float32)
    shape = np.array(image.shape[:3])
    extra = np.maximum(np.array(patch) - shape, 0)
    before = extra // 2
    padded = np.pad(image, [(int(b), int(e - b)) for b, e in zip(before, extra)] + [(0, 0)])
    corners = list(itertools.product(*(window_starts(n, p, step) for n, p in zip(padded.shape[:3], patch))))
    weights = gaussian_importance(patch)[..., None]
    run = _mirrored_probabilities(model, 3, tta, activation)
    total: np.ndarray | None = None
    weight_sum = np.zeros((*padded.shape[:3], 1), np.float32)
    for k in range(0, len(corners), batch):
        chunk = corners[k : k + batch]
        x = np.stack([padded[d : d + patch[0], h : h + patch[1], w : w + patch[2]] for d, h, w in chunk])
        probs = run(tf.constant(x)).numpy()
        if total is None:
            total = np.zeros((*padded.shape[:3], probs.shape[-1]), np.float32)
        for (d, h, w), window in zip(chunk, probs):
            where = (slice(d, d + patch[0]), slice(h, h + patch[1]), slice(w, w + patch[2]))
            total[where] += window * weights
            weight_sum[where] += weights
    assert total is not None, "at least one window covers the volume"
    out = total / weight_sum
    return out[before[0] : before[0] + shape[0], before[1] : before[1] + shape[1], before[2] : before[2] + shape[2]]


def slice_wise(
    model: Any,
    image: np.ndarray,
    size: Sequence[int],
    *,
    batch: int = 16,
    tta: bool = False,
    activation: str = "softmax",
) -> np.ndarray:
    """Probabilities ``(D, H, W, K)`` of a 2D ``model`` over the axial slices of ``image`` ``(D, H, W, C)``,
    each resized to ``size`` (bilinear) and its output back (``activation`` as :func:`sliding_window`)."""
    image = np.asarray(image, np.float32)
    depth, height, width = image.shape[:3]
    run = _mirrored_probabilities(model, 2, tta, activation)
    parts = []
    for start in range(0, depth, batch):
        x = tf.image.resize(image[start : start + batch], size, method="bilinear")
        probs = tf.image.resize(run(x), (height, width), method="bilinear")
        parts.append(probs.numpy())
    return np.concatenate(parts, axis=0)
