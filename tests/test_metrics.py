"""Segmentation metrics against Keras' MeanIoU and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from skelgen_runtime.metrics.segmentation import ConfusionMatrix, scores_from_confusion


def test_hand_computed_example() -> None:
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    cm = ConfusionMatrix(3)
    cm.update(truth, pred)
    s = scores_from_confusion(cm.matrix)
    # class 0: tp 1, fp 1 (truth 2 -> 0), fn 1 (0 -> 1): IoU 1/3; class 1: tp 2 fp 1 fn 0: 2/3;
    # class 2: tp 1 fp 0 fn 1: 1/2. Pixels labelled 255 are ignored whatever is predicted.
    assert s.iou == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s.dice == pytest.approx([2 / 4, 4 / 5, 2 / 3])
    assert s.miou == pytest.approx(np.mean([1 / 3, 2 / 3, 1 / 2]))
    assert s.pixel_accuracy == pytest.approx(4 / 6)


def test_absent_class_is_left_out_of_the_mean() -> None:
    cm = ConfusionMatrix(4)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 1]))
    s = scores_from_confusion(cm.matrix)
    assert s.iou[2] is None and s.iou[3] is None and s.miou == 1.0


def test_matches_keras_mean_iou() -> None:
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, size=(4, 16, 16))
    truth[:, :2] = 255
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, 5, size=truth.shape)) % 5
    cm = ConfusionMatrix(5)
    cm.update(truth, pred)
    metric = keras.metrics.MeanIoU(num_classes=5)
    metric.update_state(truth, pred)
    assert scores_from_confusion(cm.matrix).miou == pytest.approx(float(metric.result()), rel=1e-6)
