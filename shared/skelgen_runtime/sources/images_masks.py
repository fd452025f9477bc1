"""The plain segmentation layout: images and single-channel label PNGs with the same stem.

::

    ROOT/data/SPLIT/<stem>.{jpg,jpeg,png}
    ROOT/annotations/SPLIT/<stem>.png        (class ids; 255 = ignore; absent for ``pred``)

Label PNGs are read with Pillow so palette ("P" mode) PNGs keep their indices (``tf.io.decode_png``
expands the palette to colours, and a one-channel decode gives their luminance instead).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from skelgen_runtime.errors import BadExampleError, DatasetError, read_or_skip
from skelgen_runtime.sources.base import LabelMap, SourceItem

if TYPE_CHECKING:
    from skelgen_runtime.labels import LabelLookup

__all__ = [
    "ImagesMasksSource",
    "IMAGE_SUFFIXES",
    "read_image",
    "read_label",
    "read_label_file",
    "validate_label",
    "encode_label_png",
    "label_png",
    "iter_images",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


def read_image(path: Path) -> tuple[bytes, str, tuple[int, int]]:
    """Read an image file and decode it to validate it.

    A JPEG that is stored as it is (RGB or greyscale) is decoded at 1/8 scale (libjpeg's DCT
    scaling, Pillow's ``draft``): libjpeg still parses its tables and every entropy-coded byte, so
    a truncated or corrupt file fails as a full decode would, but the inverse DCT, upsampling and
    colour conversion run on 1/64 of the pixels. Other images are decoded in full.

    Returns:
        ``(file_bytes, format, (width, height))``; files that are neither JPEG nor PNG, or not
        RGB or greyscale, are re-encoded as RGB PNG.

    Raises:
        BadExampleError: unreadable, truncated or not an image.
    """
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            fmt = _FORMATS.get(img.format or "")
            size = img.size  # before draft(), which shrinks it
            keep = fmt is not None and img.mode in ("RGB", "L")
            if keep and fmt == "jpeg":
                img.draft(img.mode, (1, 1))  # the smallest scale libjpeg decodes to: 1/8
            img.load()  # decodes every pixel: catches truncated files that open() accepts
            if not keep:
                buf = io.BytesIO()
                img.convert("RGB").save(buf, format="PNG")  # write: memory
                data, fmt = buf.getvalue(), "png"
    except UnidentifiedImageError:  # Pillow's message names its in-memory buffer, not the file
        raise BadExampleError(str(path), "not an image Pillow can read (JPEG, PNG, BMP, TIFF, ...)") from None
    except (OSError, SyntaxError) as err:
        raise BadExampleError(str(path), f"cannot read image ({err})") from None
    assert fmt is not None  # kept as jpeg/png, or re-encoded as png
    return data, fmt, size


def iter_images(
    path: Path, *, on_bad: Callable[[BadExampleError], None] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(stem, RGB uint8 array (H, W, 3))`` for an image file or each image in a folder, sorted.

    Args:
        on_bad: called with the error of each image that cannot be decoded, which is then left out
            (default: the error is raised).

    Raises:
        DatasetError: ``path`` does not exist or a folder holds no images.
        BadExampleError: an image cannot be decoded (without ``on_bad``).
    """
    if not path.exists():
        raise DatasetError(f"input {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    for f in files:
        read = read_or_skip(lambda: read_image(f), on_bad)
        if read is None:
            continue
        with Image.open(io.BytesIO(read[0])) as img:
            yield f.stem, np.array(img.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    """Read a label PNG as a 2-D uint8 array of class ids (palette indices are kept)."""
    return read_label_file(path)[0]


def read_label_file(path: Path) -> tuple[np.ndarray, bytes | None]:
    """Read a label image: its class ids, and its bytes when a record can hold them as they are.

    Returns:
        ``(ids, png)``: ``ids`` a 2-D uint8 array (palette indices are kept); ``png`` the file's
        bytes if it is an 8-bit greyscale PNG without transparency, which ``tf.io.decode_png``
        reads as exactly ``ids``, else ``None`` (the ids must be re-encoded).

    Raises:
        BadExampleError: unreadable, or not one channel of class ids (names the file).
    """
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("L", "P"):
                raise BadExampleError(
                    str(path), f"label image has mode {img.mode}; expected one channel of class ids (L or P)"
                )
            ids = np.array(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise BadExampleError(str(path), f"cannot read label image ({err})") from None
    return ids, data if _is_grey8_png(data) else None


def _is_grey8_png(data: bytes) -> bool:
    """An 8-bit greyscale PNG (IHDR bit depth 8, colour type 0) without a ``tRNS`` chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or data[24:26] != b"\x08\x00":
        return False
    return data.find(b"tRNS", 33, max(data.find(b"IDAT"), 33)) < 0


def validate_label(label: np.ndarray, path: Path, num_classes: int, ignore_label: int) -> None:
    """Raise :class:`BadExampleError` if ``label`` holds ids outside ``[0, num_classes)`` other than the ignore label.

    One ``max`` decides the usual case; only labels holding the ignore label (or bad ids) pay
    for an element-wise test, and only bad ones for listing their values.
    """
    if label.size == 0 or int(label.max()) < num_classes:
        return
    bad = label >= num_classes
    bad &= label != ignore_label
    if bad.any():
        values = np.unique(label[bad])
        raise BadExampleError(
            str(path),
            f"label ids {values.tolist()} are outside 0..{num_classes - 1} (and not the ignore label {ignore_label})",
        )


def encode_label_png(label: np.ndarray) -> bytes:
    """A single-channel 8-bit PNG of ``label`` ``(H, W)`` uint8."""
    buf = io.BytesIO()
    Image.fromarray(label, mode="L").save(buf, format="PNG")  # write: memory
    return buf.getvalue()


def label_png(
    path: Path,
    *,
    image_name: str,
    size: tuple[int, int],
    label_map: LabelMap,
    lookup: "LabelLookup | None" = None,
) -> bytes:
    """Read, check and return the label PNG a segmentation record holds for the image ``image_name``.

    The file's bytes are kept when they already are single-channel 8-bit class ids; otherwise
    (palette PNGs, ids changed by ``lookup``) the ids are re-encoded.

    Args:
        path: the label file (must exist).
        image_name: its image's file name, for messages.
        size: the image's ``(width, height)``; the label must have it.
        label_map: the training ids the label must hold (after ``lookup``).
        lookup: maps the file's values to training ids; ``None`` when they already are.

    Raises:
        BadExampleError: unreadable, another size than its image, or ids out of range (names ``path``).
    """
    ids, png = read_label_file(path)
    width, height = size
    if ids.shape != (height, width):
        raise BadExampleError(
            str(path), f"label is {ids.shape[1]}x{ids.shape[0]} but its image {image_name} is {width}x{height}"
        )
    if lookup is not None:
        mapped = lookup.apply(ids, path)
        if png is not None and not np.array_equal(mapped, ids):
            png = None
        ids = mapped
    validate_label(ids, path, label_map.num_classes, label_map.ignore_label)
    return png if png is not None else encode_label_png(ids)


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
        png = None
        if "label" in item.files:
            label_path = item.files["label"]
            if not label_path.is_file():
                raise BadExampleError(str(image_path), f"has no label file {label_path}")
            png = label_png(label_path, image_name=image_path.name, size=(width, height), label_map=self.label_map)
        example = encode_example(
            image_bytes=image_bytes,
            image_format=fmt,
            filename=f"{split}/{image_path.name}",
            height=height,
            width=width,
            label_png=png,
        )
        return example.SerializeToString()
