"""Classification metrics: accuracy, top-k, per-class precision and recall, confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["classification_scores", "confusion_png"]


def classification_scores(labels: np.ndarray, scores: np.ndarray, class_names: Sequence[str], top_k: int = 3) -> dict:
    """Scores of predictions ``scores (N, C)`` (logits or probabilities) against ``labels (N,)``.

    Returns:
        ``accuracy``, ``top{k}_accuracy``, ``per_class`` ``{name: {precision, recall, support}}``
        (precision is ``None`` for a class never predicted), ``macro_precision``/``macro_recall``
        over classes where defined, and ``confusion_matrix`` (rows truth, columns prediction).
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores)
    num_classes = len(class_names)
    predicted = scores.argmax(axis=1)
    k = min(top_k, num_classes)
    top = np.argsort(-scores, axis=1)[:, :k]
    confusion = np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, -1)
    tp = np.diag(confusion).astype(np.float64)
    predicted_count, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = [float(tp[i] / predicted_count[i]) if predicted_count[i] else None for i in range(num_classes)]
    recall = [float(tp[i] / support[i]) if support[i] else None for i in range(num_classes)]
    defined = lambda xs: [x for x in xs if x is not None]  # noqa: E731
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        f"top{k}_accuracy": float((top == labels[:, None]).any(axis=1).mean()) if len(labels) else 0.0,
        "macro_precision": float(np.mean(defined(precision))) if defined(precision) else 0.0,
        "macro_recall": float(np.mean(defined(recall))) if defined(recall) else 0.0,
        "per_class": {
            name: {"precision": precision[i], "recall": recall[i], "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
    }


def confusion_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, cell: int = 48) -> None:
    """Draw a confusion matrix (rows truth, columns prediction) with counts, shaded by row share."""
    from PIL import Image, ImageDraw

    matrix = np.asarray(confusion, dtype=np.int64)
    n = len(class_names)
    margin = 8 + 7 * max(len(c) for c in class_names)
    img = Image.new("RGB", (margin + n * cell + 8, margin + n * cell + 8), "white")
    draw = ImageDraw.Draw(img)
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    for i in range(n):
        draw.text((4, margin + i * cell + cell // 2 - 5), class_names[i], fill="black")
        draw.text((margin + i * cell + 2, margin - 14), class_names[i][: cell // 7], fill="black")
        for j in range(n):
            share = matrix[i, j] / rows[i, 0]
            shade = int(255 - 200 * share)
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            draw.text((box[0] + 4, box[1] + cell // 2 - 5), str(matrix[i, j]), fill="black" if share < 0.6 else "white")
    draw.text((margin, 2), "prediction ->   (rows: truth)", fill="black")
    img.save(path)  # write: picture
