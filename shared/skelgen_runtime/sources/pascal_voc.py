"""PASCAL VOC detection, as extracted from ``VOCtrainval_*.tar`` (VOC2007 or VOC2012).

::

    ROOT[/VOCdevkit]/VOC20XX/JPEGImages/<id>.jpg
    ROOT[/VOCdevkit]/VOC20XX/Annotations/<id>.xml          one <object> per box
    ROOT[/VOCdevkit]/VOC20XX/ImageSets/Main/{train,val}.txt ids of the splits (test.txt: unlabelled)
    ROOT/pred/*.jpg                                         optional unlabelled images

Each ``<object>`` has ``<name>`` (one of the 20 VOC classes), ``<difficult>`` (kept in the records
as ``image/object/difficult``) and ``<bndbox>`` with pixel ``xmin ymin xmax ymax``. Boxes are
normalised as the Object Detection API's ``create_pascal_tf_record.py`` does (``xmin / width`` ...).

Box policy: the same as :mod:`skelgen_runtime.sources.coco` — a box is clipped to the image and a box
left without area (``xmax <= xmin``, or wholly outside the image) is dropped with a ``warning:`` line
naming the XML file and the object. An unknown class name, a missing image or XML, or an unreadable
XML raise :class:`BadExampleError` naming the file (``--skip-bad`` leaves that image out).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.sources._published import folder_items
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.coco import _warn, clip_box
from skelgen_runtime.sources.images_masks import read_image

__all__ = ["PascalVocSource"]

_LISTS = "ImageSets/Main"
_LABELLED = ("train", "val")


def _number(obj: ET.Element, path: str, xml: Path) -> float:
    node = obj.find(path)
    try:
        return float(node.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise BadExampleError(str(xml), f"object has no numeric <{path}>") from None


@dataclass
class PascalVocSource:
    """Reader of the layout in the module docstring. ``label_map``: the 20 classes, ids from 1."""

    root: Path
    label_map: LabelMap
    pred_dir: str = "pred"

    @property
    def voc_dir(self) -> Path:
        """The ``VOC20XX`` folder under ``root`` (the first that holds ``ImageSets/Main``)."""
        candidates = [self.root]
        for base in (self.root, self.root / "VOCdevkit"):
            candidates += sorted(base.glob("VOC20[0-9][0-9]"))
        for folder in candidates:
            if (folder / _LISTS).is_dir():
                return folder
        raise DatasetError(
            f"{_LISTS}/ not found under {self.root} (looked in {', '.join(str(c) for c in candidates)}): is "
            "--source the folder a VOCtrainval tar was extracted into (holding VOCdevkit/), or its VOC20XX folder?"
        )

    def splits(self) -> list[str]:
        found = [s for s in _LABELLED if (self.voc_dir / _LISTS / f"{s}.txt").is_file()]
        if not found:
            raise DatasetError(f"neither train.txt nor val.txt in {self.voc_dir / _LISTS}")
        if (self.voc_dir / _LISTS / "test.txt").is_file():
            found.append("test")
        if folder_items(self.root / self.pred_dir):
            found.append("pred")
        return found

    def is_labelled(self, split: str) -> bool:
        return split in _LABELLED

    def items(self, split: str) -> list[SourceItem]:
        if split == "pred":
            return folder_items(self.root / self.pred_dir)
        voc = self.voc_dir
        listing = voc / _LISTS / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(f"{listing} not found: no split {split!r}")
        ids = sorted({line.split()[0] for line in listing.read_text().splitlines() if line.strip()})
        items = []
        for image_id in ids:
            files = {"image": voc / "JPEGImages" / f"{image_id}.jpg"}
            if self.is_labelled(split):
                files["annotation"] = voc / "Annotations" / f"{image_id}.xml"
            items.append(SourceItem(key=image_id, files=files))
        return items

    def encode(self, item: SourceItem, split: str) -> bytes:
        from skelgen_runtime.schemas.detection import encode_example

        image_path = item.files["image"]
        if not image_path.is_file():
            raise BadExampleError(str(image_path), f"image of {item.key} listed in {split}.txt is missing")
        image_bytes, fmt, (width, height) = read_image(image_path)
        fields: dict = {"boxes": None}
        if "annotation" in item.files:
            fields = self._objects(item.files["annotation"], width, height)
        return encode_example(
            image_bytes=image_bytes,
            image_format=fmt,
            filename=f"{split}/{image_path.name}",
            source_id=item.key,
            height=height,
            width=width,
            **fields,
        ).SerializeToString()

    def _objects(self, xml: Path, width: int, height: int) -> dict:
        try:
            tree = ET.parse(xml)
        except (OSError, ET.ParseError) as err:
            raise BadExampleError(str(xml), f"cannot read the annotation ({err})") from None
        names = self.label_map.names
        out: dict[str, list] = {"boxes": [], "labels": [], "texts": [], "is_crowd": [], "areas": [], "difficult": []}
        for k, obj in enumerate(tree.getroot().iter("object")):
            name = (obj.findtext("name") or "").strip()
            if name not in names:
                raise BadExampleError(str(xml), f"object {k} has class {name!r}, not one of {list(names)}")
            x0, y0 = _number(obj, "bndbox/xmin", xml), _number(obj, "bndbox/ymin", xml)
            x1, y1 = _number(obj, "bndbox/xmax", xml), _number(obj, "bndbox/ymax", xml)
            clipped = clip_box((x0, y0, x1 - x0, y1 - y0), width, height)
            if clipped is None:
                _warn(
                    f"{xml}: object {k} ({name}) box {[x0, y0, x1, y1]} has no area inside the "
                    f"{width}x{height} image; dropped"
                )
                continue
            x, y, w, h = clipped
            out["boxes"].append([y / height, x / width, (y + h) / height, (x + w) / width])
            out["labels"].append(names.index(name) + self.label_map.first_id)
            out["texts"].append(name)
            out["is_crowd"].append(0)
            out["areas"].append(w * h)
            out["difficult"].append(int(float(obj.findtext("difficult") or 0)))
        return out
