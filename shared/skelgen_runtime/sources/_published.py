"""Helpers shared by the readers of published segmentation datasets (VOC, Cityscapes, ADE20K).

They build on :mod:`skelgen_runtime.sources.images_masks` (``read_image``, ``label_png``) and add what published layouts need: mapping the
dataset's own label values to contiguous training ids with one 256-entry lookup table, filling
in the dataset's source ids and colours when the build script's label map leaves them out, and
an optional folder of unlabelled images.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.labels import LabelLookup, LabelMap
from skelgen_runtime.sources.base import SourceItem
from skelgen_runtime.sources.images_masks import IMAGE_SUFFIXES, label_png, read_image

__all__ = ["LabelLookup", "colormap", "complete_label_map", "encode_pair", "folder_items"]


def colormap(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map: colour ``i`` interleaves the bits of ``i`` into R, G and B.

    ``colormap(256)[1] == (128, 0, 0)``; ``colormap(256)[255] == (224, 224, 192)`` (VOC borders).
    """
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def complete_label_map(
    label_map: LabelMap,
    *,
    dataset: str,
    source_ids: tuple[int, ...],
    colors: tuple[tuple[int, int, int], ...],
) -> LabelMap:
    """Fill in the dataset's source ids and colours where ``label_map`` leaves them out.

    The generated build scripts pass ``LabelMap(CLASSES)``: names only. A label map with its own
    source ids (or colours) keeps them, so a user can remap classes in ``make_source()``.

    Raises:
        DatasetError: the label map has no source ids and its class count differs from the dataset's.
    """
    names = label_map.names
    if not label_map.source_ids and len(names) != len(colors):
        raise DatasetError(
            f"{dataset} has {len(colors)} classes but the label map (CLASSES in the build script) lists "
            f"{len(names)}: restore the {len(colors)} names, or pass a LabelMap with source_ids to the reader"
        )
    if label_map.source_ids and len(label_map.source_ids) != len(names):
        raise DatasetError(f"the label map has {len(names)} names but {len(label_map.source_ids)} source ids")
    changes: dict = {}
    if not label_map.source_ids and source_ids:
        changes["source_ids"] = tuple(source_ids)
    default_colors = LabelMap(names, first_id=label_map.first_id).colors
    if label_map.colors == default_colors and len(colors) == len(names):
        changes["colors"] = tuple(tuple(c) for c in colors)
    return replace(label_map, **changes) if changes else label_map


def folder_items(folder: Path) -> list[SourceItem]:
    """Images directly in ``folder`` (hidden files skipped) as unlabelled items keyed by stem, sorted; [] if absent."""
    if not folder.is_dir():
        return []
    return [
        SourceItem(key=p.stem, files={"image": p})
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]


def encode_pair(
    *,
    image_path: Path,
    label_path: Path | None,
    filename: str,
    label_map: LabelMap,
    lookup: LabelLookup | None = None,
    listed_in: str = "",
) -> bytes:
    """Read, check and serialise one image (and its label) as a segmentation ``tf.train.Example``.

    Args:
        image_path: the image file.
        label_path: its label PNG, or ``None`` for an unlabelled example.
        filename: the ``image/filename`` to record, e.g. ``"val/2007_000033.jpg"``.
        label_map: training ids the label must hold (after ``lookup``).
        lookup: maps the file's label values to training ids; ``None`` when they already are.
        listed_in: where the example was listed (for messages about missing files).

    Raises:
        BadExampleError: a file is missing or unreadable, the sizes differ, or a label is out of range.
    """
    from skelgen_runtime.schemas.segmentation import encode_example

    where = f" (listed in {listed_in})" if listed_in else ""
    if not image_path.is_file():
        raise BadExampleError(str(image_path), f"image file is missing{where}")
    image_bytes, fmt, (width, height) = read_image(image_path)
    png = None
    if label_path is not None:
        if not label_path.is_file():
            raise BadExampleError(str(label_path), f"label file of image {image_path.name} is missing{where}")
        png = label_png(
            label_path, image_name=image_path.name, size=(width, height), label_map=label_map, lookup=lookup
        )
    example = encode_example(
        image_bytes=image_bytes,
        image_format=fmt,
        filename=filename,
        height=height,
        width=width,
        label_png=png,
    )
    return example.SerializeToString()
