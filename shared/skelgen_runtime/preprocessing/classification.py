"""Preprocessing for image classification: one image ``(H, W, 3)`` and its integer label.

:func:`random_transform` is what pipelines use (uint8 in and out, one resampling per example);
:func:`resize`, :func:`random_resized_crop` and :func:`random_flip` are the same steps one by one,
for an augmentation of your own in ``datasets/preprocesses.py``.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.preprocessing.image import crop_to_window, random_flip_window, resize_image

__all__ = ["resize_image", "random_transform", "resize", "random_resized_crop", "random_flip"]


def resize(image: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Bilinear (antialiased) resize to ``size = (height, width)``; float32 output."""
    return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)


def random_resized_crop(image: tf.Tensor, size: Sequence[int], min_area: float = 0.6, seed=None) -> tf.Tensor:
    """Crop a random window covering ``[min_area, 1]`` of the image (aspect 3/4..4/3), resize to ``size``."""
    shape = tf.shape(image)
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=min_area,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_area, 1.0),
        use_image_if_no_bounding_boxes=True,
        seed=seed or 0,
    )
    return resize(tf.slice(image, begin, crop_size), size)


def random_flip(image: tf.Tensor, seed=None) -> tf.Tensor:
    """Flip left-right with probability 1/2."""
    return tf.image.random_flip_left_right(image, seed=seed)


def random_transform(
    image: tf.Tensor, size: Sequence[int], *, crop: bool = True, min_area: float = 0.6, flip: bool = True, seed=None
) -> tf.Tensor:
    """Random resized crop (a window covering ``[min_area, 1]`` of the image, aspect 3/4..4/3) and
    left-right flip, as one resampling to ``size``; without ``crop`` the whole image. uint8 out."""
    if crop:
        shape = tf.shape(image)
        begin, extent, _ = tf.image.sample_distorted_bounding_box(
            shape,
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            min_object_covered=min_area,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(min_area, 1.0),
            use_image_if_no_bounding_boxes=True,
            seed=seed or 0,
        )
        h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        y0, x0 = tf.cast(begin[0], tf.float32) / h, tf.cast(begin[1], tf.float32) / w
        window = tf.stack([y0, x0, y0 + tf.cast(extent[0], tf.float32) / h, x0 + tf.cast(extent[1], tf.float32) / w])
    else:
        window = tf.constant([0.0, 0.0, 1.0, 1.0])
        if not flip:
            return resize_image(image, size)
    if flip:
        window, _ = random_flip_window(window, seed=seed)
    return ensure_shape(crop_to_window(tf.cast(image, tf.uint8), window, size), [int(size[0]), int(size[1]), 3])
