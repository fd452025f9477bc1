"""MS COCO as published (2014/2017 releases), read in place.

::

    ROOT/train2017/*.jpg  ROOT/val2017/*.jpg  ROOT/test2017/*.jpg (unlabelled)
    ROOT/annotations/instances_train2017.json  ROOT/annotations/instances_val2017.json
    ROOT/pred/*.jpg                             optional unlabelled images

The 2014 names (``train2014`` ...) are found as well. COCO's 80 category ids are not contiguous
(1..90): classes get the contiguous ids 1..80 in category-id order and the label map keeps the
original ids as ``source_ids``, so predictions are written in COCO's own ids. Crowd annotations
(``iscrowd``) are kept with their flag. The box policy and errors are those of
:class:`~skelgen_runtime.sources.coco.CocoSource`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.sources._published import folder_items
from skelgen_runtime.sources.base import SourceItem
from skelgen_runtime.sources.coco import CocoSource

__all__ = ["Coco2017Source"]

_SPLITS = ("train", "val", "test")


@dataclass
class Coco2017Source(CocoSource):
    """Reader of the published COCO layout; splits are called ``train``, ``val``, ``test``, ``pred``."""

    image_dir: str = "."
    unlabelled_splits: tuple[str, ...] = ("test", "pred")

    def _folder(self, split: str) -> Path:
        for year in ("2017", "2014"):
            if (self.root / f"{split}{year}").is_dir():
                return self.root / f"{split}{year}"
        raise DatasetError(
            f"no {split}2017/ (or {split}2014/) folder in {self.root}; is --source the COCO root "
            "holding train2017/, val2017/ and annotations/?"
        )

    @staticmethod
    def discover_classes(root: Path) -> list[str]:
        """The category names of ``instances_val2017.json`` (or train) in category-id order."""
        for name in (
            "instances_val2017.json",
            "instances_train2017.json",
            "instances_val2014.json",
            "instances_train2014.json",
        ):
            path = root / "annotations" / name
            if path.is_file():
                try:
                    categories = json.loads(path.read_text())["categories"]
                    return [str(c["name"]) for c in sorted(categories, key=lambda c: int(c["id"]))]
                except (OSError, ValueError, KeyError, TypeError) as err:
                    raise DatasetError(f"cannot read the categories of {path} ({err})") from None
        raise DatasetError(f"no annotations/instances_val2017.json or instances_train2017.json under {root}")

    def splits(self) -> list[str]:
        found = [s for s in _SPLITS if any((self.root / f"{s}{y}").is_dir() for y in ("2017", "2014"))]
        if not any(s in found for s in ("train", "val")):
            raise DatasetError(f"neither train2017/ nor val2017/ in {self.root}; is --source the COCO root?")
        if folder_items(self.root / "pred"):
            found.append("pred")
        return found

    def annotation_file(self, split: str) -> Path:
        return self.root / self.annotation_dir / f"instances_{self._folder(split).name}.json"

    def items(self, split: str) -> list[SourceItem]:
        if split == "pred":
            return folder_items(self.root / "pred")
        folder = self._folder(split)
        if not self.is_labelled(split):
            return folder_items(folder)
        return self._labelled_items(split, folder)
