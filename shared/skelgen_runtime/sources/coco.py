"""The COCO detection layout: images per split and one ``instances_SPLIT.json`` per labelled split.

::

    ROOT/data/SPLIT/<file_name>                  images (JPEG or PNG)
    ROOT/annotations/instances_SPLIT.json        COCO "instances" JSON (absent for ``pred``)

The JSON holds ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations``
(``id``, ``image_id``, ``category_id``, ``bbox`` = ``[x, y, width, height]`` in pixels, ``area``,
``iscrowd``) and ``categories`` (``id``, ``name``). The JSON is authoritative: images on disk that it
does not list are left out (with one warning line), images it lists must exist.

Classes are matched by *name*: category ``name`` -> its position in the label map (ids
``label_map.first_id``, normally 1, upwards). When the dataset's own category ids differ from these
contiguous ids, the label map keeps them as ``source_ids`` (written to ``dataset_info.json``) so that
predictions can be reported in the dataset's ids again.

Box policy (one rule, applied to every annotation): a box is clipped to the image; a box that is left
with zero or negative width or height (degenerate in the JSON, or lying wholly outside the image) is
dropped, and each dropped box is reported as a ``warning:`` line on stderr naming the image and the
annotation id. Clipping alone is silent (COCO boxes often overshoot by a fraction of a pixel). An
object's ``area`` is the JSON's ``area`` (the mask area in COCO proper) or, when absent, the clipped
box's area.

Errors, each naming the file: an unreadable or missing image, an image whose size differs from the
JSON's, or an annotation whose category is unknown raise :class:`BadExampleError` (so ``--skip-bad``
leaves that image out); an unreadable or inconsistent JSON raises :class:`DatasetError`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.images_masks import IMAGE_SUFFIXES, read_image

__all__ = ["CocoSource", "CocoItem", "CocoAnnotation", "clip_box"]

#: a COCO box ``(x, y, width, height)`` in pixels
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CocoAnnotation:
    """One annotation as read from the JSON (``bbox`` is ``(x, y, width, height)`` in pixels)."""

    id: int
    category_id: int
    bbox: Box
    area: float | None
    iscrowd: int


@dataclass(frozen=True)
class CocoItem(SourceItem):
    """A COCO image and its annotations, carried along so workers need not read the JSON again."""

    image_id: int = 0
    size: tuple[int, int] | None = None  # (width, height) as the JSON states it
    annotations: tuple[CocoAnnotation, ...] = ()


def clip_box(bbox: Box, width: int, height: int) -> Box | None:
    """Clip a COCO ``(x, y, w, h)`` pixel box to the image; ``None`` when nothing of positive size is left."""
    x, y, w, h = bbox
    if not (w > 0 and h > 0):
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass
class CocoSource:
    """Reader of the COCO layout described in the module docstring."""

    root: Path
    label_map: LabelMap
    image_dir: str = "data"
    annotation_dir: str = "annotations"
    unlabelled_splits: tuple[str, ...] = ("pred",)
    #: annotation file stem -> {COCO category id: label id}, filled by :meth:`items`
    _category_labels: dict[str, dict[int, int]] = field(default_factory=dict, init=False, repr=False)

    @staticmethod
    def discover_classes(root: Path) -> list[str]:
        """Category names of ``ROOT/annotations/instances_train.json`` in category-id order (when no class list is given)."""
        path = root / "annotations" / "instances_train.json"
        try:
            categories = json.loads(path.read_text())["categories"]
            return [str(c["name"]) for c in sorted(categories, key=lambda c: int(c["id"]))]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"cannot read the categories of {path} ({err}); list the classes in CLASSES") from None

    def splits(self) -> list[str]:
        base = self.root / self.image_dir
        if not base.is_dir():
            raise DatasetError(f"no image folder at {base}; expected {base}/<split>/*.jpg")
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def is_labelled(self, split: str) -> bool:
        return split not in self.unlabelled_splits

    def annotation_file(self, split: str) -> Path:
        return self.root / self.annotation_dir / f"instances_{split}.json"

    def items(self, split: str) -> list[SourceItem]:
        folder = self.root / self.image_dir / split
        if not folder.is_dir():
            raise DatasetError(f"split {split!r} has no folder {folder}")
        if not self.is_labelled(split):
            files = sorted(
                p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            return [CocoItem(key=p.name, files={"image": p}, image_id=i + 1) for i, p in enumerate(files)]
        return self._labelled_items(split, folder)

    def _load(self, path: Path) -> dict:
        if not path.is_file():
            raise DatasetError(f"annotation file {path} not found; a labelled split needs a COCO instances JSON there")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path} is not readable JSON ({err})") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{path} is not a COCO instances file: it holds a {type(data).__name__}, not an object")
        missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
        if missing:
            raise DatasetError(f"{path} is not a COCO instances file: it has no list {', '.join(missing)}")
        return data

    def _labelled_items(self, split: str, folder: Path) -> list[SourceItem]:
        path = self.annotation_file(split)
        data = self._load(path)
        try:
            names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
            images = {int(im["id"]): im for im in data["images"]}
            if len(images) != len(data["images"]):
                raise DatasetError(f"{path} lists an image id twice")
            by_image: dict[int, list[CocoAnnotation]] = {i: [] for i in images}
            for a in data["annotations"]:
                ann = CocoAnnotation(
                    id=int(a["id"]),
                    category_id=int(a["category_id"]),
                    bbox=tuple(float(v) for v in a["bbox"]),  # type: ignore[arg-type]
                    area=float(a["area"]) if a.get("area") is not None else None,
                    iscrowd=int(a.get("iscrowd", 0)),
                )
                if len(ann.bbox) != 4 or not all(math.isfinite(v) for v in ann.bbox):
                    raise DatasetError(
                        f"{path}: annotation {ann.id} has bbox {a['bbox']}; expected 4 numbers [x, y, w, h]"
                    )
                if int(a["image_id"]) not in by_image:
                    raise DatasetError(
                        f"{path}: annotation {ann.id} refers to image {a['image_id']}, which is not listed"
                    )
                by_image[int(a["image_id"])].append(ann)
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{path} has a malformed entry ({type(err).__name__}: {err})") from None
        self._map_categories(names, path)
        listed = set()
        items = []
        for image_id, im in images.items():
            file = folder / str(im["file_name"])
            listed.add(file.name)
            size = (int(im["width"]), int(im["height"])) if "width" in im and "height" in im else None
            items.append(
                CocoItem(
                    key=str(im["file_name"]),
                    files={"image": file, "annotations": path},
                    image_id=image_id,
                    size=size,
                    annotations=tuple(by_image[image_id]),
                    classes=frozenset(names.get(a.category_id, str(a.category_id)) for a in by_image[image_id]),
                )
            )
        unlisted = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in listed]
        if unlisted:
            _warn(
                f"{len(unlisted)} images in {folder} are not listed in {path} and are left out "
                f"(e.g. {unlisted[0].name})"
            )
        return sorted(items, key=lambda it: it.key)

    def _map_categories(self, names: dict[int, str], path: Path) -> None:
        """Match the JSON's categories to the label map by name; record source ids that differ."""
        position = {n: i for i, n in enumerate(self.label_map.names)}
        first = self.label_map.first_id
        self._category_labels[path.stem] = {cid: first + position[n] for cid, n in names.items() if n in position}
        found = {position[n]: cid for cid, n in names.items() if n in position}
        if len(found) == len(position):
            source_ids = tuple(found[i] for i in range(len(position)))
            if source_ids != tuple(range(first, first + len(position))) and source_ids != self.label_map.source_ids:
                if self.label_map.source_ids:
                    raise DatasetError(f"{path} gives the classes other category ids than another split does")
                self.label_map = replace(self.label_map, source_ids=source_ids)

    def encode(self, item: SourceItem, split: str) -> bytes:
        from skelgen_runtime.schemas.detection import encode_example

        image_path = item.files["image"]
        if not image_path.is_file():
            where = f" (listed in {item.files['annotations']})" if "annotations" in item.files else ""
            raise BadExampleError(str(image_path), f"image file not found{where}")
        image_bytes, fmt, (width, height) = read_image(image_path)
        fields = None
        if self.is_labelled(split):
            if not isinstance(item, CocoItem):
                raise TypeError("CocoSource.encode needs the CocoItem that CocoSource.items listed")
            if item.size is not None and item.size != (width, height):
                raise BadExampleError(
                    str(image_path),
                    f"image is {width}x{height} but {item.files['annotations']} says {item.size[0]}x{item.size[1]}",
                )
            fields = self._objects(item, image_path, width, height)
        example = encode_example(
            image_bytes=image_bytes,
            image_format=fmt,
            filename=f"{split}/{image_path.name}",
            source_id=str(getattr(item, "image_id", 0) or item.key),
            height=height,
            width=width,
            **(fields or {"boxes": None}),
        )
        return example.SerializeToString()

    def _objects(self, item: CocoItem, image_path: Path, width: int, height: int) -> dict:
        json_path = item.files["annotations"]
        labels_of = self._category_labels.get(json_path.stem)
        if labels_of is None:  # encode() without items() in this process: map from the JSON once
            self._map_categories({int(c["id"]): str(c["name"]) for c in self._load(json_path)["categories"]}, json_path)
            labels_of = self._category_labels[json_path.stem]
        boxes, labels, texts, crowd, areas = [], [], [], [], []
        for ann in item.annotations:
            label = labels_of.get(ann.category_id)
            if label is None:
                raise BadExampleError(
                    str(image_path),
                    f"annotation {ann.id} in {json_path} has category {ann.category_id}, which is not one of the "
                    f"classes {list(self.label_map.names)} (matched by name); add it to CLASSES in the build script",
                )
            clipped = clip_box(ann.bbox, width, height)
            if clipped is None:
                _warn(
                    f"{image_path}: annotation {ann.id} box {list(ann.bbox)} has no area inside the "
                    f"{width}x{height} image; dropped"
                )
                continue
            x, y, w, h = clipped
            boxes.append([y / height, x / width, (y + h) / height, (x + w) / width])
            labels.append(label)
            texts.append(self.label_map.names[label - self.label_map.first_id])
            crowd.append(ann.iscrowd)
            areas.append(ann.area if ann.area is not None else w * h)
        return {"boxes": boxes, "labels": labels, "texts": texts, "is_crowd": crowd, "areas": areas}
