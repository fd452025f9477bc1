"""COCO box mAP, computed by pycocotools itself so the numbers are the ones papers report.

Conventions are pycocotools' (``cocoeval.py``'s ``Params``, github.com/cocodataset/cocoapi): IoU thresholds 0.50:0.05:0.95, 101 recall points, at most
100 detections per image, area ranges small < 32^2 <= medium < 96^2 <= large judged by the ground
truth's ``area``, crowd ground truth never counted as missed. Categories without ground truth are
left out of the mean; a score pycocotools cannot compute (no ground truth in an area range) is
reported as ``None``.

Boxes here are COCO's ``[x, y, width, height]`` in pixels of the original image.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["CocoAccumulator", "coco_evaluate", "to_coco_gt", "STAT_NAMES"]

#: names of ``COCOeval.stats`` entries, in order
STAT_NAMES = (
    "ap",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)


def _quiet():
    """pycocotools prints progress to stdout; keep reports and JSON output clean."""
    return contextlib.redirect_stdout(io.StringIO())


def to_coco_gt(images: Sequence[dict], annotations: Sequence[dict], categories: Sequence[dict]):
    """A ``pycocotools.coco.COCO`` ground truth built in memory.

    Args:
        images: ``{"id", "width", "height"}`` (other keys kept).
        annotations: ``{"image_id", "category_id", "bbox", "area", "iscrowd"}``; ``id`` is assigned
            from 1 when absent (pycocotools never matches a ground truth with id 0).
        categories: ``{"id", "name"}``.
    """
    from pycocotools.coco import COCO

    anns = []
    for i, a in enumerate(annotations, start=1):
        ann = {"id": i, **a}
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
        anns.append(ann)
    gt = COCO()
    gt.dataset = {"images": list(images), "annotations": anns, "categories": list(categories)}
    with _quiet():
        gt.createIndex()
    return gt


def _load_detections(gt, detections: Sequence[dict]):
    """``gt.loadRes(detections)``, or an empty result set (``loadRes([])`` raises)."""
    from pycocotools.coco import COCO

    if detections:
        with _quiet():
            return gt.loadRes(list(detections))
    dt = COCO()
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]), "annotations": []}
    with _quiet():
        dt.createIndex()
    return dt


def _optional(value: float) -> float | None:
    return None if value < 0 else float(value)


def coco_evaluate(gt, detections: Sequence[dict], class_names: Mapping[int, str] | None = None) -> dict:
    """Score ``detections`` (COCO results: ``image_id``, ``category_id``, ``bbox``, ``score``) against ``gt``.

    Returns:
        ``ap`` (AP@[.50:.95]), ``ap50``, ``ap75``, ``ap_small``, ``ap_medium``, ``ap_large``,
        ``ar1``, ``ar10``, ``ar100``, ``ar_small``, ``ar_medium``, ``ar_large`` (``COCOeval.stats``
        in order; ``None`` where undefined), ``per_class`` ``{name: {"ap", "ap50"}}`` (``None`` for a
        class without ground truth) and ``num_detections``.
    """
    from pycocotools.cocoeval import COCOeval

    dt = _load_detections(gt, detections)
    ev = COCOeval(gt, dt, iouType="bbox")
    with _quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    result: dict = {name: _optional(v) for name, v in zip(STAT_NAMES, ev.stats)}
    precision = ev.eval["precision"]  # (iou thresholds, recall points, classes, areas, max dets)
    names = class_names or {c["id"]: c["name"] for c in gt.dataset["categories"]}
    per_class = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p_all = precision[:, :, k, 0, -1]
        p_50 = precision[0, :, k, 0, -1]
        per_class[names.get(cat_id, str(cat_id))] = {
            "ap": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else None,
            "ap50": float(p_50[p_50 > -1].mean()) if (p_50 > -1).any() else None,
        }
    result["per_class"] = per_class
    result["num_detections"] = len(detections)
    return result


@dataclass
class CocoAccumulator:
    """Collects ground truth and detections image by image, then scores them with :func:`coco_evaluate`.

    Boxes given to :meth:`add` are normalised ``[ymin, xmin, ymax, xmax]`` (the records' format) and
    converted here to COCO ``[x, y, w, h]`` pixels of the image's original ``height`` x ``width``.
    """

    categories: Sequence[dict]
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    detections: list[dict] = field(default_factory=list)

    @staticmethod
    def to_pixels(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
        """Normalised ``(N, 4)`` ``[ymin, xmin, ymax, xmax]`` -> ``(N, 4)`` ``[x, y, w, h]`` pixels."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        y0, x0 = boxes[:, 0] * height, boxes[:, 1] * width
        y1, x1 = boxes[:, 2] * height, boxes[:, 3] * width
        return np.stack([x0, y0, x1 - x0, y1 - y0], axis=-1)

    def add(
        self,
        *,
        image_id: int,
        height: int,
        width: int,
        gt_boxes: np.ndarray,
        gt_classes: Iterable[int],
        gt_area: Iterable[float],
        gt_is_crowd: Iterable[bool],
        boxes: np.ndarray,
        classes: Iterable[int],
        scores: Iterable[float],
    ) -> None:
        """Add one image: its ground truth and its detections (class ids as in ``categories``)."""
        self.images.append({"id": int(image_id), "height": int(height), "width": int(width)})
        for box, cls, area, crowd in zip(self.to_pixels(gt_boxes, height, width), gt_classes, gt_area, gt_is_crowd):
            self.annotations.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(cls),
                    "bbox": box.tolist(),
                    "area": float(area),
                    "iscrowd": int(bool(crowd)),
                }
            )
        for box, cls, score in zip(self.to_pixels(boxes, height, width), classes, scores):
            self.detections.append(
                {"image_id": int(image_id), "category_id": int(cls), "bbox": box.tolist(), "score": float(score)}
            )

    def gt(self):
        return to_coco_gt(self.images, self.annotations, self.categories)

    def evaluate(self) -> dict:
        """:func:`coco_evaluate` over everything added."""
        return coco_evaluate(self.gt(), self.detections)
