"""The serving signature every exported model has, and the image ops inside it.

One input, ``images``: uint8 ``(B, H, W, 3)`` RGB, any ``H`` and ``W`` (the images of one call share
a size; ``B`` is usually 1). The model's resizing to ``data.image_size`` and its normalisation happen
inside the graph, so a serving system needs nothing from skelgen. The outputs are the task binding's
(``serving_function`` in ``skelgen_runtime.tasks.*``).

Every op here is a TensorFlow Lite builtin. ``tf.image.resize(..., antialias=True)`` (what the
training pipelines use) is ``ScaleAndTranslate``, which TFLite has neither as a builtin nor as a
Select TF op; :func:`resize_images` computes the same interpolation from gathers and sums.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import tensorflow as tf

from skelgen_runtime.preprocessing.image import normalize

__all__ = ["SIGNATURE_KEY", "INPUT_NAME", "IMAGES", "ServingFunction", "as_signature", "resize_images", "model_input"]

#: the SavedModel signature (and TFLite signature runner) name
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"
#: the input of every serving function
IMAGES = tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_NAME)

#: raw images ``(B, H, W, 3)`` uint8 -> named output tensors
ServingFunction = Callable[[tf.Tensor], Mapping[str, tf.Tensor]]


def as_signature(fn: ServingFunction) -> tf.types.experimental.PolymorphicFunction:
    """``fn`` as the ``tf.function`` that ``predict.py`` calls and ``export.py`` saves (one trace, :data:`IMAGES`)."""
    return tf.function(fn, input_signature=[IMAGES])


def _resize_rows(x: tf.Tensor, size: int) -> tf.Tensor:
    """Resample axis 1 of ``x`` ``(B, N, W, C)`` float32 to ``size`` with ``ScaleAndTranslate``'s triangle filter.

    Output row ``i`` samples the input at ``s = (i + 0.5) * N / size`` (pixel centres); input row ``j``
    weighs ``max(0, 1 - |j + 0.5 - s| / r)`` with ``r = max(N / size, 1)`` (the filter widens when
    shrinking: antialiasing); the weights of rows inside the image are normalised to sum to 1.
    """
    shape = tf.shape(x)
    n = shape[1]
    inv_scale = tf.cast(n, tf.float32) / float(size)
    radius = tf.maximum(inv_scale, 1.0)
    taps = 2 * tf.cast(tf.math.ceil(radius), tf.int32) + 1
    sample = (tf.range(size, dtype=tf.float32) + 0.5) * inv_scale  # (size,)
    source = tf.cast(tf.math.ceil(sample - radius - 0.5), tf.int32)[:, None] + tf.range(taps)[None, :]
    weights = tf.nn.relu(1.0 - tf.abs(tf.cast(source, tf.float32) + 0.5 - sample[:, None]) / radius)
    weights = tf.where((source >= 0) & (source < n), weights, 0.0)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)  # (size, taps)
    rows = tf.gather(x, tf.reshape(tf.clip_by_value(source, 0, n - 1), [-1]), axis=1)
    rows = tf.reshape(rows, [shape[0], size, taps, shape[2] * shape[3]])
    out = tf.reduce_sum(rows * weights[None, :, :, None], axis=2)
    return tf.reshape(out, [shape[0], size, shape[2], shape[3]])


def resize_images(images: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """``tf.image.resize(images, size, "bilinear", antialias=True)`` from TFLite builtin ops.

    Args:
        images: ``(B, H, W, C)``, any real dtype, any ``H``, ``W`` >= 1.
        size: ``(height, width)``, fixed when the graph is built.

    Returns:
        float32 ``(B, height, width, C)``; equal to TensorFlow's within float rounding (about 1e-3
        on a 0-255 scale).
    """
    x = tf.cast(images, tf.float32)
    x = _resize_rows(x, int(size[0]))
    x = _resize_rows(tf.transpose(x, [0, 2, 1, 3]), int(size[1]))
    return tf.transpose(x, [0, 2, 1, 3])


def model_input(
    images: tf.Tensor, image_size: Sequence[int], mean: Sequence[float] | None, std: Sequence[float] | None
) -> tf.Tensor:
    """Raw images ``(B, H, W, 3)`` -> the model's input: float32 ``(B, *image_size, 3)``, resized and normalised
    (``mean``/``std`` None: left in ``[0, 255]`` for a model that preprocesses its own input)."""
    return normalize(resize_images(images, image_size), mean, std)
