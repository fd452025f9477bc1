"""Image classification: loss with label smoothing and class weights, metrics, evaluation, prediction.

Models map normalised images ``(B, H, W, 3)`` to logits ``(B, num_classes)``; training targets
are one-hot ``(B, num_classes)`` float32 (so label smoothing applies).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.losses import class_weights  # public here in 0.2 (projects' core/losses.py)
from skelgen_runtime.metrics.classification import classification_scores, confusion_png
from skelgen_runtime.serving.signature import ServingFunction, as_signature, model_input
from skelgen_runtime.tasks._images import predict_item, read_inputs
from skelgen_runtime.tasks.previews import classification_preview as preview

__all__ = [
    "preview",
    "read_inputs",
    "predict_item",
    "write_artifacts",
    "MONITOR",
    "MONITOR_MODE",
    "train_metrics",
    "class_weights",
    "evaluate",
    "report",
    "serving_function",
    "predict",
]

MONITOR = "val_accuracy"
MONITOR_MODE = "max"


def _top_k(config, info) -> int:
    return max(1, min(config.train.top_k, info.num_classes))


def train_metrics(config, info) -> list[keras.metrics.Metric]:
    """Accuracy, and top-k accuracy when ``k`` is below the class count (at or above it, it is always 1)."""
    k = _top_k(config, info)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if k < info.num_classes:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=k, name=f"top{k}"))
    return metrics


def evaluate(model: keras.Model, batches: Iterable[dict], config, info) -> dict:
    """Accuracy, top-k, per-class precision/recall and the confusion matrix over ``batches``.

    Args:
        batches: dicts with ``image`` (normalised, ``(B, H, W, 3)``) and ``label`` (``(B,)`` int32).
    """
    labels, logits = [], []
    for batch in batches:
        logits.append(model(batch["image"], training=False).numpy())
        labels.append(batch["label"].numpy())
    return classification_scores(
        np.concatenate(labels), np.concatenate(logits), info.label_map.names, top_k=_top_k(config, info)
    )


def report(result: dict, info) -> str:
    width = max(5, *(len(n) for n in result["per_class"]))
    fmt = lambda v: f"{v:9.3f}" if v is not None else "      n/a"  # noqa: E731
    lines = [f"{'class':<{width}}  {'precision':>9}  {'recall':>9}  {'support':>7}"]
    lines += [
        f"{name:<{width}}  {fmt(s['precision'])}  {fmt(s['recall'])}  {s['support']:>7}"
        for name, s in result["per_class"].items()
    ]
    top = next(k for k in result if k.startswith("top") and k.endswith("_accuracy"))
    lines.append(f"accuracy={result['accuracy']:.4f} {top}={result[top]:.4f}")
    return "\n".join(lines)


def write_artifacts(result: dict, info, out_dir: Path, split: str) -> list[Path]:
    """The confusion matrix as a picture, beside ``eval_SPLIT.json``."""
    path = out_dir / f"confusion_{split}.png"
    confusion_png(result["confusion_matrix"], info.label_map.names, path)
    return [path]


def serving_function(model: keras.Model, config, info) -> ServingFunction:
    """What ``predict.py`` runs and ``export.py`` saves: raw images -> class probabilities.

    Input ``images`` uint8 ``(B, H, W, 3)``; outputs ``probabilities`` float32 ``(B, C)`` (softmax,
    in label-map order) and ``classes`` int32 ``(B,)``: the most probable class id.
    """
    data, first = config.data, info.label_map.first_id

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(model_input(images, data.image_size, data.mean, data.std), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {
            "probabilities": probabilities,
            "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32) + first,
        }

    return serve


def predict(model: keras.Model, items: Iterable[tuple[str, np.ndarray]], config, info, out_dir: Path) -> str:
    """Write ``predictions.csv`` (top-k classes and probabilities per image) and ``NAME_pred.png`` per image.

    Each image goes through :func:`serving_function`, the function ``export.py`` saves.
    """
    from PIL import Image, ImageDraw

    names = info.label_map.names
    k = _top_k(config, info)
    serve = as_signature(serving_function(model, config, info))
    rows = []
    for name, image in items:
        probs = serve(image[None])["probabilities"][0].numpy()
        order = np.argsort(-probs)[:k]
        rows.append([name] + [v for i in order for v in (names[i], f"{probs[i]:.4f}")])
        picture = Image.fromarray(image).convert("RGB")
        scale = max(1, 160 // max(picture.size))
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(picture)
        for line, i in enumerate(order):
            draw.text(
                (4, 4 + 12 * line),
                f"{names[i]} {probs[i]:.2f}",
                fill=(255, 255, 255),
                stroke_width=2,
                stroke_fill=(0, 0, 0),
            )
        picture.save(out_dir / f"{name}_pred.png")  # write: staged
    with open(out_dir / "predictions.csv", "w", newline="") as f:  # write: staged
        writer = csv.writer(f)
        writer.writerow(["image"] + [c for r in range(1, k + 1) for c in (f"class{r}", f"prob{r}")])
        writer.writerows(rows)
    return f"wrote predictions.csv and {len(rows)} pictures"
