"""PASCAL VOC 2012 segmentation, read as ``VOCtrainval_11-May-2012.tar`` extracts.

::

    ROOT/VOCdevkit/VOC2012/                     (ROOT may also be VOCdevkit/ or VOC2012/ itself)
        ImageSets/Segmentation/{train,val}.txt  ids, one a line (trainval.txt is their union: unused)
        ImageSets/Segmentation/test.txt         optional (VOC2012test.tar): an unlabelled split "test"
        JPEGImages/<id>.jpg
        SegmentationClass/<id>.png              palette ("P") PNGs: indices 0..20, 255 = border/ignore
    ROOT/pred/*.jpg|png                         optional: an unlabelled split "pred"

Labels are the palette *indices* (read with Pillow; ``tf.io.decode_png`` expands a palette PNG to
its colours, so a one-channel decode gives their luminance, which is why DeepLab's
``remove_gt_colormap.py`` re-saves VOC labels as plain indices first), stored unchanged: class ids 0 (background) .. 20
(tvmonitor) and 255 for the borders, which training ignores. Source ids equal training ids, so the
label map has no ``source_ids``; its colours are the VOC palette's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.labels import LabelLookup
from skelgen_runtime.published_classes import VOC2012_CLASSES
from skelgen_runtime.sources._published import colormap, complete_label_map, encode_pair, folder_items
from skelgen_runtime.sources.base import LabelMap, SourceItem

__all__ = ["Voc2012Source"]

_LISTS = "ImageSets/Segmentation"
_LABELLED = ("train", "val")
_UNLABELLED = ("test", "pred")


@dataclass
class Voc2012Source:
    """Reader of the VOC 2012 segmentation layout described in the module docstring.

    Attributes:
        root: the folder the tar was extracted into, ``VOCdevkit/`` or ``VOC2012/``.
        label_map: the 21 classes (background first); colours default to the VOC palette.
        pred_dir: folder of unlabelled images under ``root`` (split ``pred``) when it exists.
    """

    root: Path
    label_map: LabelMap
    pred_dir: str = "pred"
    lookup: LabelLookup = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.label_map = complete_label_map(
            self.label_map, dataset="PASCAL VOC 2012", source_ids=(), colors=colormap(len(VOC2012_CLASSES))
        )
        # identity unless make_source() passes source_ids (e.g. to keep a subset of the classes)
        self.lookup = LabelLookup(
            dataset="VOC 2012 class indices",
            source_ids=self.label_map.source_ids or tuple(range(len(VOC2012_CLASSES))),
            known=(*range(len(VOC2012_CLASSES)), 255),
            ignore_label=self.label_map.ignore_label,
        )

    @property
    def voc_dir(self) -> Path:
        """The ``VOC2012`` folder under ``root``.

        Raises:
            DatasetError: no candidate folder holds ``ImageSets/Segmentation``.
        """
        candidates = (self.root, self.root / "VOC2012", self.root / "VOCdevkit" / "VOC2012")
        for folder in candidates:
            if (folder / _LISTS).is_dir():
                return folder
        raise DatasetError(
            f"{_LISTS}/ not found under {self.root} (looked in {', '.join(str(c) for c in candidates)}): "
            "is --source the folder VOCtrainval_11-May-2012.tar was extracted into (holding VOCdevkit/), "
            "or its VOCdevkit/VOC2012 folder?"
        )

    def _list_file(self, split: str) -> Path:
        return self.voc_dir / _LISTS / f"{split}.txt"

    def splits(self) -> list[str]:
        for split in _LABELLED:
            path = self._list_file(split)
            if not path.is_file():
                raise DatasetError(
                    f"{path} not found: the split list of {split!r} is missing; is --source the VOC2012 "
                    "folder of VOCtrainval_11-May-2012.tar (not the detection-only VOC2012 test or 2007 release)?"
                )
        found = list(_LABELLED)
        if self._list_file("test").is_file():
            found.append("test")
        if folder_items(self.root / self.pred_dir):
            found.append("pred")
        return found

    def is_labelled(self, split: str) -> bool:
        return split not in _UNLABELLED

    def items(self, split: str) -> list[SourceItem]:
        if split == "pred":
            return folder_items(self.root / self.pred_dir)
        if split not in _LABELLED + ("test",):
            raise DatasetError(f"VOC 2012 has no split {split!r}; it has: {', '.join(_LABELLED + _UNLABELLED)}")
        path = self._list_file(split)
        if not path.is_file():
            raise DatasetError(f"{path} not found: the split list of {split!r} is missing")
        try:
            ids = sorted({line.split()[0] for line in path.read_text().splitlines() if line.strip()})
        except (OSError, UnicodeDecodeError) as err:
            raise DatasetError(f"cannot read split list {path} ({err})") from None
        voc = self.voc_dir
        items = []
        for key in ids:
            files = {"image": voc / "JPEGImages" / f"{key}.jpg"}
            if self.is_labelled(split):
                files["label"] = voc / "SegmentationClass" / f"{key}.png"
            items.append(SourceItem(key=key, files=files))
        return items

    def encode(self, item: SourceItem, split: str) -> bytes:
        image = item.files["image"]
        listed_in = "" if split == "pred" else str(self._list_file(split))
        return encode_pair(
            image_path=image,
            label_path=item.files.get("label"),
            filename=f"{split}/{image.name}",
            label_map=self.label_map,
            lookup=self.lookup,
            listed_in=listed_in,
        )
