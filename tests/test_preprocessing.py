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


def test_the_batch_step_normalises_as_normalize_does_inside_tf_data() -> None:
    """The per-batch step (XLA-compiled in skelgen_runtime.data.batches) gives normalize's values within float
    rounding, in a tf.data map on several threads and on a last, smaller batch; label maps become int32."""
    from types import SimpleNamespace

    from skelgen_runtime.data.batches import normalised
    from skelgen_runtime.preprocessing.image import normalize_batch

    cfg = SimpleNamespace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (10, 9, 7, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, (10, 9, 7, 1), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4).map(normalised(cfg), num_parallel_calls=2)
    got = list(ds)
    assert [x.shape[0] for x, _ in got] == [4, 4, 2]
    expected = normalize_batch(tf.constant(images), cfg.mean, cfg.std).numpy()
    np.testing.assert_allclose(np.concatenate([x.numpy() for x, _ in got]), expected, rtol=0, atol=1e-6)
    assert all(y.dtype == tf.int32 for _, y in got)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in got]), labels)
    floats = tf.constant(expected[:2])  # a pipeline whose per-example step normalised already: unchanged
    assert normalised(cfg)(floats, tf.constant(labels[:2]))[0] is floats
