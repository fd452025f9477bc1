"""Preprocessing for image classification: one image ``(H, W, 3)`` and its integer label."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

__all__ = ["resize", "random_resized_crop", "random_flip"]


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
