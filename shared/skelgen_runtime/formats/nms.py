"""Per-class non-maximum suppression from elementwise TensorFlow ops, the same in TensorFlow and TFLite.

``tf.image.combined_non_max_suppression`` is the usual batched, per-class NMS, but TensorFlow Lite
has no builtin for it (it needs the Flex delegate, which ``tf.lite.Interpreter`` of TensorFlow 2.21
does not link), and the single-class NMS ops that TFLite does have keep other boxes than TensorFlow's
kernels on degenerate (zero-height) boxes, which an untrained detector produces. :func:`per_class_nms`
is greedy NMS written with the pairwise IoU matrix and a fixed number of elementwise steps (no
control flow), so evaluation, ``predict.py`` and the exported SavedModel and TFLite models keep the
same detections.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["pairwise_iou", "per_class_nms"]


def pairwise_iou(boxes: tf.Tensor) -> tf.Tensor:
    """IoU of every pair of boxes of each image.

    Args:
        boxes: float32 ``(B, K, 4)`` ``[ymin, xmin, ymax, xmax]``.

    Returns:
        float32 ``(B, K, K)``; 0 where either box has no area (as TensorFlow's NMS kernels count it).
    """
    # (B, K, 1) against (B, 1, K); tf.expand_dims rather than [..., None], which TFLite converts less reliably
    rows = [tf.expand_dims(c, 2) for c in tf.unstack(boxes, num=4, axis=-1)]
    cols = [tf.expand_dims(c, 1) for c in tf.unstack(boxes, num=4, axis=-1)]
    area_rows = (rows[2] - rows[0]) * (rows[3] - rows[1])
    area_cols = (cols[2] - cols[0]) * (cols[3] - cols[1])
    height = tf.nn.relu(tf.minimum(rows[2], cols[2]) - tf.maximum(rows[0], cols[0]))
    width = tf.nn.relu(tf.minimum(rows[3], cols[3]) - tf.maximum(rows[1], cols[1]))
    intersection = height * width
    union = area_rows + area_cols - intersection
    both = (area_rows > 0.0) & (area_cols > 0.0)
    return tf.where(both, intersection / tf.where(both, union, 1.0), 0.0)


def per_class_nms(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    classes: tf.Tensor,
    *,
    max_detections: int,
    iou_threshold: float,
    score_threshold: float,
) -> dict[str, tf.Tensor]:
    """Greedy NMS within each image and class; the survivors best first.

    A candidate is dropped when its score is not above ``score_threshold``, or when a kept candidate
    of the same image and class with a higher score (an equal score and a lower index) overlaps it
    with IoU above ``iou_threshold``: the detections of ``tf.image.combined_non_max_suppression``
    with ``max_output_size_per_class = max_total_size = max_detections`` (and ``clip_boxes=False``).

    Greedy NMS is computed as a fixed point: start with every candidate kept, then repeat "keep a
    candidate unless a kept better one suppresses it". After step ``t`` the ``t`` best candidates are
    settled, so ``K`` steps give the greedy result; they are unrolled, ``max_detections`` of them.

    Args:
        boxes: float32 ``(B, K, 4)`` ``[ymin, xmin, ymax, xmax]`` (any units, not clipped).
        scores: float32 ``(B, K)``.
        classes: int32 ``(B, K)`` class ids (any integers; only equality matters).
        max_detections: ``M >= K``: the width of the outputs, and the number of steps.

    Returns:
        ``boxes`` float32 ``(B, M, 4)``, ``scores`` float32 ``(B, M)``, ``classes`` int32 ``(B, M)`` and
        ``num_detections`` int32 ``(B,)``: each row holds its detections by decreasing score, then zeros.
    """
    k = tf.shape(scores)[1]
    # best first; for equal scores top_k keeps the lower index first, as the order below assumes
    scores, order = tf.math.top_k(scores, k=k)
    boxes = tf.gather(boxes, order, batch_dims=1)
    classes = tf.gather(classes, order, batch_dims=1)
    position = tf.range(k)
    # (1, K, K): whether candidate j (column) comes before candidate i (row)
    better = tf.expand_dims(tf.expand_dims(position, 0) < tf.expand_dims(position, 1), 0)
    same_class = tf.equal(tf.expand_dims(classes, 2), tf.expand_dims(classes, 1))
    suppresses = tf.cast((pairwise_iou(boxes) > iou_threshold) & same_class & better, tf.float32)
    candidate = tf.cast(scores > score_threshold, tf.float32)
    keep = candidate
    for _ in range(max_detections):
        keep = candidate * (1.0 - tf.reduce_max(suppresses * tf.expand_dims(keep, 1), axis=2))
    # kept candidates first, in score order
    rank = tf.expand_dims(tf.cast(k - position, tf.float32), 0)
    first = tf.math.top_k(keep * tf.cast(2 * k, tf.float32) + rank, k=k).indices
    kept = tf.gather(keep, first, batch_dims=1)
    pad = [[0, 0], [0, max_detections - k]]
    out_boxes = tf.pad(tf.gather(boxes, first, batch_dims=1) * tf.expand_dims(kept, 2), pad + [[0, 0]])
    out_scores = tf.pad(tf.gather(scores, first, batch_dims=1) * kept, pad)
    out_classes = tf.pad(tf.gather(classes, first, batch_dims=1) * tf.cast(kept, classes.dtype), pad)
    batch = tf.shape(scores)[0]
    return {
        "boxes": tf.reshape(out_boxes, [batch, max_detections, 4]),
        "scores": tf.reshape(out_scores, [batch, max_detections]),
        "classes": tf.reshape(out_classes, [batch, max_detections]),
        "num_detections": tf.cast(tf.reduce_sum(keep, axis=1), tf.int32),
    }
