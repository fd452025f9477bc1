"""Image ops shared by every task: resizing that does no needless work, one-box geometric transforms,
and pixel normalisation (per example or, fused, per batch).

Images stay uint8 through the per-example part of a pipeline (what a cache holds is the uint8 size);
normalisation runs once per batch: ``(x / 255 - mean) / std`` as one multiply-add.

A *window* is ``[y0, x0, y1, x1]`` in coordinates normalised to the input image (``tf.image.
crop_and_resize``'s box): the part of the input that becomes the output. A window reaching outside
``[0, 1]`` pads (with the ``extrapolation`` value), a window smaller than ``[0, 0, 1, 1]`` zooms in,
and ``x1 < x0`` mirrors left-right; so scale, crop offset, padding and flip are one sampled window
and one resampling per example instead of a chain of whole-image ops.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from skelgen_runtime._shapes import ensure_shape

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize",
    "normalize_batch",
    "denormalize",
    "to_uint8",
    "resize_image",
    "scale_crop_window",
    "flip_window",
    "random_flip_window",
    "crop_to_window",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(
    image: tf.Tensor, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
):
    """Map pixel values ``[0, 255]`` to ``(x / 255 - mean) / std`` per channel, float32.

    ``mean`` and ``std`` None: float32 ``[0, 255]`` as it is, for a model that preprocesses its own input.
    """
    if mean is None or std is None:
        return tf.cast(image, tf.float32)
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def normalize_batch(
    images: tf.Tensor, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
) -> tf.Tensor:
    """:func:`normalize` of uint8 ``(..., 3)`` as one fused ``x * a + b``; float input is returned as it is
    (a pipeline whose per-example step normalised already). ``mean``/``std`` None: a cast to float32."""
    if images.dtype.is_floating:
        return images
    if mean is None or std is None:
        return tf.cast(images, tf.float32)
    scale = tf.constant([1.0 / (255.0 * s) for s in std], tf.float32)
    offset = tf.constant([-m / s for m, s in zip(mean, std)], tf.float32)
    return tf.cast(images, tf.float32) * scale + offset


def denormalize(
    image: tf.Tensor, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
):
    """Inverse of :func:`normalize`, back to uint8 ``[0, 255]``."""
    if mean is not None and std is not None:
        image = (image * tf.constant(std, tf.float32) + tf.constant(mean, tf.float32)) * 255.0
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Round and clip to uint8 (uint8 input unchanged)."""
    if image.dtype == tf.uint8:
        return image
    return tf.saturate_cast(tf.round(image), tf.uint8)


def resize_image(image: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Bilinear resize of ``(H, W, C)`` to ``size``, uint8 out; nothing done at the size already, and the
    antialiasing filter only when shrinking (where it changes the result). An image of static shape
    (a split whose images share one size) is decided here, in Python; otherwise per example."""
    height, width = int(size[0]), int(size[1])
    known = image.shape[:2]
    if known.is_fully_defined():
        if tuple(known) == (height, width):
            out = to_uint8(image)
        else:
            smaller = known[0] > height or known[1] > width
            out = to_uint8(tf.image.resize(image, [height, width], method="bilinear", antialias=smaller))
        return ensure_shape(out, [height, width, image.shape[-1]])
    size = tf.constant([height, width], tf.int32)
    shape = tf.shape(image)[:2]

    def shrink():
        return to_uint8(tf.image.resize(image, size, method="bilinear", antialias=True))

    def enlarge():
        return to_uint8(tf.image.resize(image, size, method="bilinear"))

    out = tf.cond(
        tf.reduce_all(tf.equal(shape, size)),
        lambda: to_uint8(image),
        lambda: tf.cond(tf.reduce_any(shape > size), shrink, enlarge),
    )
    return ensure_shape(out, [height, width, image.shape[-1]])


def scale_crop_window(min_scale: float, max_scale: float, *, crop: bool = True, seed=None) -> tf.Tensor:
    """The window of "zoom by a random ``s`` in ``[min_scale, max_scale]``, then crop (or pad) back to size".

    Same geometry as resizing the image to ``s`` times its size, padding it at the bottom and right to
    the output size if smaller, and cutting a random output-sized window: the window's side is
    ``1 / s`` of the image, its top-left corner uniform in ``[0, 1 - 1 / s]`` (0 when ``s < 1``: the
    padding lies bottom and right). Without ``crop`` (or with ``s`` fixed at 1) the window is the whole
    image, as a resize back to size undoes the zoom.

    Returns:
        float32 ``(4,)`` ``[y0, x0, y1, x1]``.
    """
    if not crop or min_scale == max_scale == 1.0:
        return tf.constant([0.0, 0.0, 1.0, 1.0])
    scale = tf.random.uniform([], min_scale, max_scale, seed=seed)
    side = 1.0 / scale
    room = tf.maximum(1.0 - side, 0.0)
    y0 = tf.random.uniform([], seed=seed) * room
    x0 = tf.random.uniform([], seed=seed) * room
    return tf.stack([y0, x0, y0 + side, x0 + side])


def flip_window(window: tf.Tensor) -> tf.Tensor:
    """The same window mirrored left-right (``x0`` and ``x1`` swapped)."""
    return tf.stack([window[0], window[3], window[2], window[1]])


def random_flip_window(window: tf.Tensor, seed=None) -> tuple[tf.Tensor, tf.Tensor]:
    """``(window mirrored with probability 1/2, whether it was)``."""
    flip = tf.random.uniform([], seed=seed) < 0.5
    return tf.where(flip, flip_window(window), window), flip


def crop_to_window(
    image: tf.Tensor, window: tf.Tensor, size: Sequence[int], *, method: str = "bilinear", extrapolation: float = 0.0
) -> tf.Tensor:
    """Resample ``window`` of ``image`` ``(H, W, C)`` to ``size``: one ``tf.image.crop_and_resize``.

    ``method="nearest"`` for labels (class ids are never mixed); pixels outside the image get
    ``extrapolation``. The result has the input's dtype (rounded for uint8).
    """
    dtype = image.dtype
    if dtype not in (tf.uint8, tf.float32):
        image = tf.cast(image, tf.float32)  # crop_and_resize reads uint8 and float32 as they are
    out = tf.image.crop_and_resize(
        image[None], window[None], [0], [int(size[0]), int(size[1])], method=method, extrapolation_value=extrapolation
    )[0]
    if dtype == tf.uint8 and method != "nearest":
        return to_uint8(out)
    return tf.cast(out, dtype)  # nearest picks stored values (or the extrapolation value): nothing to round
