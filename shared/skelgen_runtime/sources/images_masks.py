"""The plain segmentation layout: images and single-channel label PNGs with the same stem.

::

    ROOT/data/SPLIT/<stem>.{jpg,jpeg,png}
    ROOT/annotations/SPLIT/<stem>.png        (class ids; 255 = ignore; absent for ``pred``)

Label PNGs are read with Pillow so palette ("P" mode) PNGs keep their indices (FACTS: decoding
them with TensorFlow would give luminance instead).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.sources.base import LabelMap, SourceItem

__all__ = ["ImagesMasksSource", "IMAGE_SUFFIXES", "read_image", "read_label", "iter_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


def read_image(path: Path) -> tuple[bytes, str, tuple[int, int]]:
    """Read and fully decode an image file to validate it.

    Returns:
        ``(file_bytes, format, (width, height))``; files that are neither JPEG nor PNG are
        re-encoded as PNG.

    Raises:
        BadExampleError: unreadable, truncated or not an image.
    """
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes every pixel: catches truncated files that open() accepts
            fmt = _FORMATS.get(img.format or "")
            size = img.size
            if fmt is None or img.mode not in ("RGB", "L"):
                buf = io.BytesIO()
                img.convert("RGB").save(buf, format="PNG")
                data, fmt = buf.getvalue(), "png"
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise BadExampleError(str(path), f"cannot read image ({err})") from None
    return data, fmt, size


def iter_images(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(stem, RGB uint8 array (H, W, 3))`` for an image file or each image in a folder, sorted.

    Raises:
        DatasetError: ``path`` does not exist or a folder holds no images.
        BadExampleError: an image cannot be decoded.
    """
    if not path.exists():
        raise DatasetError(f"input {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    for f in files:
        data, _, _ = read_image(f)
        with Image.open(io.BytesIO(data)) as img:
            yield f.stem, np.array(img.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    """Read a label PNG as a 2-D uint8 array of class ids (palette indices are kept)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise BadExampleError(
                    str(path), f"label image has mode {img.mode}; expected one channel of class ids (L or P)"
                )
            return np.array(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise BadExampleError(str(path), f"cannot read label image ({err})") from None


def validate_label(label: np.ndarray, path: Path, num_classes: int, ignore_label: int) -> None:
    """Raise :class:`BadExampleError` if ``label`` holds ids outside ``[0, num_classes)`` other than the ignore label."""
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        raise BadExampleError(
            str(path),
            f"label ids {bad.tolist()} are outside 0..{num_classes - 1} (and not the ignore label {ignore_label})",
        )


def encode_label_png(label: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(label, mode="L").save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class ImagesMasksSource:
    """Reader of the images + masks layout described in the module docstring."""

    root: Path
    label_map: LabelMap
    image_dir: str = "data"
    label_dir: str = "annotations"
    unlabelled_splits: tuple[str, ...] = ("pred",)

    def splits(self) -> list[str]:
        base = self.root / self.image_dir
        if not base.is_dir():
            raise DatasetError(f"no image folder at {base}; expected {base}/<split>/*.jpg")
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def is_labelled(self, split: str) -> bool:
        return split not in self.unlabelled_splits

    def items(self, split: str) -> list[SourceItem]:
        folder = self.root / self.image_dir / split
        if not folder.is_dir():
            raise DatasetError(f"split {split!r} has no folder {folder}")
        items = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            files = {"image": path}
            if self.is_labelled(split):
                files["label"] = self.root / self.label_dir / split / f"{path.stem}.png"
            items.append(SourceItem(key=path.stem, files=files))
        return items

    def encode(self, item: SourceItem, split: str) -> bytes:
        from skelgen_runtime.schemas.segmentation import encode_example

        image_path = item.files["image"]
        image_bytes, fmt, (width, height) = read_image(image_path)
        label_png = None
        if "label" in item.files:
            label_path = item.files["label"]
            if not label_path.is_file():
                raise BadExampleError(str(image_path), f"has no label file {label_path}")
            label = read_label(label_path)
            if label.shape != (height, width):
                raise BadExampleError(
                    str(label_path),
                    f"label is {label.shape[1]}x{label.shape[0]} but its image {image_path.name} is {width}x{height}",
                )
            validate_label(label, label_path, self.label_map.num_classes, self.label_map.ignore_label)
            label_png = encode_label_png(label)
        example = encode_example(
            image_bytes=image_bytes,
            image_format=fmt,
            filename=f"{split}/{image_path.name}",
            height=height,
            width=width,
            label_png=label_png,
        )
        return example.SerializeToString()
