"""Whole-volume inference (skelgen_runtime.tasks.windows): nnU-Net's window placement and Gaussian weights, a
window as large as the volume, a constant model, and mirroring test-time augmentation against a hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from skelgen_runtime.tasks.windows import (  # noqa: E402
    gaussian_importance,
    mirror_axes,
    slice_wise,
    sliding_window,
    window_starts,
)


def conv_model(rank: int, channels: int = 2, classes: int = 3, kernel: int = 3, seed: int = 0):
    """A small fully convolutional model (any spatial size) with random weights."""
    keras.utils.set_random_seed(seed)
    conv = keras.layers.Conv3D if rank == 3 else keras.layers.Conv2D
    inputs = keras.Input((None,) * rank + (channels,))
    x = conv(4, kernel, padding="same", activation="relu")(inputs)
    outputs = conv(classes, kernel, padding="same")(x)
    return keras.Model(inputs, outputs, name="net")  # one name, as models of one builder have


def softmax(x: np.ndarray) -> np.ndarray:
    return tf.nn.softmax(x, axis=-1).numpy()


@pytest.mark.parametrize(
    ("size", "patch", "expected"),
    [(240, 128, [0, 56, 112]), (155, 128, [0, 27]), (128, 128, [0]), (200, 64, [0, 27, 54, 82, 109, 136])],
)
def test_windows_are_placed_as_nnunet_places_them(size, patch, expected):
    # nnU-Net: ceil((size - patch) / (patch * 0.5)) + 1 windows, evenly from 0 to size - patch
    starts = window_starts(size, patch)
    assert starts == expected
    assert len(starts) == math.ceil((size - patch) / (patch / 2)) + 1 if size > patch else starts == [0]
    covered = np.zeros(size, bool)
    for start in starts:
        covered[start : start + patch] = True
    assert covered.all()


def test_the_gaussian_importance_map():
    weights = gaussian_importance((16, 24, 8))
    assert weights.shape == (16, 24, 8) and weights.dtype == np.float32
    assert weights.max() == 1.0 and weights[8, 12, 4] == 1.0 and weights.min() > 0
    # one sigma (patch / 8) from the centre along an axis: exp(-1/2)
    assert weights[8 + 2, 12, 4] == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert weights[8, 12 + 3, 4] == pytest.approx(math.exp(-0.5), rel=1e-6)


def test_a_window_the_size_of_the_volume_is_the_whole_volume_output():
    model = conv_model(3)
    volume = np.random.default_rng(0).normal(size=(12, 16, 20, 2)).astype(np.float32)
    whole = softmax(model(volume[None], training=False).numpy()[0])
    out = sliding_window(model, volume, volume.shape[:3])
    assert out.shape == (12, 16, 20, 3) and np.abs(out - whole).max() <= 1e-5


def test_a_window_larger_than_the_volume_pads_and_cuts_back():
    model = conv_model(3, kernel=1)  # voxel by voxel: the padding cannot change any voxel's output
    volume = np.random.default_rng(1).normal(size=(10, 14, 9, 2)).astype(np.float32)
    whole = softmax(model(volume[None], training=False).numpy()[0])
    out = sliding_window(model, volume, (16, 16, 16))
    assert out.shape == (10, 14, 9, 3) and np.abs(out - whole).max() <= 1e-5


def test_a_constant_model_gives_its_constant_everywhere():
    inputs = keras.Input((None, None, None, 2))
    logits = keras.layers.Lambda(lambda x: tf.zeros_like(x[..., :1]) + tf.constant([0.3, -1.0, 2.0]))(inputs)
    model = keras.Model(inputs, logits)
    volume = np.random.default_rng(2).normal(size=(20, 24, 28, 2)).astype(np.float32)
    out = sliding_window(model, volume, (8, 8, 8), batch=3)  # many overlapping windows, a last short batch
    expected = softmax(np.array([0.3, -1.0, 2.0], np.float32))
    assert np.abs(out - expected).max() <= 1e-6


def test_overlapping_windows_are_weighted_by_the_gaussian():
    """Where windows overlap, the output is the importance-weighted mean of theirs: checked voxel by voxel for a
    model whose output depends on the window it sees (a 3x3x3 conv at the window's zero-padded border)."""
    model = conv_model(3, seed=3)
    volume = np.random.default_rng(3).normal(size=(8, 8, 12, 2)).astype(np.float32)
    patch = (8, 8, 8)
    out = sliding_window(model, volume, patch)
    weights = gaussian_importance(patch)[..., None]
    total, weight = np.zeros((8, 8, 12, 3)), np.zeros((8, 8, 12, 1))
    for w in window_starts(12, 8):  # [0, 4]
        probs = softmax(model(volume[None, :, :, w : w + 8], training=False).numpy()[0])
        total[:, :, w : w + 8] += probs * weights
        weight[:, :, w : w + 8] += weights
    assert np.abs(out - total / weight).max() <= 1e-5


@pytest.mark.parametrize("rank", [3, 2])
def test_mirroring_is_the_mean_of_the_flipped_predictions(rank):
    model = conv_model(rank, seed=4)
    rng = np.random.default_rng(4)
    if rank == 3:
        volume = rng.normal(size=(8, 10, 12, 2)).astype(np.float32)
        out = sliding_window(model, volume, volume.shape[:3], tta=True)
        batch = volume[None]
    else:
        volume = rng.normal(size=(5, 12, 16, 2)).astype(np.float32)  # 5 slices, predicted at their own size
        out = slice_wise(model, volume, (12, 16), batch=2, tta=True)
        batch = volume
    flips = [axes for k in range(rank + 1) for axes in itertools.combinations(range(1, rank + 1), k)]
    assert len(flips) == 2**rank and mirror_axes(rank, True) == flips
    by_hand = np.mean(
        [np.flip(softmax(model(np.flip(batch, axes), training=False).numpy()), axes) for axes in flips], axis=0
    )
    by_hand = by_hand[0] if rank == 3 else by_hand
    assert out.shape == by_hand.shape and np.abs(out - by_hand).max() <= 1e-5
    plain = sliding_window(model, volume, volume.shape[:3]) if rank == 3 else slice_wise(model, volume, (12, 16))
    assert np.abs(plain - by_hand).max() > 1e-4  # the mirrorings do change the output


def test_an_ensemble_averages_the_softmax_and_of_one_model_twice_equals_the_model():
    from pathlib import Path

    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.serving.ensemble import ensemble
    from skelgen_runtime.serving.weights import Trained

    rng = np.random.default_rng(2)
    image = rng.normal(size=(12, 14, 10, 2)).astype(np.float32)
    a, b = conv_model(3, seed=0), conv_model(3, seed=1)
    members = [Trained(m, "best", Path(f"{i}.keras")) for i, m in enumerate((a, b, a))]
    one = sliding_window(a, image, (8, 8, 8))
    twice = sliding_window(ensemble(members[::2], ["a", "a2"]).model, image, (8, 8, 8))
    assert np.abs(twice - one).max() <= 1e-6
    # two different models: the mean of their probabilities, window by window as each would give them
    assert a.name == b.name  # models of one builder share a name, as runs of one config do
    both = sliding_window(ensemble(members[:2], ["a", "b"]).model, image, (8, 8, 8))
    by_hand = (sliding_window(a, image, (8, 8, 8)) + sliding_window(b, image, (8, 8, 8))) / 2
    assert np.abs(both - by_hand).max() <= 1e-5
    # models of another input or class count are refused, naming the runs
    other = Trained(conv_model(2), "best", Path("2d.keras"))
    with pytest.raises(UserInputError, match="runs a and c take different inputs"):
        ensemble([members[0], other], ["a", "c"])
    fewer = Trained(conv_model(3, classes=2), "best", Path("k2.keras"))
    with pytest.raises(UserInputError, match="runs a and d predict 3 and 2 classes"):
        ensemble([members[0], fewer], ["a", "d"])
