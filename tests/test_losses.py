"""The library's loss pieces against independent NumPy computations, on crafted batches with ignored pixels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from skelgen_runtime import losses

IGNORE = 255


def _batch(seed: int = 0, shape=(2, 6, 5), classes: int = 4):
    """Labels (B, H, W, 1) with about a quarter ignored, and logits (B, H, W, K)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, shape)
    labels[rng.random(shape) < 0.25] = IGNORE
    logits = rng.normal(0, 2, (*shape, classes)).astype(np.float32)
    return labels[..., None].astype(np.int32), logits


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _numpy_ce(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean cross-entropy over the pixels whose label is not IGNORE."""
    labels = labels[..., 0]
    valid = labels != IGNORE
    logp = _log_softmax(logits)
    return float(-np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0][valid].mean())


def _numpy_dice(labels: np.ndarray, logits: np.ndarray, classes: int) -> float:
    """1 - mean over foreground classes of batch soft Dice (smooth 1) over valid pixels."""
    labels = labels[..., 0]
    valid = (labels != IGNORE)[..., None]
    p = np.exp(_log_softmax(logits)) * valid
    g = np.eye(classes)[np.where(valid[..., 0], labels, 0)] * valid
    dice = (2 * (p * g).sum((0, 1, 2)) + 1) / ((p + g).sum((0, 1, 2)) + 1)
    return float(1 - dice[1:].mean())


def test_cross_entropy_is_the_mean_over_valid_pixels_per_example_shares() -> None:
    labels, logits = _batch()
    per_example = losses.sparse_cross_entropy(IGNORE)(tf.constant(labels), tf.constant(logits))
    assert per_example.shape == (2,)
    assert float(tf.reduce_mean(per_example)) == pytest.approx(_numpy_ce(labels, logits), rel=1e-5)
    # Keras's own loss with ignore_class agrees
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    assert float(tf.reduce_mean(per_example)) == pytest.approx(float(reference(labels, logits)), rel=1e-5)


@pytest.mark.parametrize("name", ["ce", "focal", "dice", "dice_ce"])
def test_ignored_pixels_count_for_nothing(name: str) -> None:
    labels, logits = _batch(1)
    fn = {
        "ce": losses.sparse_cross_entropy(IGNORE),
        "focal": losses.focal_loss(IGNORE, gamma=2.0),
        "dice": losses.soft_dice_loss(4, IGNORE),
        "dice_ce": losses.weighted_sum(
            (1.0, losses.sparse_cross_entropy(IGNORE)), (1.0, losses.soft_dice_loss(4, IGNORE))
        ),
    }[name]
    changed = logits.copy()
    changed[labels[..., 0] == IGNORE] = np.random.default_rng(9).normal(0, 50, changed[labels[..., 0] == IGNORE].shape)
    before = fn(tf.constant(labels), tf.constant(logits)).numpy()
    after = fn(tf.constant(labels), tf.constant(changed)).numpy()
    np.testing.assert_allclose(before, after, rtol=1e-6)


def test_dice_ce_equals_its_terms_computed_independently() -> None:
    labels, logits = _batch(2, shape=(3, 8, 7), classes=4)
    dice_ce = losses.weighted_sum((1.0, losses.sparse_cross_entropy(IGNORE)), (0.5, losses.soft_dice_loss(4, IGNORE)))
    per_example = dice_ce(tf.constant(labels), tf.constant(logits))
    assert per_example.shape == (3,)
    expected = _numpy_ce(labels, logits) + 0.5 * _numpy_dice(labels, logits, 4)
    assert float(tf.reduce_mean(per_example)) == pytest.approx(expected, rel=1e-5)
    # labels without the channel axis give the same
    again = dice_ce(tf.constant(labels[..., 0]), tf.constant(logits))
    np.testing.assert_allclose(per_example.numpy(), again.numpy(), rtol=1e-6)


def test_dice_of_a_perfect_prediction_is_zero_and_an_all_ignored_batch_is_finite() -> None:
    labels = np.array([[[0, 1], [2, IGNORE]]], np.int32)[..., None]
    logits = np.where(np.eye(3)[np.where(labels[..., 0] == IGNORE, 0, labels[..., 0])] > 0, 30.0, -30.0).astype(
        np.float32
    )
    assert float(losses.soft_dice_loss(3, IGNORE)(labels, logits)[0]) == pytest.approx(0.0, abs=1e-6)
    ignored = np.full((1, 2, 2, 1), IGNORE, np.int32)
    for fn in (losses.sparse_cross_entropy(IGNORE), losses.focal_loss(IGNORE), losses.soft_dice_loss(3, IGNORE)):
        assert np.isfinite(fn(ignored, logits).numpy()).all()


def test_focal_with_gamma_zero_is_cross_entropy_and_down_weights_easy_pixels() -> None:
    labels, logits = _batch(3)
    ce = losses.sparse_cross_entropy(IGNORE)(labels, logits).numpy()
    np.testing.assert_allclose(losses.focal_loss(IGNORE, gamma=0.0)(labels, logits).numpy(), ce, rtol=1e-5)
    assert (losses.focal_loss(IGNORE, gamma=2.0)(labels, logits).numpy() < ce).all()


def test_categorical_cross_entropy_with_smoothing_and_class_weights() -> None:
    rng = np.random.default_rng(4)
    onehot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 5)]
    logits = rng.normal(0, 2, (5, 3)).astype(np.float32)
    weights = [1.0, 2.0, 0.5]
    got = losses.categorical_cross_entropy(0.1, weights)(onehot, logits).numpy()
    plain = keras.losses.categorical_crossentropy(onehot, logits, from_logits=True, label_smoothing=0.1).numpy()
    np.testing.assert_allclose(got, plain * (onehot @ np.array(weights)), rtol=1e-5)


def test_weighted_sum_needs_a_term() -> None:
    with pytest.raises(ValueError):
        losses.weighted_sum((0.0, losses.sparse_cross_entropy()))
