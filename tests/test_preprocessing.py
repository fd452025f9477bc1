"""Mask-aware preprocessing keeps image and label aligned and the ignore label intact."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from skelgen_runtime.preprocessing import segmentation as ops  # noqa: E402


def _pair(h=20, w=30):
    label = np.zeros((h, w, 1), np.uint8)
    label[:, : w // 2] = 1
    label[0, :] = 255
    image = np.where(label == 1, 200, 10).astype(np.uint8).repeat(3, axis=-1)
    return tf.constant(image), tf.constant(label)


def test_resize_keeps_label_values() -> None:
    image, label = _pair()
    image2, label2 = ops.resize(image, label, (57, 13))
    assert image2.shape == (57, 13, 3) and label2.shape == (57, 13, 1) and label2.dtype == tf.uint8
    assert set(np.unique(label2.numpy())) <= {0, 1, 255}


def test_random_crop_pads_with_ignore_and_stays_aligned() -> None:
    tf.random.set_seed(1)
    image, label = _pair(10, 10)
    for _ in range(5):
        img, lab = ops.random_crop(image, label, (16, 16))
        img, lab = img.numpy(), lab.numpy()[..., 0]
        assert img.shape == (16, 16, 3)
        assert (lab[10:, :] == 255).all() and (lab[:, 10:] == 255).all()
        # the image's bright half is exactly the label's class-1 half
        assert ((img[..., 0] == 200) == (lab == 1)).all()


def test_flip_and_scale_move_image_and_label_together() -> None:
    tf.random.set_seed(3)
    image, label = _pair()
    for _ in range(6):
        img, lab = ops.random_flip(*ops.random_scale(image, label, 0.5, 1.5))
        img, lab = img.numpy(), lab.numpy()[..., 0]
        bright = img[..., 0] > 105
        ones = lab == 1
        assert (bright[ones]).mean() > 0.95 and (~bright[lab == 0]).mean() > 0.95
        assert set(np.unique(lab)) <= {0, 1, 255}


def test_normalize_round_trip() -> None:
    x = tf.constant(np.arange(0, 255, 5, dtype=np.uint8).reshape(1, -1, 3)[:, :17])
    np.testing.assert_array_equal(ops.denormalize(ops.normalize(x)).numpy(), x.numpy())
