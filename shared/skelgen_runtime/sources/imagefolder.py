"""The folder-per-class classification layout, the way users collect classification data.

::

    ROOT/data/SPLIT/<class name>/*.{jpg,jpeg,png}     labelled splits (train, val, ...)
    ROOT/data/pred/*.{jpg,jpeg,png}                   unlabelled images (no class folders)

Class ids follow the label map's order; every class folder must name a class of the label map
and hold at least one image, so that a typo in a folder name is an error, not a silent new class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.images_masks import IMAGE_SUFFIXES, read_image

__all__ = ["ImageFolderSource"]


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


@dataclass
class ImageFolderSource:
    """Reader of the layout in the module docstring."""

    root: Path
    label_map: LabelMap
    image_dir: str = "data"
    unlabelled_splits: tuple[str, ...] = ("pred",)

    @staticmethod
    def discover_classes(root: Path, split: str = "train") -> list[str]:
        """Class names of the ``ROOT/data/SPLIT/<class>/`` folders, sorted (when no class list is given)."""
        folder = root / "data" / split
        if not folder.is_dir():
            raise DatasetError(f"no folder {folder}; expected {folder}/<class name>/*.jpg")
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def splits(self) -> list[str]:
        base = self.root / self.image_dir
        if not base.is_dir():
            raise DatasetError(f"no image folder at {base}; expected {base}/<split>/<class name>/*.jpg")
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def is_labelled(self, split: str) -> bool:
        return split not in self.unlabelled_splits

    def items(self, split: str) -> list[SourceItem]:
        folder = self.root / self.image_dir / split
        if not folder.is_dir():
            raise DatasetError(f"split {split!r} has no folder {folder}")
        if not self.is_labelled(split):
            return [SourceItem(key=p.name, files={"image": p}) for p in _images(folder)]
        names = set(self.label_map.names)
        items = []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if class_dir.name not in names:
                raise DatasetError(
                    f"class folder {class_dir} is not a class of the label map ({', '.join(self.label_map.names)}); "
                    "rename it or add the class to CLASSES in the build script"
                )
            images = _images(class_dir)
            if not images:
                raise DatasetError(f"class folder {class_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            classes = frozenset([class_dir.name])
            items += [SourceItem(key=f"{class_dir.name}/{p.name}", files={"image": p}, classes=classes) for p in images]
        loose = _images(folder)
        if loose:
            raise DatasetError(f"{loose[0]} lies directly in {folder}; labelled images go in {folder}/<class name>/")
        return items

    def encode(self, item: SourceItem, split: str) -> bytes:
        from skelgen_runtime.schemas.classification import encode_example

        image_bytes, fmt, (width, height) = read_image(item.files["image"])
        label = text = None
        if self.is_labelled(split):
            text = item.key.split("/", 1)[0]
            label = self.label_map.names.index(text) + self.label_map.first_id
        return encode_example(
            image_bytes=image_bytes,
            image_format=fmt,
            filename=f"{split}/{item.key}",
            height=height,
            width=width,
            label=label,
            text=text,
        ).SerializeToString()
