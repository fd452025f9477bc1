"""Mask-aware preprocessing for semantic segmentation.

Images are ``(H, W, 3)`` and labels ``(H, W, 1)`` of class ids. Every op applies the same geometry
to both, resizes labels with nearest neighbour (never mixing class ids), and fills any area it
invents (padding) with the ignore label so the loss and metrics leave it out.

:func:`resize_pair` and :func:`random_transform` are what pipelines use (uint8 in and out, one
resampling per example); :func:`resize`, :func:`random_scale`, :func:`random_crop` and
:func:`random_flip` are the same steps one by one, for an augmentation of your own in
``datasets/preprocesses.py``.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.preprocessing.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_to_window,
    denormalize,
    normalize,
    random_flip_window,
    resize_image,
    scale_crop_window,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "resize_pair",
    "random_transform",
    "resize",
    "random_scale",
    "pad_to_size",
    "random_crop",
    "random_flip",
    "normalize",
    "denormalize",
]


def resize_pair(image: tf.Tensor, label: tf.Tensor | None, size: Sequence[int]):
    """Resize to ``size = (height, width)``: the image bilinear (antialiased only when shrinking), the label
    nearest; nothing done at the size already (decided in Python for inputs of static shape).

    Returns ``(image uint8 (h, w, 3), label uint8 (h, w, 1) or None)``.
    """
    image = resize_image(image, size)
    if label is not None and label.shape[:2].is_fully_defined():  # static shape: decided here, in Python
        label = ensure_shape(tf.cast(_nearest(label, size), tf.uint8), [int(size[0]), int(size[1]), 1])
    elif label is not None:
        target = tf.constant([int(size[0]), int(size[1])], tf.int32)
        label = tf.cond(
            tf.reduce_all(tf.equal(tf.shape(label)[:2], target)),
            lambda: tf.cast(label, tf.uint8),
            lambda: tf.cast(tf.image.resize(label, target, method="nearest"), tf.uint8),
        )
        label = ensure_shape(label, [int(size[0]), int(size[1]), 1])
    return image, label


def _nearest(label: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """``tf.image.resize(label, size, "nearest")`` of a label of static shape: nothing at the size already, a
    pick when it shrinks by whole factors (nearest with half-pixel centres picks rows
    ``f // 2, f // 2 + f, ...``: the same pixels, without the resampling op), else the resize."""
    (height, width), target = label.shape[:2], (int(size[0]), int(size[1]))
    if (height, width) == target:
        return label
    if height % target[0] == 0 and width % target[1] == 0:
        fy, fx = height // target[0], width // target[1]
        blocks = tf.reshape(label, [target[0], fy, target[1], fx, label.shape[-1]])  # a view: no copy
        return blocks[:, fy // 2, :, fx // 2]
    return tf.image.resize(label, target, method="nearest")


def random_transform(
    image: tf.Tensor,
    label: tf.Tensor,
    size: Sequence[int],
    *,
    scale_min: float = 1.0,
    scale_max: float = 1.0,
    crop: bool = True,
    flip: bool = True,
    ignore_label: int = 255,
    seed=None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Random zoom, crop (or pad) to ``size`` and left-right flip, as one resampling of image and label.

    The geometry of :func:`random_scale` then :func:`random_crop` (or a resize back to ``size`` without
    ``crop``) then :func:`random_flip` on an image at ``size`` (see
    :func:`~skelgen_runtime.preprocessing.image.scale_crop_window`); it applies to an input of any size.
    Padding is 0 in the image and ``ignore_label`` in the label.

    Returns:
        ``(image uint8 (height, width, 3), label uint8 (height, width, 1))``.
    """
    window = scale_crop_window(scale_min, scale_max, crop=crop, seed=seed)
    if flip:
        window, _ = random_flip_window(window, seed=seed)
    height, width = int(size[0]), int(size[1])
    image = ensure_shape(crop_to_window(image, window, size), [height, width, 3])
    label = crop_to_window(tf.cast(label, tf.uint8), window, size, method="nearest", extrapolation=ignore_label)
    return image, ensure_shape(label, [height, width, 1])


def resize(image: tf.Tensor, label: tf.Tensor | None, size: Sequence[int]):
    """Resize to ``size = (height, width)``: bilinear for the image, nearest for the label.

    Returns ``(image float32 (h, w, 3), label uint8 (h, w, 1) or None)``.
    """
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    if label is not None:
        label = tf.image.resize(label, size, method="nearest")
        label = tf.cast(label, tf.uint8)
    return image, label


def random_scale(image: tf.Tensor, label: tf.Tensor, min_scale: float, max_scale: float, seed=None):
    """Scale both by one random factor in ``[min_scale, max_scale]`` (image bilinear, label nearest)."""
    if min_scale == max_scale == 1.0:
        return image, label
    scale = tf.random.uniform([], min_scale, max_scale, seed=seed)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    new_size = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(tf.cast(image, tf.float32), new_size, method="bilinear")
    label = tf.cast(tf.image.resize(label, new_size, method="nearest"), tf.uint8)
    return image, label


def pad_to_size(image: tf.Tensor, label: tf.Tensor, size: Sequence[int], ignore_label: int = 255):
    """Pad bottom/right to at least ``size``: image with 0, label with ``ignore_label``."""
    height, width = size
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    image = tf.pad(image, paddings, constant_values=0)
    label = tf.pad(label, paddings, constant_values=ignore_label)
    return image, label


def random_crop(image: tf.Tensor, label: tf.Tensor, size: Sequence[int], ignore_label: int = 255, seed=None):
    """Pad (with ignore) if needed, then crop one random ``size`` window from both at the same place."""
    image, label = pad_to_size(image, label, size, ignore_label)
    height, width = size
    shape = tf.shape(image)
    y = tf.random.uniform([], 0, shape[0] - height + 1, dtype=tf.int32, seed=seed)
    x = tf.random.uniform([], 0, shape[1] - width + 1, dtype=tf.int32, seed=seed)
    image = image[y : y + height, x : x + width]
    label = label[y : y + height, x : x + width]
    image = ensure_shape(image, [height, width, 3])
    label = ensure_shape(label, [height, width, 1])
    return image, label


def random_flip(image: tf.Tensor, label: tf.Tensor, seed=None):
    """Flip both left-right with probability 1/2."""
    flip = tf.random.uniform([], seed=seed) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    label = tf.cond(flip, lambda: tf.reverse(label, [1]), lambda: label)
    return image, label
