"""Cityscapes fine annotations, read as ``leftImg8bit_trainvaltest.zip`` + ``gtFine_trainvaltest.zip`` extract.

::

    ROOT/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    ROOT/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    ROOT/pred/*.jpg|png          optional: an unlabelled split "pred"

Labels: the ``*_gtFine_labelIds.png`` files hold the official labelIds (0..33); records hold the
19 trainIds of ``cityscapesscripts/helpers/labels.py`` (road=0 .. bicycle=18) and 255 for every
void or unevaluated label (labelIds 0..6, 9, 10, 14..16, 18, 29, 30; 255, i.e. -1 as uint8, too).
The mapping is one 256-entry lookup table; labelIds 34..254 make the example bad. The label map's
``source_ids`` keep each class's labelId (submit predictions with those, not trainIds), its
colours are the official ones.

The ``test`` split's gtFine files carry no usable labels (all void): ``test`` is unlabelled, and
its gtFine folder is never read. Other folders (``train_extra``, ``gtCoarse``) are not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.labels import LabelLookup
from skelgen_runtime.published_classes import CITYSCAPES_COLORS, CITYSCAPES_LABEL_IDS, CITYSCAPES_LABELS
from skelgen_runtime.sources._published import complete_label_map, encode_pair, folder_items
from skelgen_runtime.sources.base import LabelMap, SourceItem

__all__ = ["CityscapesSource"]

_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"
_LABELLED = ("train", "val")
_SPLITS = ("train", "val", "test")
#: every value a labelIds PNG may hold: the table's labelIds, and 255 (labelId -1 written as uint8)
_KNOWN_IDS = (*sorted(i for _, i, _, _ in CITYSCAPES_LABELS if i >= 0), 255)


@dataclass
class CityscapesSource:
    """Reader of the Cityscapes layout described in the module docstring.

    Attributes:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        label_map: the 19 training classes; ``source_ids`` default to their labelIds.
        pred_dir: folder of unlabelled images under ``root`` (split ``pred``) when it exists.
    """

    root: Path
    label_map: LabelMap
    pred_dir: str = "pred"
    lookup: LabelLookup = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.label_map = complete_label_map(
            self.label_map, dataset="Cityscapes", source_ids=CITYSCAPES_LABEL_IDS, colors=CITYSCAPES_COLORS
        )
        self.lookup = LabelLookup(
            dataset="Cityscapes labelIds",
            source_ids=self.label_map.source_ids,
            known=_KNOWN_IDS,
            ignore_label=self.label_map.ignore_label,
        )

    def _images_dir(self) -> Path:
        folder = self.root / "leftImg8bit"
        if not folder.is_dir():
            raise DatasetError(
                f"{folder} not found: is --source the folder leftImg8bit_trainvaltest.zip and "
                "gtFine_trainvaltest.zip were extracted into (it holds leftImg8bit/ and gtFine/)?"
            )
        return folder

    def splits(self) -> list[str]:
        images = self._images_dir()
        found = [s for s in _SPLITS if (images / s).is_dir()]
        if not found:
            raise DatasetError(f"{images} holds none of the split folders {', '.join(_SPLITS)}")
        if folder_items(self.root / self.pred_dir):
            found.append("pred")
        return found

    def is_labelled(self, split: str) -> bool:
        return split in _LABELLED

    def items(self, split: str) -> list[SourceItem]:
        if split == "pred":
            return folder_items(self.root / self.pred_dir)
        if split not in _SPLITS:
            raise DatasetError(f"Cityscapes has no split {split!r}; it has: {', '.join(_SPLITS)}, pred")
        images = self._images_dir() / split
        if not images.is_dir():
            raise DatasetError(f"{images} not found: the {split!r} images are missing")
        labels = self.root / "gtFine" / split
        if self.is_labelled(split) and not labels.is_dir():
            raise DatasetError(
                f"{labels} not found: the {split!r} labels are missing; extract gtFine_trainvaltest.zip into {self.root}"
            )
        items = []
        for city in sorted(p for p in images.iterdir() if p.is_dir()):
            for path in sorted(city.glob(f"*{_IMAGE_SUFFIX}")):
                key = path.name[: -len(_IMAGE_SUFFIX)]
                files = {"image": path}
                if self.is_labelled(split):
                    files["label"] = labels / city.name / f"{key}{_LABEL_SUFFIX}"
                items.append(SourceItem(key=key, files=files))
        return sorted(items, key=lambda item: item.key)

    def encode(self, item: SourceItem, split: str) -> bytes:
        image = item.files["image"]
        return encode_pair(
            image_path=image,
            label_path=item.files.get("label"),
            filename=f"{split}/{image.name}",
            label_map=self.label_map,
            lookup=self.lookup,
        )
