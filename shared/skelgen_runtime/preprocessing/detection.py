"""Box-aware preprocessing for object detection.

Every op takes one example (no batch axis): an image ``(H, W, 3)`` and its boxes ``(N, 4)`` as
``[ymin, xmin, ymax, xmax]`` normalised to ``[0, 1]`` of the image (the Object Detection API's
format). Normalised boxes are unchanged by a plain resize, so only ops that move or cut the picture
touch them. Ops that can cut objects off also return ``keep``, a bool ``(N,)`` mask of the boxes that
are still visible enough; apply it to every per-object tensor with :func:`filter_objects`.

:func:`random_transform` (zoom, crop or pad, flip as one resampling, uint8 in and out) is what
pipelines use; :func:`random_scale_crop` and :func:`random_flip` are the same steps one by one, for an
augmentation of your own in ``datasets/preprocesses.py``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

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
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OBJECT_KEYS",
    "resize_image",
    "random_transform",
    "resize",
    "flip_left_right",
    "random_flip",
    "crop_boxes",
    "random_scale_crop",
    "filter_objects",
    "normalize",
    "denormalize",
]

#: the per-object keys of a decoded detection example (see ``schemas/detection.py``)
OBJECT_KEYS = ("boxes", "classes", "is_crowd", "area", "difficult")


def resize(image: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Resize to ``size = (height, width)`` (bilinear, antialiased), float32. Normalised boxes stay valid."""
    return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)


def flip_left_right(image: tf.Tensor, boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirror the image and its boxes: ``[ymin, xmin, ymax, xmax] -> [ymin, 1 - xmax, ymax, 1 - xmin]``."""
    return tf.reverse(image, [1]), _mirror_boxes(boxes)


def _mirror_boxes(boxes: tf.Tensor) -> tf.Tensor:
    """Normalised boxes mirrored left-right."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)


def random_flip(image: tf.Tensor, boxes: tf.Tensor, seed: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`flip_left_right` with probability 1/2."""
    flip = tf.random.uniform([], seed=seed) < 0.5
    return tf.cond(flip, lambda: flip_left_right(image, boxes), lambda: (image, boxes))


def crop_boxes(boxes: tf.Tensor, window: tf.Tensor, min_visible: float = 0.3) -> tuple[tf.Tensor, tf.Tensor]:
    """Express ``boxes`` in the frame of ``window`` and clip them to it.

    Args:
        boxes: float32 ``(N, 4)`` ``[ymin, xmin, ymax, xmax]``, normalised to the current image.
        window: float32 ``(4,)`` ``[y0, x0, y1, x1]``, the new frame in the same coordinates (it may
            reach outside ``[0, 1]`` when the new frame is padded).
        min_visible: keep a box only if at least this fraction of its area lies inside the window.

    Returns:
        ``(boxes, keep)``: boxes normalised to the window and clipped to ``[0, 1]`` ``(N, 4)``, and
        bool ``(N,)``, True for boxes with a positive area inside the window of at least
        ``min_visible`` times their full area.
    """
    window = tf.cast(window, tf.float32)
    origin = tf.stack([window[0], window[1], window[0], window[1]])
    extent = tf.stack([window[2] - window[0], window[3] - window[1]] * 2)
    moved = (boxes - origin) / extent
    clipped = tf.clip_by_value(moved, 0.0, 1.0)

    def area(b: tf.Tensor) -> tf.Tensor:
        return tf.maximum(b[:, 2] - b[:, 0], 0.0) * tf.maximum(b[:, 3] - b[:, 1], 0.0)

    visible = area(clipped)
    keep = (visible > 0.0) & (visible >= min_visible * area(moved))
    return clipped, keep


def random_scale_crop(
    image: tf.Tensor,
    boxes: tf.Tensor,
    size: Sequence[int],
    min_scale: float,
    max_scale: float,
    *,
    min_visible: float = 0.3,
    pad_value: float = 0.0,
    seed: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Zoom in or out at random, then cut or pad to ``size`` at a random place.

    The image is resized to ``size * s`` for one random ``s`` in ``[min_scale, max_scale]``. When
    that is larger than ``size``, a random ``size`` window is cut out; when smaller, it is placed at a
    random position on a ``size`` canvas filled with ``pad_value``.

    Returns:
        ``(image float32 (height, width, 3), boxes (N, 4) normalised to the new image and clipped,
        keep bool (N,))``; see :func:`crop_boxes` for ``keep``.
    """
    height, width = int(size[0]), int(size[1])
    scale = tf.random.uniform([], min_scale, max_scale, seed=seed)
    scaled = tf.cast(tf.round(tf.constant([height, width], tf.float32) * scale), tf.int32)
    scaled = tf.maximum(scaled, 1)
    image = tf.image.resize(tf.cast(image, tf.float32), scaled, method="bilinear", antialias=True)
    room = tf.constant([height, width], tf.int32) - scaled  # < 0: crop, > 0: pad

    def offset(r: tf.Tensor) -> tf.Tensor:
        """Where the scaled image's top (left) edge lands on the canvas: in [min(0, r), max(0, r)]."""
        return tf.random.uniform([], tf.minimum(r, 0), tf.maximum(r, 0) + 1, dtype=tf.int32, seed=seed)

    dy, dx = offset(room[0]), offset(room[1])
    pad_top, pad_left = tf.maximum(dy, 0), tf.maximum(dx, 0)
    pad_bottom, pad_right = tf.maximum(room[0] - dy, 0), tf.maximum(room[1] - dx, 0)
    image = tf.pad(image, [[pad_top, pad_bottom], [pad_left, pad_right], [0, 0]], constant_values=pad_value)
    top, left = tf.maximum(-dy, 0), tf.maximum(-dx, 0)
    image = ensure_shape(image[top : top + height, left : left + width], [height, width, 3])

    # the canvas in the scaled image's normalised coordinates
    sh, sw = tf.cast(scaled[0], tf.float32), tf.cast(scaled[1], tf.float32)
    y0, x0 = -tf.cast(dy, tf.float32) / sh, -tf.cast(dx, tf.float32) / sw
    window = tf.stack([y0, x0, y0 + height / sh, x0 + width / sw])
    boxes, keep = crop_boxes(boxes, window, min_visible)
    return image, boxes, keep


def _scale_crop_window(size: Sequence[int], min_scale: float, max_scale: float, seed=None) -> tf.Tensor:
    """The window of :func:`random_scale_crop`: zoom by ``s``, then a random ``size`` cut (or a padded canvas)."""
    height, width = int(size[0]), int(size[1])
    scale = tf.random.uniform([], min_scale, max_scale, seed=seed)
    scaled = tf.maximum(tf.cast(tf.round(tf.constant([height, width], tf.float32) * scale), tf.int32), 1)
    room = tf.constant([height, width], tf.int32) - scaled  # < 0: crop, > 0: pad

    def offset(r: tf.Tensor) -> tf.Tensor:
        return tf.random.uniform([], tf.minimum(r, 0), tf.maximum(r, 0) + 1, dtype=tf.int32, seed=seed)

    sh, sw = tf.cast(scaled[0], tf.float32), tf.cast(scaled[1], tf.float32)
    y0, x0 = -tf.cast(offset(room[0]), tf.float32) / sh, -tf.cast(offset(room[1]), tf.float32) / sw
    return tf.stack([y0, x0, y0 + height / sh, x0 + width / sw])


def random_transform(
    image: tf.Tensor,
    boxes: tf.Tensor,
    size: Sequence[int],
    *,
    scale_min: float = 1.0,
    scale_max: float = 1.0,
    crop: bool = True,
    flip: bool = True,
    min_visible: float = 0.3,
    pad_value: float = 0.0,
    seed=None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Random zoom, crop or pad to ``size`` and left-right flip, as one resampling; boxes follow.

    The geometry of :func:`random_scale_crop` then :func:`random_flip`, on an input of any size (the
    window is in normalised coordinates). Without ``crop``, or with the scale fixed at 1, the image is
    only resized (and flipped).

    Returns:
        ``(image uint8 (height, width, 3), boxes (N, 4) normalised to it and clipped, keep bool (N,))``.
    """
    height, width = int(size[0]), int(size[1])
    if crop and (scale_min != 1.0 or scale_max != 1.0):
        window = _scale_crop_window(size, scale_min, scale_max, seed=seed)
        boxes, keep = crop_boxes(boxes, window, min_visible)
    else:
        window = tf.constant([0.0, 0.0, 1.0, 1.0])
        keep = tf.ones(tf.shape(boxes)[:1], tf.bool)
    if flip:
        window, mirrored = random_flip_window(window, seed=seed)
        boxes = tf.where(mirrored, _mirror_boxes(boxes), boxes)
    image = crop_to_window(tf.cast(image, tf.uint8), window, size, extrapolation=pad_value)
    return ensure_shape(image, [height, width, 3]), boxes, keep


def filter_objects(example: Mapping[str, tf.Tensor], keep: tf.Tensor) -> dict[str, tf.Tensor]:
    """``example`` with every per-object tensor (:data:`OBJECT_KEYS`) reduced to the ``keep`` rows."""
    return {k: tf.boolean_mask(v, keep) if k in OBJECT_KEYS else v for k, v in example.items()}
