"""The CenterNet output format ("Objects as Points", Zhou et al. 2019): targets, loss and decoding.

A detector in this format maps normalised images ``(B, H, W, 3)`` to one tensor
``(B, H / 4, W / 4, C + 4)`` at :data:`OUTPUT_STRIDE` 4, channels in this order:

- ``[0, C)``: heatmap logits, one channel per class (class id ``k`` is channel ``k - first_id``);
- ``C, C + 1``: box height and width, in output cells;
- ``C + 2, C + 3``: the box centre's offset ``(dy, dx)`` from its cell's top-left corner, in cells.

Targets (:func:`encode_targets`) have one more channel, ``C + 4``: 1 at each object's centre cell,
where the size and offset targets are defined, and 0 elsewhere. Keeping prediction and target in
one tensor each lets the same ``loss(y_true, y_pred)`` serve ``model.fit`` and a custom loop.

Boxes are ``[ymin, xmin, ymax, xmax]`` normalised to ``[0, 1]`` everywhere.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.formats.nms import per_class_nms
from skelgen_runtime.losses import sum_over_replicas

__all__ = [
    "OUTPUT_STRIDE",
    "output_size",
    "gaussian_radius",
    "encode_targets",
    "make_loss",
    "decode",
]

#: input pixels per output cell
OUTPUT_STRIDE = 4


def output_size(image_size: Sequence[int]) -> tuple[int, int]:
    """The output grid ``(H / 4, W / 4)`` of an input of ``image_size = (H, W)``; both must divide by 4."""
    height, width = int(image_size[0]), int(image_size[1])
    if height % OUTPUT_STRIDE or width % OUTPUT_STRIDE:
        raise ConfigError(f"data.image_size {[height, width]} must be divisible by {OUTPUT_STRIDE} for detection")
    return height // OUTPUT_STRIDE, width // OUTPUT_STRIDE


def gaussian_radius(height: tf.Tensor, width: tf.Tensor, min_overlap: float = 0.7) -> tf.Tensor:
    """CornerNet's radius: how far a corner may move with the box keeping IoU >= ``min_overlap``.

    Same formula (including its well-known quirks) as the reference CenterNet code, so that the
    heatmap spread matches the paper's. ``height``/``width`` are float tensors in output cells.
    """
    total, product = height + width, height * width
    b1, c1 = total, product * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + tf.sqrt(tf.maximum(b1**2 - 4 * c1, 0.0))) / 2
    b2, c2 = 2 * total, (1 - min_overlap) * product
    r2 = (b2 + tf.sqrt(tf.maximum(b2**2 - 16 * c2, 0.0))) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * total, (min_overlap - 1) * product
    r3 = (b3 + tf.sqrt(tf.maximum(b3**2 - 4 * a3 * c3, 0.0))) / 2
    return tf.minimum(tf.minimum(r1, r2), r3)


def encode_targets(
    boxes: tf.Tensor, classes: tf.Tensor, num_classes: int, grid: Sequence[int], first_id: int = 1
) -> tf.Tensor:
    """Dense CenterNet targets of one example, vectorised (no Python loop over objects).

    Args:
        boxes: float32 ``(N, 4)`` ``[ymin, xmin, ymax, xmax]`` normalised; leave crowd boxes out.
        classes: int ``(N,)`` class ids starting at ``first_id``.
        num_classes: ``C``.
        grid: the output grid ``(Ho, Wo)`` (:func:`output_size`).

    Returns:
        float32 ``(Ho, Wo, C + 5)``: per-class Gaussian heatmaps (exactly 1 at each object's centre
        cell), height and width in cells, centre offset ``(dy, dx)``, and the centre-cell mask.
    """
    ho, wo = int(grid[0]), int(grid[1])
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    cy, cx = (ymin + ymax) / 2 * ho, (xmin + xmax) / 2 * wo
    h, w = (ymax - ymin) * ho, (xmax - xmin) * wo
    iy = tf.clip_by_value(tf.floor(cy), 0, ho - 1)
    ix = tf.clip_by_value(tf.floor(cx), 0, wo - 1)

    radius = tf.maximum(tf.floor(gaussian_radius(h, w)), 0.0)
    sigma = (2 * radius + 1) / 6
    dy = tf.range(ho, dtype=tf.float32)[None, :] - iy[:, None]  # (N, Ho)
    dx = tf.range(wo, dtype=tf.float32)[None, :] - ix[:, None]  # (N, Wo)
    exponent = -(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / (2 * sigma[:, None, None] ** 2)
    inside = (tf.abs(dy) <= radius[:, None])[:, :, None] & (tf.abs(dx) <= radius[:, None])[:, None, :]
    gauss = tf.where(inside, tf.exp(exponent), 0.0)  # (N, Ho, Wo), 1 at the centre cell
    onehot = tf.one_hot(tf.cast(classes, tf.int32) - first_id, num_classes)  # (N, C)
    per_object = gauss[..., None] * onehot[:, None, None, :]
    # objects of one class share a channel: the max keeps every peak at 1 (the zeros row covers N = 0)
    heatmap = tf.reduce_max(tf.concat([tf.zeros([1, ho, wo, num_classes]), per_object], axis=0), axis=0)

    cells = tf.cast(tf.stack([iy, ix], axis=-1), tf.int32)
    values = tf.stack([h, w, cy - iy, cx - ix, tf.ones_like(h)], axis=-1)
    regression = tf.tensor_scatter_nd_update(tf.zeros([ho, wo, 5]), cells, values)
    return tf.concat([heatmap, regression], axis=-1)


def make_loss(
    num_classes: int, *, heatmap_weight: float = 1.0, size_weight: float = 0.1, offset_weight: float = 1.0
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The CenterNet loss as ``loss(y_true, y_pred) -> per-example (B,)``.

    ``y_true`` is ``(B, Ho, Wo, C + 5)`` from :func:`encode_targets`, ``y_pred`` the model's
    ``(B, Ho, Wo, C + 4)``. The loss is ``heatmap_weight`` x the penalty-reduced focal loss on the
    heatmap (alpha 2, beta 4) plus ``size_weight`` x L1 on height/width and ``offset_weight`` x L1 on
    the offset at centre cells, each normalised by the number of objects in the batch, as in the paper.

    Each example's share is its own sum scaled by ``B / objects in the batch``, so the mean over the
    batch (what ``model.fit`` and ``tf.nn.compute_average_loss`` take) is exactly the paper's loss;
    under ``tf.distribute`` both counts are the global batch's.
    """
    c = num_classes

    def centernet_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        if y_true.shape[-1] not in (None, c + 5) or y_pred.shape[-1] not in (None, c + 4):
            raise ConfigError(
                f"detection targets have {y_true.shape[-1]} channels and the model outputs {y_pred.shape[-1]}; "
                f"expected {c + 5} and {c + 4} for {c} classes (is model.num_classes right?)"
            )
        heat, logits = y_true[..., :c], y_pred[..., :c]
        positive = tf.cast(tf.equal(heat, 1.0), tf.float32)
        prob = tf.sigmoid(logits)
        # log-sigmoid instead of log(prob): stable for large logits in either direction
        pos_loss = -tf.square(1.0 - prob) * tf.math.log_sigmoid(logits) * positive
        neg_loss = -tf.square(prob) * tf.math.log_sigmoid(-logits) * tf.pow(1.0 - heat, 4) * (1.0 - positive)
        # the global batch's size and objects under tf.distribute (see skelgen_runtime.losses)
        batch, objects = sum_over_replicas(tf.cast(tf.shape(y_true)[0], tf.float32), tf.reduce_sum(y_true[..., c + 4]))
        scale = batch / tf.maximum(objects, 1.0)
        focal = tf.reduce_sum(pos_loss + neg_loss, axis=[1, 2, 3])

        mask = y_true[..., c + 4 :]
        error = tf.abs(y_pred[..., c : c + 4] - y_true[..., c : c + 4]) * mask
        size_l1 = tf.reduce_sum(error[..., :2], axis=[1, 2, 3])
        offset_l1 = tf.reduce_sum(error[..., 2:], axis=[1, 2, 3])
        return scale * (heatmap_weight * focal + size_weight * size_l1 + offset_weight * offset_l1)

    return centernet_loss


def decode(
    outputs: tf.Tensor,
    num_classes: int,
    *,
    first_id: int = 1,
    max_detections: int = 100,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.5,
) -> dict[str, tf.Tensor]:
    """Turn model outputs into boxes: heatmap peaks, top-k, then per-class NMS.

    Args:
        outputs: ``(B, Ho, Wo, C + 4)`` model outputs.
        max_detections: at most this many detections per image (COCO scores the best 100).
        score_threshold: detections scoring less are dropped.
        iou_threshold: per-class NMS removes boxes overlapping a better one of their class by more
            than this (:func:`~skelgen_runtime.formats.nms.per_class_nms`: the detections of
            ``tf.image.combined_non_max_suppression``, from ops that TensorFlow Lite runs alike).

    Returns:
        ``boxes`` float32 ``(B, M, 4)`` ``[ymin, xmin, ymax, xmax]`` normalised and clipped to
        ``[0, 1]``; ``scores`` float32 ``(B, M)``; ``classes`` int32 ``(B, M)`` class ids from
        ``first_id``; ``num_detections`` int32 ``(B,)``: only the first that many of each row are
        detections, by decreasing score (``M = max_detections``, the rest is padding: zero boxes
        and scores, class ``first_id``).
    """
    c = num_classes
    outputs = tf.cast(outputs, tf.float32)
    shape = tf.shape(outputs)
    batch, ho, wo = shape[0], shape[1], shape[2]
    heat = tf.sigmoid(outputs[..., :c])
    # a cell is a candidate only where it is the maximum of its 3x3 neighbourhood
    peaks = heat * tf.cast(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), tf.float32)
    k = tf.minimum(max_detections, ho * wo * c)
    scores, index = tf.math.top_k(tf.reshape(peaks, [batch, -1]), k=k)
    cls, cell = index % c, index // c
    y, x = tf.cast(cell // wo, tf.float32), tf.cast(cell % wo, tf.float32)
    regression = tf.gather(tf.reshape(outputs[..., c:], [batch, -1, 4]), cell, batch_dims=1)
    h, w = tf.nn.relu(regression[..., 0]), tf.nn.relu(regression[..., 1])
    cy, cx = y + regression[..., 2], x + regression[..., 3]
    hof, wof = tf.cast(ho, tf.float32), tf.cast(wo, tf.float32)
    boxes = tf.stack([(cy - h / 2) / hof, (cx - w / 2) / wof, (cy + h / 2) / hof, (cx + w / 2) / wof], axis=-1)
    found = per_class_nms(
        boxes, scores, cls, max_detections=max_detections, iou_threshold=iou_threshold, score_threshold=score_threshold
    )
    return {
        "boxes": tf.clip_by_value(found["boxes"], 0.0, 1.0),
        "scores": found["scores"],
        "classes": found["classes"] + first_id,
        "num_detections": found["num_detections"],
    }
