"""Loss pieces that a project's ``core/losses.py`` composes.

Every function here returns ``loss(y_true, y_pred) -> (B,)``: one float32 value per example, whose
mean over the batch is the batch's loss. ``model.fit`` takes the mean itself; a custom loop reduces
with ``tf.nn.compute_average_loss(per_example, global_batch_size=...)``, which is the same mean on
one device and the correct one under ``tf.distribute``.

Losses over pixels (or voxels) follow one convention: labels ``(B, ..., 1)`` or ``(B, ...)`` of
class ids, logits ``(B, ..., K)``; pixels labelled ``ignore_label`` count in neither numerator nor
denominator, and the batch's loss is the mean over its valid pixels (each example's share is its
sum scaled by ``B / valid pixels in the batch``). Losses measured on the whole batch (soft Dice) give
every example the batch's value.

Under ``tf.distribute`` "the batch" is the global one, spread over the replicas: counts and sums
taken over it (valid pixels, Dice's intersections) are added up over the replicas with
:func:`sum_over_replicas`, so that every replica's shares are those of one device with the
global batch. A loss of your own that normalises by such a count needs the same.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "class_weights",
    "LossFn",
    "sum_over_replicas",
    "sparse_cross_entropy",
    "focal_loss",
    "soft_dice_loss",
    "region_dice_bce",
    "categorical_cross_entropy",
    "weighted_sum",
]

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def sum_over_replicas(*values: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """``values`` summed over the replicas of the ``tf.distribute`` step that calls the loss.

    Outside a replica context, or with one replica, the values as given. Every replica must call it
    (it is a collective): use it for counts over the batch, never under a condition.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return tuple(context.all_reduce(tf.distribute.ReduceOp.SUM, list(values)))


def _labels(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Class ids ``(B, ...)`` int32, whether given with a trailing channel axis or without."""
    labels = tf.cast(y_true, tf.int32)
    if labels.shape.rank == y_pred.shape.rank:
        labels = tf.squeeze(labels, -1)
    return labels


def _valid(labels: tf.Tensor, ignore_label: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``(labels with ignored pixels set to 0, float32 mask of valid pixels)``."""
    valid = tf.not_equal(labels, ignore_label)
    return tf.where(valid, labels, 0), tf.cast(valid, tf.float32)


def _share_of_pixels(per_pixel: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Per-example shares ``(B,)`` whose mean is ``sum(per_pixel * valid) / sum(valid)`` over the batch."""
    axes = list(range(1, per_pixel.shape.rank))
    batch, total_valid = sum_over_replicas(tf.cast(tf.shape(per_pixel)[0], tf.float32), tf.reduce_sum(valid))
    return tf.reduce_sum(per_pixel * valid, axis=axes) * batch / tf.maximum(total_valid, 1.0)


def sparse_cross_entropy(ignore_label: int = 255) -> LossFn:
    """Pixel-wise softmax cross-entropy on logits, ignore-label pixels left out."""

    def cross_entropy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(y_pred, tf.float32)
        labels, valid = _valid(_labels(y_true, logits), ignore_label)
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return _share_of_pixels(per_pixel, valid)

    return cross_entropy


def focal_loss(ignore_label: int = 255, gamma: float = 2.0) -> LossFn:
    """Pixel-wise softmax focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017), ignore-label pixels left out.

    ``gamma = 0`` is :func:`sparse_cross_entropy`.
    """

    def focal(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(y_pred, tf.float32)
        labels, valid = _valid(_labels(y_true, logits), ignore_label)
        log_p = tf.nn.log_softmax(logits, axis=-1)
        log_pt = tf.gather(log_p, labels[..., None], batch_dims=labels.shape.rank)[..., 0]
        per_pixel = -tf.pow(1.0 - tf.exp(log_pt), gamma) * log_pt
        return _share_of_pixels(per_pixel, valid)

    return focal


def soft_dice_loss(
    num_classes: int, ignore_label: int = 255, *, smooth: float = 1.0, include_background: bool = False
) -> LossFn:
    """``1 - mean soft Dice`` of the softmax probabilities, over the whole batch, ignore-label pixels left out.

    Per class ``c``: ``(2 sum(p_c g_c) + smooth) / (sum(p_c) + sum(g_c) + smooth)`` summed over every
    valid pixel of the batch (batch Dice, as nnU-Net uses it); the mean runs over classes ``1..K-1``
    (``0..K-1`` with ``include_background``). Every example gets the batch's value.
    """
    first = 0 if include_background else 1

    def soft_dice(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(y_pred, tf.float32)
        labels, valid = _valid(_labels(y_true, logits), ignore_label)
        onehot = tf.one_hot(labels, num_classes) * valid[..., None]
        probs = tf.nn.softmax(logits, axis=-1) * valid[..., None]
        axes = list(range(logits.shape.rank - 1))
        intersection, total = sum_over_replicas(
            tf.reduce_sum(probs * onehot, axis=axes), tf.reduce_sum(probs + onehot, axis=axes)
        )
        dice = (2.0 * intersection + smooth) / (total + smooth)
        loss = 1.0 - tf.reduce_mean(dice[first:])
        return tf.fill(tf.shape(logits)[:1], loss)

    return soft_dice


def region_dice_bce(
    membership: np.ndarray, ignore_label: int = 255, *, dice_weight: float = 1.0, smooth: float = 1.0
) -> LossFn:
    """Region-based training (nnU-Net's BraTS loss): per region, sigmoid binary cross-entropy plus
    ``dice_weight`` x ``(1 - soft Dice)``, averaged over the regions.

    Args:
        membership: ``(num_classes, num_regions)`` bool: the training ids each region holds
            (:class:`skelgen_runtime.tasks.volume_regions.RegionTable`); labels become region targets
            ``(B, ..., R)`` by it.
        ignore_label: voxels with it count for nothing.

    Logits ``(B, ..., R)``. Cross-entropy: the batch's mean over valid voxels and regions (each
    example's share as in :func:`sparse_cross_entropy`). Dice: per region over the whole batch (batch
    Dice), as :func:`soft_dice_loss`; every example gets the batch's value.
    """
    table = tf.constant(np.asarray(membership, np.float32))
    regions = int(table.shape[1])

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(y_pred, tf.float32)
        labels, valid = _valid(_labels(y_true, logits), ignore_label)
        targets = tf.gather(table, labels) * valid[..., None]
        per_voxel = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), axis=-1)
        bce = _share_of_pixels(per_voxel, valid)
        probs = tf.sigmoid(logits) * valid[..., None]
        axes = list(range(logits.shape.rank - 1))
        intersection, total = sum_over_replicas(
            tf.reduce_sum(probs * targets, axis=axes), tf.reduce_sum(probs + targets, axis=axes)
        )
        dice = (2.0 * intersection + smooth) / (total + smooth)
        dice_loss = 1.0 - tf.reduce_sum(dice) / regions
        return bce + dice_weight * tf.fill(tf.shape(logits)[:1], dice_loss)

    return loss


def categorical_cross_entropy(label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None) -> LossFn:
    """Softmax cross-entropy of one-hot targets ``(B, C)`` and logits ``(B, C)``, per example.

    Args:
        label_smoothing: targets become ``(1 - s) * onehot + s / C``.
        class_weights: ``(C,)``: each example's loss is multiplied by its true class's weight.
    """
    weights = None if class_weights is None else tf.constant(class_weights, tf.float32)

    def cross_entropy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        targets = tf.cast(y_true, tf.float32)
        logits = tf.cast(y_pred, tf.float32)
        onehot = targets
        if label_smoothing:
            classes = tf.cast(tf.shape(targets)[-1], tf.float32)
            targets = targets * (1.0 - label_smoothing) + label_smoothing / classes
        per_example = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        if weights is not None:
            per_example = per_example * tf.reduce_sum(onehot * weights, axis=-1)
        return per_example

    return cross_entropy


def weighted_sum(*terms: tuple[float, LossFn]) -> LossFn:
    """``sum(weight * loss(y_true, y_pred))`` of ``(weight, loss)`` pairs; terms of weight 0 are not computed."""
    kept = [(float(w), fn) for w, fn in terms if w]
    if not kept:
        raise ValueError("weighted_sum needs at least one term with a non-zero weight")

    def combined(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.add_n([w * fn(y_true, y_pred) for w, fn in kept])

    return combined


def class_weights(config, info) -> np.ndarray | None:
    """Per-class loss weights ``(num_classes,)``: from the config, ``balanced`` (N / (C * count_c)), or None."""
    weights = config.train.class_weights
    from skelgen_runtime.errors import ConfigError

    if weights is None:
        return None
    if weights == "balanced":
        from skelgen_runtime.records.reader import read_labels

        counts = np.bincount(read_labels(info, "train", "image/class/label"), minlength=info.num_classes)
        if (counts == 0).any():
            empty = [info.label_map.names[i] for i in np.flatnonzero(counts == 0)]
            raise ConfigError(f"train.class_weights=balanced: classes without train examples: {', '.join(empty)}")
        return counts.sum() / (info.num_classes * counts.astype(np.float64))
    if len(weights) != info.num_classes:
        raise ConfigError(f"train.class_weights has {len(weights)} values; the dataset has {info.num_classes} classes")
    return np.asarray(weights, dtype=np.float64)
