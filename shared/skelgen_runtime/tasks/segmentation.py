"""Semantic segmentation: loss, training metrics, evaluation and prediction.

Models map normalised images ``(B, H, W, 3)`` to logits ``(B, H, W, num_classes)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.metrics.segmentation import ConfusionMatrix, scores_from_confusion
from skelgen_runtime.serving.signature import ServingFunction, as_signature, model_input
from skelgen_runtime.tasks._images import no_artifacts as write_artifacts
from skelgen_runtime.tasks._images import predict_item, read_inputs
from skelgen_runtime.tasks.previews import segmentation_preview as preview

__all__ = [
    "preview",
    "read_inputs",
    "predict_item",
    "write_artifacts",
    "MONITOR",
    "MONITOR_MODE",
    "train_metrics",
    "evaluate",
    "report",
    "label_images",
    "serving_function",
    "predict",
    "predict_label",
]

#: the validation metric that picks the best checkpoint
MONITOR = "val_miou"
MONITOR_MODE = "max"


def train_metrics(config, info) -> list[keras.metrics.Metric]:
    """Mean IoU on argmax predictions (labels outside ``[0, num_classes)`` such as 255 are dropped)."""
    return [keras.metrics.MeanIoU(num_classes=info.num_classes, sparse_y_pred=False, name="miou")]


def _labels_at(logits: tf.Tensor, height: int, width: int) -> np.ndarray:
    """Upsample one example's logits ``(h, w, C)`` to ``(height, width)`` and take the argmax."""
    resized = tf.image.resize(logits, (height, width), method="bilinear")
    return tf.argmax(resized, axis=-1, output_type=tf.int32).numpy()


def evaluate(model: keras.Model, batches: Iterable[dict], config, info) -> dict:
    """Score ``model`` at each example's original resolution.

    Args:
        batches: dicts with ``image`` (normalised, model size, ``(B, h, w, 3)``), ``label``
            (original labels padded with 255, ``(B, H, W, 1)``), ``height`` and ``width`` ``(B,)``.

    Returns:
        ``miou``, ``mean_dice``, ``pixel_accuracy`` and ``per_class`` ``{name: {iou, dice}}``.
    """
    confusion = ConfusionMatrix(info.num_classes)
    for batch in batches:
        logits = model(batch["image"], training=False)
        labels = batch["label"].numpy()
        for i, (h, w) in enumerate(zip(batch["height"].numpy(), batch["width"].numpy())):
            confusion.update(labels[i, :h, :w, 0], _labels_at(logits[i], int(h), int(w)))
    return scores_from_confusion(confusion.matrix).to_json(list(info.label_map.names))


def report(result: dict, info) -> str:
    """Per-class IoU and Dice, the means, and the headline ``miou=`` line."""
    width = max(5, *(len(n) for n in result["per_class"]))
    fmt = lambda v: f"{v:6.3f}" if v is not None else "   n/a"  # noqa: E731
    lines = [f"{'class':<{width}}  {'IoU':>6}  {'Dice':>6}"]
    lines += [f"{name:<{width}}  {fmt(s['iou'])}  {fmt(s['dice'])}" for name, s in result["per_class"].items()]
    lines.append(f"{'mean':<{width}}  {fmt(result['miou'])}  {fmt(result['mean_dice'])}")
    lines.append(f"miou={result['miou']:.4f} pixel_accuracy={result['pixel_accuracy']:.4f}")
    return "\n".join(lines)


def _pixel_logits(
    model: keras.Model,
    images: tf.Tensor,
    image_size: Sequence[int],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> tf.Tensor:
    """float32 logits ``(B, H, W, C)`` at the images' own size: resized and normalised in, bilinear back out."""
    logits = tf.cast(model(model_input(images, image_size, mean, std), training=False), tf.float32)
    return tf.image.resize(logits, tf.shape(images)[1:3], method="bilinear")


def label_images(
    model: keras.Model,
    images: tf.Tensor,
    image_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    first_id: int = 0,
) -> tf.Tensor:
    """Class ids int32 ``(B, H, W)`` of raw RGB images ``(B, H, W, 3)``, at the images' own size.

    The images are resized to ``image_size`` and normalised (as the pipelines do), the logits are
    resized back to ``(H, W)`` (bilinear) and the argmax taken.
    """
    return tf.argmax(_pixel_logits(model, images, image_size, mean, std), axis=-1, output_type=tf.int32) + first_id


def serving_function(model: keras.Model, config, info) -> ServingFunction:
    """What ``predict.py`` runs and ``export.py`` saves: raw images -> label maps.

    Input ``images`` uint8 ``(B, H, W, 3)``; outputs at the input's size: ``labels`` int32 ``(B, H, W)``,
    the class id (index in the label map) of every pixel, and ``scores`` float32 ``(B, H, W)``, the
    softmax probability of that class.
    """
    data, first = config.data, info.label_map.first_id

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = _pixel_logits(model, images, data.image_size, data.mean, data.std)
        return {
            "labels": tf.argmax(logits, axis=-1, output_type=tf.int32) + first,
            "scores": tf.reduce_max(tf.nn.softmax(logits, axis=-1), axis=-1),
        }

    return serve


def predict_label(
    model: keras.Model, image: np.ndarray, image_size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """Class ids ``(H, W)`` uint8 for one RGB image ``(H, W, 3)`` at its own resolution."""
    return label_images(model, tf.constant(image)[None], image_size, mean, std)[0].numpy().astype(np.uint8)


def predict(model: keras.Model, items: Iterable[tuple[str, np.ndarray]], config, info, out_dir: Path) -> str:
    """Write ``NAME_label.png`` (palette PNG of class ids) and ``NAME_overlay.png`` per ``(name, image)``.

    Each image goes through :func:`serving_function`, the function ``export.py`` saves.
    """
    from PIL import Image

    from skelgen_runtime.viz import overlay, save_label_png

    colors = info.label_map.colors
    serve = as_signature(serving_function(model, config, info))
    n = 0
    for name, image in items:
        label = serve(image[None])["labels"][0].numpy().astype(np.uint8)
        save_label_png(out_dir / f"{name}_label.png", label, colors)
        Image.fromarray(overlay(image, label, colors)).save(out_dir / f"{name}_overlay.png")  # write: staged
        n += 1
    return f"wrote {n} label PNGs and {n} overlays"
