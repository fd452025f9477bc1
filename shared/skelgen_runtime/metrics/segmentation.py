"""Segmentation metrics from a confusion matrix: mean IoU, per-class IoU, Dice, pixel accuracy.

Conventions (same as ``keras.metrics.MeanIoU``): IoU = TP / (TP + FP + FN); a class whose
denominator is zero (absent from both truth and prediction) is left out of the mean; labels outside
``[0, num_classes)``, i.e. the ignore label 255, are left out entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ConfusionMatrix", "SegmentationScores", "scores_from_confusion"]


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes)`` matrix, rows = truth, columns = prediction."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        """Add pixels. ``truth`` and ``prediction`` are integer arrays of the same shape."""
        truth = np.asarray(truth).reshape(-1).astype(np.int64)
        prediction = np.asarray(prediction).reshape(-1).astype(np.int64)
        valid = (truth >= 0) & (truth < self.num_classes)
        index = truth[valid] * self.num_classes + prediction[valid]
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, -1)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one evaluation. Per-class lists hold ``None`` where the class is absent."""

    miou: float
    mean_dice: float
    pixel_accuracy: float
    iou: list[float | None]
    dice: list[float | None]

    def to_json(self, class_names: list[str]) -> dict:
        return {
            "miou": self.miou,
            "mean_dice": self.mean_dice,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class": {name: {"iou": self.iou[i], "dice": self.dice[i]} for i, name in enumerate(class_names)},
        }


def scores_from_confusion(matrix: np.ndarray) -> SegmentationScores:
    """Compute :class:`SegmentationScores` from a confusion matrix (rows truth, columns prediction)."""
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    union = tp + fp + fn
    present = union > 0
    iou = np.where(present, tp / np.where(present, union, 1), np.nan)
    dice = np.where(present, 2 * tp / np.where(present, 2 * tp + fp + fn, 1), np.nan)
    total = matrix.sum()
    as_list = lambda a: [None if np.isnan(v) else float(v) for v in a]  # noqa: E731
    return SegmentationScores(
        miou=float(np.nanmean(iou)) if present.any() else 0.0,
        mean_dice=float(np.nanmean(dice)) if present.any() else 0.0,
        pixel_accuracy=float(tp.sum() / total) if total else 0.0,
        iou=as_list(iou),
        dice=as_list(dice),
    )
