"""What the fast augmentation must keep: alignment, ignore padding, flip probability, the normalisation formula.

The pipelines resample each example once (a sampled window: zoom, crop offset, padding and flip
together); these tests pin the results a user relies on, on crafted inputs, with fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from skelgen_runtime.preprocessing import classification, detection, segmentation  # noqa: E402
from skelgen_runtime.preprocessing.image import normalize, normalize_batch, resize_image  # noqa: E402

PALETTE = np.array([[20, 20, 20], [230, 40, 40], [40, 230, 40], [40, 40, 230]], np.uint8)


def _blocks(size: int = 64, seed: int = 0, block: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A label of square blocks of random classes and the image painted in each class's colour."""
    rng = np.random.default_rng(seed)
    label = np.kron(rng.integers(0, 4, (size // block, size // block)), np.ones((block, block), np.int64)).astype(
        np.uint8
    )
    return PALETTE[label], label[..., None]


@pytest.mark.parametrize("scale", [(1.0, 1.0), (0.6, 0.9), (1.2, 2.0)])
def test_labels_stay_aligned_with_the_image(scale) -> None:
    tf.random.set_seed(1)
    image, label = _blocks(block=16)
    for _ in range(20):
        out_image, out_label = segmentation.random_transform(
            tf.constant(image),
            tf.constant(label),
            (48, 48),
            scale_min=scale[0],
            scale_max=scale[1],
            crop=True,
            flip=True,
            ignore_label=255,
        )
        out_image, out_label = out_image.numpy(), out_label.numpy()[..., 0]
        # away from block edges (a pixel whose 5x5 neighbours share its label; bilinear blending reaches one
        # source pixel, two output pixels at 2x zoom) resampling mixes no colours: there each labelled pixel
        # must have its class's colour
        padded = np.pad(out_label, 2, mode="edge")
        uniform = np.all(
            [padded[2 + dy : 50 + dy, 2 + dx : 50 + dx] == out_label for dy in range(-2, 3) for dx in range(-2, 3)],
            axis=0,
        )
        interior = uniform & (out_label != 255)
        interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False  # unseen beyond
        expected = PALETTE[np.where(interior, out_label, 0)]
        close = np.abs(out_image.astype(int) - expected.astype(int)).max(-1) < 40
        assert interior.sum() > 200 and close[interior].mean() > 0.99, "image and label moved apart"


def test_zooming_out_pads_the_label_with_ignore_and_the_image_with_zeros() -> None:
    tf.random.set_seed(2)
    image, label = _blocks()
    out_image, out_label = segmentation.random_transform(
        tf.constant(image),
        tf.constant(label),
        (64, 64),
        scale_min=0.5,
        scale_max=0.5,
        crop=True,
        flip=False,
        ignore_label=255,
    )
    out_image, out_label = out_image.numpy(), out_label.numpy()[..., 0]
    # zoomed out to half: the image fills the top-left 32x32, the rest is padding (bottom and right)
    assert (out_label[:, 34:] == 255).all() and (out_label[34:, :] == 255).all()
    assert (out_image[:, 34:] == 0).all() and (out_image[34:, :] == 0).all()
    assert (out_label[:30, :30] != 255).all()


def test_flip_probability_is_one_half_and_a_flip_mirrors() -> None:
    tf.random.set_seed(3)
    ramp = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))
    label = np.tile((np.arange(32) // 8).astype(np.uint8)[None, :, None], (32, 1, 1))
    flips = 0
    n = 400
    for _ in range(n):
        out_image, out_label = segmentation.random_transform(
            tf.constant(ramp), tf.constant(label), (32, 32), crop=False, flip=True
        )
        out_image, out_label = out_image.numpy(), out_label.numpy()
        flipped = out_image[0, 0, 0] > out_image[0, -1, 0]
        reference = ramp[:, ::-1] if flipped else ramp
        np.testing.assert_array_equal(out_image, reference)  # no resampling loss at the same size
        np.testing.assert_array_equal(out_label, label[:, ::-1] if flipped else label)
        flips += flipped
    # binomial(400, 0.5): 4 standard deviations are 40
    assert abs(flips - n / 2) < 40, flips


def test_no_augmentation_at_the_model_size_is_the_identity() -> None:
    image, label = _blocks(32)
    out_image, out_label = segmentation.random_transform(
        tf.constant(image), tf.constant(label), (32, 32), crop=True, flip=False
    )
    np.testing.assert_array_equal(out_image.numpy(), image)
    np.testing.assert_array_equal(out_label.numpy(), label)
    resized = resize_image(tf.constant(image), (32, 32))
    assert resized.dtype == tf.uint8 and np.array_equal(resized.numpy(), image)  # no work at the size


def test_resize_antialiases_only_when_shrinking() -> None:
    rng = np.random.default_rng(4)
    image = tf.constant(rng.integers(0, 256, (64, 64, 3), np.uint8))
    small = resize_image(image, (16, 16)).numpy()
    reference = tf.image.resize(tf.cast(image, tf.float32), (16, 16), antialias=True)
    np.testing.assert_array_equal(small, tf.saturate_cast(tf.round(reference), tf.uint8).numpy())
    large = resize_image(image, (96, 96)).numpy()
    plain = tf.image.resize(tf.cast(image, tf.float32), (96, 96))
    np.testing.assert_array_equal(large, tf.saturate_cast(tf.round(plain), tf.uint8).numpy())


def test_batch_normalisation_is_the_documented_formula() -> None:
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (2, 8, 8, 3), np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = (batch / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(normalize_batch(tf.constant(batch), mean, std).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(normalize(tf.constant(batch), mean, std).numpy(), expected, atol=1e-5)
    already = tf.constant(expected, tf.float32)
    assert normalize_batch(already, mean, std) is already  # a float batch was normalised by its finalize


def test_classification_crop_stays_inside_the_image_and_flips() -> None:
    tf.random.set_seed(6)
    ramp = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (64, 1, 3))
    flips = 0
    for _ in range(200):
        out = classification.random_transform(tf.constant(ramp), (32, 32), crop=True, min_area=0.5).numpy()
        row = out[16, :, 0].astype(int)
        assert (np.diff(row) >= 0).all() or (np.diff(row) <= 0).all(), "a crop of a ramp is monotonic"
        flips += row[0] > row[-1]
    assert 60 < flips < 140


def _bright_box(box, size: int = 64) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    y0, x0, y1, x1 = (np.array(box) * size).astype(int)
    image[y0:y1, x0:x1] = 255
    return image


def test_detection_boxes_follow_the_image_through_zoom_crop_and_flip() -> None:
    tf.random.set_seed(7)
    box = [0.2, 0.1, 0.55, 0.4]
    image = _bright_box(box)
    kept = 0
    for _ in range(30):
        out, boxes, keep = detection.random_transform(
            tf.constant(image), tf.constant([box]), (48, 48), scale_min=0.7, scale_max=1.4, crop=True, flip=True
        )
        if not bool(keep.numpy()[0]):
            continue
        kept += 1
        y0, x0, y1, x1 = boxes.numpy()[0]
        inner = out.numpy()[int(y0 * 48) + 2 : int(y1 * 48) - 2, int(x0 * 48) + 2 : int(x1 * 48) - 2, 0]
        assert inner.size == 0 or inner.mean() > 200, "the box is on the bright rectangle"
        outside = (
            out.numpy()[..., 0].astype(float).sum()
            - out.numpy()[int(y0 * 48) : int(y1 * 48) + 1, int(x0 * 48) : int(x1 * 48) + 1, 0].sum()
        )
        assert outside < 0.1 * max(out.numpy()[..., 0].astype(float).sum(), 1), "no bright pixels outside the box"
    assert kept >= 20


@pytest.mark.parametrize(
    ("stored", "target", "fmt", "decoded"),
    [
        ((256, 192), (64, 48), "jpeg", (64, 48)),  # 4x larger: decoded at 1/4
        ((256, 192), (100, 48), "jpeg", (128, 96)),  # 2.56x on the short ratio: 1/2 keeps it at least the target
        ((256, 192), (200, 150), "jpeg", (256, 192)),  # less than 2x: in full
        ((256, 192), (64, 48), "png", (256, 192)),  # PNG has no DCT scaling
    ],
)
def test_images_are_decoded_at_a_reduced_scale_only_when_they_are_twice_the_model_size(stored, target, fmt, decoded):
    import io

    from PIL import Image

    from skelgen_runtime.schemas.base import DECODE_SIZE, decode_rgb

    rng = np.random.default_rng(8)
    picture = Image.fromarray(rng.integers(0, 256, (*stored, 3), np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt.upper())
    parsed = {
        "image/encoded": tf.constant(buffer.getvalue()),
        "image/height": tf.constant(stored[0], tf.int64),
        "image/width": tf.constant(stored[1], tf.int64),
    }
    assert tuple(decode_rgb(parsed).shape[:2]) == stored
    assert tuple(decode_rgb({**parsed, DECODE_SIZE: tf.constant(target)}).shape[:2]) == decoded
