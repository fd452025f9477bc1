"""ADE20K SceneParsing (MIT Scene Parsing Benchmark), read as ``ADEChallengeData2016.zip`` extracts.

::

    ROOT/ADEChallengeData2016/                  (ROOT may also be ADEChallengeData2016/ itself)
        images/training/ADE_train_00000001.jpg         -> split "train"
        images/validation/ADE_val_00000001.jpg         -> split "val"
        annotations/{training,validation}/<stem>.png   uint8: 0 = "other objects", 1..150 = classes
    ROOT/pred/*.jpg|png                         optional: an unlabelled split "pred"

Label convention (the benchmark's: "other objects" are not evaluated): **150 classes, 0 is ignored**.
Annotation value ``v`` in 1..150 becomes training id ``v - 1`` (wall=0 .. flag=149) and value 0
becomes 255, the ignore label; values above 150 make the example bad. The label map's
``source_ids`` are 1..150 (the annotation value of each class), so predictions can be written back
in the benchmark's ids by adding 1. This is mmsegmentation's ``reduce_zero_label=True``.

To train "other" as a class instead, put ``"other"`` first in the build script's ``CLASSES``
(151 names): values are then kept unchanged (0..150, source ids 0..150, nothing ignored).
Colours are the VOC colour map of each class's annotation value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.labels import LabelLookup
from skelgen_runtime.published_classes import ADE20K_CLASSES
from skelgen_runtime.sources._published import colormap, complete_label_map, encode_pair, folder_items
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.images_masks import IMAGE_SUFFIXES

__all__ = ["Ade20kSource"]

_FOLDER = "ADEChallengeData2016"
#: skelgen split -> the release's folder name
_SPLITS = {"train": "training", "val": "validation"}
_NUM = len(ADE20K_CLASSES)


@dataclass
class Ade20kSource:
    """Reader of the ADE20K SceneParsing layout described in the module docstring.

    Attributes:
        root: ``ADEChallengeData2016/`` or the folder holding it.
        label_map: the 150 classes (0 ignored), or 151 names with "other" first (0 kept).
        pred_dir: folder of unlabelled images under ``root`` (split ``pred``) when it exists.
    """

    root: Path
    label_map: LabelMap
    pred_dir: str = "pred"
    lookup: LabelLookup = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        first = 0 if len(self.label_map.names) == _NUM + 1 else 1  # "other" kept as class 0, or ignored
        self.label_map = complete_label_map(
            self.label_map,
            dataset="ADE20K SceneParsing (0 = other, ignored)" if first else "ADE20K SceneParsing with 'other'",
            source_ids=tuple(range(first, _NUM + 1)),
            colors=colormap(_NUM + 1)[first:],
        )
        self.lookup = LabelLookup(
            dataset="ADE20K SceneParsing values",
            source_ids=self.label_map.source_ids,
            known=tuple(range(_NUM + 1)),
            ignore_label=self.label_map.ignore_label,
        )

    @property
    def ade_dir(self) -> Path:
        """The ``ADEChallengeData2016`` folder.

        Raises:
            DatasetError: neither ``root`` nor ``root/ADEChallengeData2016`` holds ``images/``.
        """
        for folder in (self.root, self.root / _FOLDER):
            if (folder / "images").is_dir() and (folder / "annotations").is_dir():
                return folder
        raise DatasetError(
            f"images/ and annotations/ not found in {self.root} nor in {self.root / _FOLDER}: is --source the "
            f"folder ADEChallengeData2016.zip was extracted into, or its {_FOLDER} folder?"
        )

    def splits(self) -> list[str]:
        ade = self.ade_dir
        found = [s for s, folder in _SPLITS.items() if (ade / "images" / folder).is_dir()]
        if not found:
            raise DatasetError(f"{ade / 'images'} holds neither training/ nor validation/")
        if folder_items(self.root / self.pred_dir):
            found.append("pred")
        return found

    def is_labelled(self, split: str) -> bool:
        return split in _SPLITS

    def items(self, split: str) -> list[SourceItem]:
        if split == "pred":
            return folder_items(self.root / self.pred_dir)
        if split not in _SPLITS:
            raise DatasetError(f"ADE20K has no split {split!r}; it has: {', '.join(_SPLITS)}, pred")
        ade = self.ade_dir
        images = ade / "images" / _SPLITS[split]
        labels = ade / "annotations" / _SPLITS[split]
        if not images.is_dir():
            raise DatasetError(f"{images} not found: the {split!r} images are missing")
        if not labels.is_dir():
            raise DatasetError(f"{labels} not found: the {split!r} annotations are missing")
        return [
            SourceItem(key=p.stem, files={"image": p, "label": labels / f"{p.stem}.png"})
            for p in sorted(images.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        ]

    def encode(self, item: SourceItem, split: str) -> bytes:
        image = item.files["image"]
        return encode_pair(
            image_path=image,
            label_path=item.files.get("label"),
            filename=f"{split}/{image.name}",
            label_map=self.label_map,
            lookup=self.lookup,
        )
