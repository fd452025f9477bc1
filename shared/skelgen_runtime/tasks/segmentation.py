"""Semantic segmentation: loss, training metrics, evaluation and prediction.

Models map normalised images ``(B, H, W, 3)`` to logits ``(B, H, W, num_classes)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.metrics.segmentation import ConfusionMatrix, SegmentationScores, scores_from_confusion
from skelgen_runtime.preprocessing.segmentation import normalize

__all__ = ["MONITOR", "loss", "train_metrics", "evaluate", "predict_label"]

#: the validation metric that picks the best checkpoint
MONITOR = "val_miou"


def loss(ignore_label: int = 255) -> keras.losses.Loss:
    """Pixel-wise cross-entropy on logits; pixels labelled ``ignore_label`` contribute nothing."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_label)


def train_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    """Mean IoU on argmax predictions (labels outside ``[0, num_classes)`` such as 255 are dropped)."""
    return [keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_pred=False, name="miou")]


def _logits_at(logits: tf.Tensor, height: int, width: int) -> np.ndarray:
    """Upsample one example's logits ``(h, w, C)`` to ``(height, width)`` and take the argmax."""
    resized = tf.image.resize(logits, (height, width), method="bilinear")
    return tf.argmax(resized, axis=-1, output_type=tf.int32).numpy()


def evaluate(model: keras.Model, batches: Iterable[dict], num_classes: int) -> SegmentationScores:
    """Score ``model`` at each example's original resolution.

    Args:
        batches: dicts with ``image`` (normalised, model size, ``(B, h, w, 3)``), ``label``
            (original labels padded with 255, ``(B, H, W, 1)``), ``height`` and ``width`` ``(B,)``.
    """
    confusion = ConfusionMatrix(num_classes)
    for batch in batches:
        logits = model(batch["image"], training=False)
        labels = batch["label"].numpy()
        for i, (h, w) in enumerate(zip(batch["height"].numpy(), batch["width"].numpy())):
            confusion.update(labels[i, :h, :w, 0], _logits_at(logits[i], int(h), int(w)))
    return scores_from_confusion(confusion.matrix)


def predict_label(
    model: keras.Model,
    image: np.ndarray,
    image_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """Class ids ``(H, W)`` uint8 for one RGB image ``(H, W, 3)`` at its own resolution."""
    x = tf.image.resize(tf.cast(image, tf.float32), image_size, method="bilinear", antialias=True)
    x = normalize(x, mean, std)[None]
    logits = model(x, training=False)[0]
    return _logits_at(logits, image.shape[0], image.shape[1]).astype(np.uint8)
