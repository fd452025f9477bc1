"""Image ops shared by every task: pixel normalisation."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize", "denormalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(image: tf.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """Map pixel values ``[0, 255]`` to ``(x / 255 - mean) / std`` per channel, float32."""
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def denormalize(image: tf.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """Inverse of :func:`normalize`, back to uint8 ``[0, 255]``."""
    image = (image * tf.constant(std, tf.float32) + tf.constant(mean, tf.float32)) * 255.0
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
