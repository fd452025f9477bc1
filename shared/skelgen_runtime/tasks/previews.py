"""Pictures of a model's predictions on a fixed validation batch, for TensorBoard's image dashboard.

Each task binding exposes one of these as ``preview(model, inputs, targets, config, info)``; the
training loops call it every few epochs on the same few validation examples, so the pictures show
how the predictions change. Every function returns uint8 ``(N, H, W', 3)`` pictures.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from skelgen_runtime.preprocessing.image import denormalize
from skelgen_runtime.viz import overlay

__all__ = ["segmentation_preview", "classification_preview", "detection_preview", "volume_preview"]


def _images(inputs: tf.Tensor, config) -> np.ndarray:
    """Normalised model inputs ``(N, H, W, 3)`` back to RGB uint8."""
    return denormalize(tf.cast(inputs, tf.float32), config.data.mean, config.data.std).numpy()


def _side_by_side(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, colors) -> np.ndarray:
    gap = np.full((image.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([image, gap, overlay(image, truth, colors), gap, overlay(image, pred, colors)], axis=1)


def segmentation_preview(model, inputs, targets, config, info) -> np.ndarray:
    """``[image | true labels | predicted labels]`` per example, ``(N, H, 3W + 4, 3)``."""
    images = _images(inputs, config)
    pred = tf.argmax(model(inputs, training=False), axis=-1).numpy()
    truth = np.asarray(targets)[..., 0]
    colors = info.label_map.colors
    return np.stack([_side_by_side(i, t, p, colors) for i, t, p in zip(images, truth, pred)])


def _caption(image: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    from PIL import Image, ImageDraw

    picture = Image.fromarray(image)
    scale = max(1, 128 // max(picture.size))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    for k, (text, colour) in enumerate(lines):
        draw.text((3, 3 + 12 * k), text, fill=colour, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


def classification_preview(model, inputs, targets, config, info) -> np.ndarray:
    """Each image with its true class and the predicted one (green when right, red when wrong)."""
    names = info.label_map.names
    probs = tf.nn.softmax(model(inputs, training=False), axis=-1).numpy()
    truth = np.argmax(np.asarray(targets), axis=-1)
    out = []
    for image, p, t in zip(_images(inputs, config), probs, truth):
        guess = int(np.argmax(p))
        colour = (80, 255, 80) if guess == t else (255, 80, 80)
        out.append(
            _caption(image, [(f"true {names[t]}", (255, 255, 255)), (f"pred {names[guess]} {p[guess]:.2f}", colour)])
        )
    return np.stack(out)


def detection_preview(model, inputs, targets, config, info) -> np.ndarray:
    """Each image with the boxes the model finds (score >= 0.3) and their classes."""
    from skelgen_runtime.formats import centernet
    from skelgen_runtime.viz_boxes import boxes_to_pixels, draw_boxes

    label_map = info.label_map
    found = centernet.decode(
        model(inputs, training=False), info.num_classes, first_id=label_map.first_id, score_threshold=0.3
    )
    out = []
    for k, image in enumerate(_images(inputs, config)):
        n = int(found["num_detections"][k])
        classes = found["classes"][k, :n].numpy() - label_map.first_id
        pixels = boxes_to_pixels(found["boxes"][k, :n].numpy(), image.shape[0], image.shape[1])
        captions = [f"{label_map.names[c]} {s:.2f}" for c, s in zip(classes, found["scores"][k, :n].numpy())]
        out.append(draw_boxes(image, pixels, captions, [label_map.colors[c] for c in classes]))
    return np.stack(out)


def volume_preview(model, inputs, targets, config, info) -> np.ndarray:
    """The middle axial slice of each 2D slice or 3D patch: first modality, true and predicted labels."""
    x = np.asarray(inputs, np.float32)
    pred = tf.argmax(model(inputs, training=False), axis=-1).numpy()
    truth = np.asarray(targets)[..., 0]
    if x.ndim == 5:  # (N, D, H, W, C): the middle slice along D
        middle = x.shape[1] // 2
        x, pred, truth = x[:, middle], pred[:, middle], truth[:, middle]
    channel = x[..., 0]
    low, high = float(np.percentile(channel, 1)), float(np.percentile(channel, 99))
    grey = np.clip((channel - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
    images = np.repeat(grey[..., None], 3, axis=-1)
    colors = info.label_map.colors
    return np.stack([_side_by_side(i, t, p, colors) for i, t, p in zip(images, truth, pred)])
