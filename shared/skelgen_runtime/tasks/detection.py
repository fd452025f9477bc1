"""Object detection: loss, evaluation (COCO mAP) and prediction for CenterNet-format models.

Models map normalised images ``(B, H, W, 3)`` to one tensor ``(B, H / 4, W / 4, C + 4)`` (see
:mod:`skelgen_runtime.formats.centernet`); class ids start at the label map's ``first_id`` (1).
Boxes are ``[ymin, xmin, ymax, xmax]`` normalised inside the pipeline and COCO ``[x, y, w, h]``
pixels of the original image in everything written out.

Decoding keeps heatmap peaks, then applies per-class NMS (IoU 0.5) and at most 100 detections per
image. Evaluation keeps detections scoring at least 0.01 (COCO practice: low-score detections only
add recall points); ``predictions.json`` keeps those of at least 0.05 and the pictures draw those of
at least 0.3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.metrics.detection import CocoAccumulator
from skelgen_runtime.preprocessing.detection import normalize, resize
from skelgen_runtime.formats import centernet
from skelgen_runtime.tasks._images import predict_item, read_inputs
from skelgen_runtime.tasks._images import no_artifacts as write_artifacts
from skelgen_runtime.tasks.previews import detection_preview as preview

__all__ = [
    "preview", "read_inputs", "predict_item", "write_artifacts",
    "MONITOR",
    "MONITOR_MODE",
    "EVAL_SCORE_THRESHOLD",
    "PREDICT_SCORE_THRESHOLD",
    "DRAW_SCORE_THRESHOLD",
    "loss",
    "train_metrics",
    "detect",
    "evaluate",
    "report",
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


def loss(config, info):
    """The default loss (projects of skelgen 0.1; newer ones choose in ``core/losses.py``): CenterNet's."""
    return centernet.make_loss(info.num_classes)


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
    decoded = centernet.decode(outputs, info.num_classes, first_id=info.label_map.first_id,
                               score_threshold=score_threshold)
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
                height=int(gt["height"][i]), width=int(gt["width"][i]),
                gt_boxes=gt["boxes"][i][real], gt_classes=gt["classes"][i][real],
                gt_area=gt["area"][i][real], gt_is_crowd=gt["is_crowd"][i][real],
                boxes=found["boxes"][i, :n], classes=found["classes"][i, :n], scores=found["scores"][i, :n],
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
    spec = {"image/filename": tf.io.FixedLenFeature([], tf.string),
            "image/source_id": tf.io.FixedLenFeature([], tf.string)}
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


def predict(model: keras.Model, items: Iterable[tuple[str, np.ndarray]], config, info, out_dir: Path) -> str:
    """Write ``NAME_boxes.png`` per ``(name, image)`` and all detections to ``predictions.json``.

    ``predictions.json`` is a COCO result list (``COCO.loadRes`` reads it): ``image_id`` (the
    record's ``image/source_id`` when the image is one of the dataset's, else its 1-based position
    in this run), ``file_name`` (``NAME``: the file name without extension), ``category_id`` in the
    dataset's own category ids, ``bbox`` ``[x, y, w, h]`` in pixels of the image, and ``score``.
    """
    from PIL import Image

    from skelgen_runtime.viz_boxes import boxes_to_pixels, draw_boxes

    label_map = info.label_map
    first = label_map.first_id
    source_ids = label_map.source_ids or tuple(range(first, first + label_map.num_classes))
    results, n = [], 0
    for position, (name, image) in enumerate(items, start=1):
        height, width = image.shape[:2]
        x = normalize(resize(image, config.data.image_size), config.data.mean, config.data.std)
        found = detect(model, x[None], info, score_threshold=PREDICT_SCORE_THRESHOLD)
        k = int(found["num_detections"][0])
        boxes, scores, classes = found["boxes"][0, :k], found["scores"][0, :k], found["classes"][0, :k]
        pixels = boxes_to_pixels(boxes, height, width)
        for (x0, y0, x1, y1), score, cls in zip(pixels, scores, classes):
            results.append({"image_id": position, "file_name": name, "category_id": int(source_ids[cls - first]),
                            "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                            "score": round(float(score), 4)})
        shown = scores >= DRAW_SCORE_THRESHOLD
        captions = [f"{label_map.names[c - first]} {s:.2f}" for c, s in zip(classes[shown], scores[shown])]
        colors = [label_map.colors[c - first] for c in classes[shown]]
        Image.fromarray(draw_boxes(image, pixels[shown], captions, colors)).save(out_dir / f"{name}_boxes.png")
        n += 1
    known = _record_image_ids(info, {r["file_name"] for r in results})
    for r in results:
        r["image_id"] = known.get(r["file_name"], r["image_id"])
    (out_dir / "predictions.json").write_text(json.dumps(results))
    return f"wrote {n} pictures with boxes and {len(results)} detections in predictions.json"
