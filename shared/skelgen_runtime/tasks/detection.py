"""Object detection: loss, evaluation (COCO mAP) and prediction for CenterNet-format models.

Models map normalised images ``(B, H, W, 3)`` to one tensor ``(B, H / 4, W / 4, C + 4)`` (see
:mod:`skelgen_runtime.formats.centernet`); class ids start at the label map's ``first_id`` (1).
Boxes are ``[ymin, xmin, ymax, xmax]`` normalised inside the pipeline and COCO ``[x, y, w, h]``
pixels of the original image in everything written out.

Decoding keeps heatmap peaks, then applies per-class NMS (IoU 0.5) and at most 100 detections per
image. Evaluation keeps detections scoring at least 0.01 (COCO practice: low-score detections only
add recall points); ``predictions.json`` and the serving function (what ``export.py`` saves) keep
those above 0.05, and the pictures draw those of at least 0.3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.formats import centernet
from skelgen_runtime.metrics.detection import CocoAccumulator
from skelgen_runtime.serving.signature import ServingFunction, as_signature, model_input
from skelgen_runtime.tasks._images import no_artifacts as write_artifacts
from skelgen_runtime.tasks._images import predict_item, read_inputs
from skelgen_runtime.tasks.previews import detection_preview as preview

__all__ = [
    "preview",
    "read_inputs",
    "predict_item",
    "write_artifacts",
    "MONITOR",
    "MONITOR_MODE",
    "EVAL_SCORE_THRESHOLD",
    "PREDICT_SCORE_THRESHOLD",
    "DRAW_SCORE_THRESHOLD",
    "train_metrics",
    "detect",
    "evaluate",
    "report",
    "serving_function",
    "predict",
]

#: COCO mAP is too slow to compute every epoch; the validation loss picks the best checkpoint
MONITOR = "val_loss"
MONITOR_MODE = "min"
EVAL_SCORE_THRESHOLD = 0.01
PREDICT_SCORE_THRESHOLD = 0.05
DRAW_SCORE_THRESHOLD = 0.3
#: at most this many records are read to find the dataset's image ids for ``predictions.json``
MAX_ID_SCAN = 50_000


def train_metrics(config, info) -> list:
    """None: the loss is the training curve; COCO mAP comes from ``evaluate.py``."""
    return []


def detect(model: keras.Model, images: tf.Tensor, info, score_threshold: float = EVAL_SCORE_THRESHOLD) -> dict:
    """Run ``model`` on normalised images ``(B, H, W, 3)`` and decode (see :func:`centernet.decode`).

    Returns:
        NumPy ``boxes`` ``(B, M, 4)`` normalised ``[ymin, xmin, ymax, xmax]``, ``scores``
        ``(B, M)``, ``classes`` ``(B, M)`` (ids from ``first_id``) and ``num_detections`` ``(B,)``.
    """
    outputs = model(images, training=False)
    decoded = centernet.decode(
        outputs, info.num_classes, first_id=info.label_map.first_id, score_threshold=score_threshold
    )
    return {k: v.numpy() for k, v in decoded.items()}


def _categories(info) -> list[dict]:
    first = info.label_map.first_id
    return [{"id": first + i, "name": name} for i, name in enumerate(info.label_map.names)]


def evaluate(model: keras.Model, batches: Iterable[dict], config, info) -> dict:
    """COCO box mAP of ``model`` at each image's original resolution, computed by pycocotools.

    Args:
        batches: dicts with ``image`` (normalised, model size, ``(B, h, w, 3)``), ``boxes``
            ``(B, N, 4)`` normalised, ``classes`` ``(B, N)`` (0 marks padding), ``area`` ``(B, N)``,
            ``is_crowd`` ``(B, N)``, and the original ``height``/``width`` ``(B,)``.

    Returns:
        :func:`~skelgen_runtime.metrics.detection.coco_evaluate`'s dict: ``ap``, ``ap50``, ``ap75``,
        ``ap_small``, ``ap_medium``, ``ap_large``, recalls, and ``per_class``.
    """
    acc = CocoAccumulator(categories=_categories(info))
    for batch in batches:
        found = detect(model, batch["image"], info)
        gt = {k: batch[k].numpy() for k in ("boxes", "classes", "area", "is_crowd", "height", "width")}
        for i in range(gt["classes"].shape[0]):
            real = gt["classes"][i] > 0
            n = int(found["num_detections"][i])
            acc.add(
                image_id=len(acc.images) + 1,
                height=int(gt["height"][i]),
                width=int(gt["width"][i]),
                gt_boxes=gt["boxes"][i][real],
                gt_classes=gt["classes"][i][real],
                gt_area=gt["area"][i][real],
                gt_is_crowd=gt["is_crowd"][i][real],
                boxes=found["boxes"][i, :n],
                classes=found["classes"][i, :n],
                scores=found["scores"][i, :n],
            )
    return acc.evaluate()


def report(result: dict, info) -> str:
    """Per-class AP and AP50, and the headline ``ap= ap50= ap75=`` line."""
    fmt = lambda v: f"{v:6.3f}" if v is not None else "   n/a"  # noqa: E731
    width = max(5, *(len(n) for n in result["per_class"]))
    lines = [f"{'class':<{width}}  {'AP':>6}  {'AP50':>6}"]
    lines += [f"{name:<{width}}  {fmt(s['ap'])}  {fmt(s['ap50'])}" for name, s in result["per_class"].items()]
    lines.append(f"{'mean':<{width}}  {fmt(result['ap'])}  {fmt(result['ap50'])}")
    sizes = " ".join(f"{k}={fmt(result[k]).strip()}" for k in ("ap_small", "ap_medium", "ap_large"))
    lines.append(f"ap={result['ap']:.4f} ap50={result['ap50']:.4f} ap75={result['ap75']:.4f} {sizes}")
    return "\n".join(lines)


def _record_image_ids(info, names: set[str], max_records: int = MAX_ID_SCAN) -> dict[str, int]:
    """File stem -> numeric ``image/source_id`` of the records named in ``names``.

    Reads only two keys, smallest split first, and stops once every name is found or
    ``max_records`` records were read (so predicting files from outside a large dataset stays cheap).
    """
    spec = {
        "image/filename": tf.io.FixedLenFeature([], tf.string),
        "image/source_id": tf.io.FixedLenFeature([], tf.string),
    }
    ids: dict[str, int] = {}
    read = 0
    for split in sorted(info.data["splits"], key=info.count):
        if not names - set(ids) or read >= max_records:
            break
        files = [str(f) for f in info.split_files(split)]
        for record in tf.data.TFRecordDataset(files, compression_type=info.compression or "").take(max_records - read):
            read += 1
            parsed = tf.io.parse_single_example(record, spec)
            stem = Path(parsed["image/filename"].numpy().decode()).stem
            source_id = parsed["image/source_id"].numpy().decode()
            if stem in names and source_id.isdigit():
                ids.setdefault(stem, int(source_id))
    return ids


def _dataset_ids(label_map) -> list[int]:
    """The dataset's own category id of each class, in label-map order."""
    first = label_map.first_id
    return list(label_map.source_ids or range(first, first + label_map.num_classes))


def serving_function(model: keras.Model, config, info) -> ServingFunction:
    """What ``predict.py`` runs and ``export.py`` saves: raw images -> detections.

    Input ``images`` uint8 ``(B, H, W, 3)``. Outputs, ``M = 100`` rows per image, detections by
    decreasing score first (those scoring above :data:`PREDICT_SCORE_THRESHOLD`), then zeros:

    - ``boxes`` float32 ``(B, M, 4)``: ``[ymin, xmin, ymax, xmax]`` normalised to ``[0, 1]``;
    - ``boxes_pixels`` float32 ``(B, M, 4)``: the same boxes in pixels of the input image;
    - ``scores`` float32 ``(B, M)``;
    - ``classes`` int32 ``(B, M)``: the dataset's own category ids (the label map's source ids);
    - ``num_detections`` int32 ``(B,)``.
    """
    data, label_map = config.data, info.label_map
    first = label_map.first_id
    dataset_ids = tf.constant(_dataset_ids(label_map), tf.int32)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(model_input(images, data.image_size, data.mean, data.std), training=False)
        found = centernet.decode(
            outputs, label_map.num_classes, first_id=first, score_threshold=PREDICT_SCORE_THRESHOLD
        )
        rows = tf.shape(found["scores"])[1]
        valid = tf.range(rows)[None, :] < found["num_detections"][:, None]
        height_width = tf.cast(tf.shape(images)[1:3], tf.float32)
        return {
            "boxes": found["boxes"],
            "boxes_pixels": found["boxes"] * tf.concat([height_width, height_width], axis=0),
            "scores": found["scores"],
            "classes": tf.where(valid, tf.gather(dataset_ids, found["classes"] - first), 0),
            "num_detections": found["num_detections"],
        }

    return serve


def predict(model: keras.Model, items: Iterable[tuple[str, np.ndarray]], config, info, out_dir: Path) -> str:
    """Write ``NAME_boxes.png`` per ``(name, image)`` and all detections to ``predictions.json``.

    Each image goes through :func:`serving_function`, the function ``export.py`` saves.
    ``predictions.json`` is a COCO result list (``COCO.loadRes`` reads it): ``image_id`` (the
    record's ``image/source_id`` when the image is one of the dataset's, else its 1-based position
    in this run), ``file_name`` (``NAME``: the file name without extension), ``category_id`` in the
    dataset's own category ids, ``bbox`` ``[x, y, w, h]`` in pixels of the image, and ``score``.
    """
    from PIL import Image

    from skelgen_runtime.viz_boxes import draw_boxes

    label_map = info.label_map
    position_of = {dataset_id: n for n, dataset_id in enumerate(_dataset_ids(label_map))}
    serve = as_signature(serving_function(model, config, info))
    results: list[dict[str, Any]] = []
    n = 0
    for position, (name, image) in enumerate(items, start=1):
        found = {key: value[0].numpy() for key, value in serve(image[None]).items()}
        k = int(found["num_detections"])
        scores, classes = found["scores"][:k], found["classes"][:k]
        pixels = found["boxes_pixels"][:k][:, [1, 0, 3, 2]].astype(np.float64)  # [xmin, ymin, xmax, ymax]
        for (x0, y0, x1, y1), score, cls in zip(pixels, scores, classes):
            results.append(
                {
                    "image_id": position,
                    "file_name": name,
                    "category_id": int(cls),
                    "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                    "score": round(float(score), 4),
                }
            )
        shown = scores >= DRAW_SCORE_THRESHOLD
        index = [position_of[int(c)] for c in classes[shown]]
        captions = [f"{label_map.names[i]} {s:.2f}" for i, s in zip(index, scores[shown])]
        colors = [label_map.colors[i] for i in index]
        # write: staged
        Image.fromarray(draw_boxes(image, pixels[shown], captions, colors)).save(out_dir / f"{name}_boxes.png")
        n += 1
    known = _record_image_ids(info, {r["file_name"] for r in results})
    for r in results:
        r["image_id"] = known.get(r["file_name"], r["image_id"])
    (out_dir / "predictions.json").write_text(json.dumps(results))  # write: staged
    return f"wrote {n} pictures with boxes and {len(results)} detections in predictions.json"
