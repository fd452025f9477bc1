"""Pictures of volume records (BraTS): a montage of axial slices per modality with the labels coloured.

A montage has one row per modality and, for labelled cases, a last row with the labels alone; its
columns are ``slices`` axial slices (``volume[d]``, drawn as stored) evenly spaced across the tumour
(across the brain when there is no tumour or no label). Each modality is windowed to its 1st..99th
percentile over the brain; label colours are the label map's (BraTS: necrotic core red, edema green,
enhancing tumour yellow), blended over the grey slices. NumPy + Pillow only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from skelgen_runtime.viz import colorize, grid, overlay

__all__ = ["montage", "render_volumes"]

_MARGIN = 48  # room for the row names


def _window(channel: np.ndarray) -> np.ndarray:
    """float ``(D, H, W)`` -> uint8, windowed to the 1st..99th percentile of the non-zero voxels."""
    brain = channel[channel != 0]
    if brain.size == 0:
        return np.zeros(channel.shape, np.uint8)
    low, high = np.percentile(brain, [1, 99])
    scaled = (channel - low) / max(high - low, 1e-6) * 255.0
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _pick(image: np.ndarray, label: np.ndarray | None, slices: int) -> np.ndarray:
    if label is not None and (label > 0).any():
        mask = (label > 0).any(axis=(1, 2))
    else:
        mask = (image != 0).any(axis=(1, 2, 3))
    index = np.flatnonzero(mask)
    if index.size == 0:
        index = np.arange(image.shape[0])
    return np.unique(np.round(np.linspace(index[0], index[-1], min(slices, index.size))).astype(int))


def montage(
    image: np.ndarray,
    label: np.ndarray | None,
    modalities: Sequence[str],
    colors: Sequence[Sequence[int]],
    *,
    slices: int = 6,
    ignore_label: int = 255,
) -> np.ndarray:
    """One case as an RGB montage.

    Args:
        image: ``(D, H, W, C)`` the stored values.
        label: ``(D, H, W)`` training ids, or ``None``.
        modalities: the ``C`` channel names (row titles).
        colors: colour of each class id.

    Returns:
        uint8 ``(rows * H, _MARGIN + columns * W, 3)``.
    """
    picks = _pick(image, label, slices)
    rows, names = [], []
    for c, name in enumerate(modalities):
        grey = _window(image[..., c])
        tiles = []
        for d in picks:
            rgb = np.repeat(grey[d][..., None], 3, axis=-1)
            tiles.append(
                overlay(rgb, label[d], colors, alpha=0.4, ignore_label=ignore_label) if label is not None else rgb
            )
        rows.append(np.concatenate(tiles, axis=1))
        names.append(name)
    if label is not None:
        rows.append(np.concatenate([colorize(label[d], colors, ignore_label) for d in picks], axis=1))
        names.append("labels")
    height = image.shape[1]
    body = np.concatenate(rows, axis=0)
    canvas = Image.fromarray(np.concatenate([np.zeros((body.shape[0], _MARGIN, 3), np.uint8), body], axis=1))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(names):
        draw.text((2, r * height + 2), name, fill=(255, 255, 255))
    return np.array(canvas)


def render_volumes(info, split: str, num: int, out: Path) -> list[Path]:
    """Write ``CASE_ID.png`` montages of the first ``num`` records of ``split`` and a ``grid.png``."""
    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.volume import SCHEMA

    info.check_schema(SCHEMA.name, SCHEMA.readable_versions)
    out.mkdir(parents=True, exist_ok=True)
    written, tiles = [], []
    for example in read_split(info, SCHEMA, split, training=False).take(num):
        label = example["label"].numpy()[..., 0] if "label" in example else None
        picture = montage(
            example["image"].numpy(),
            label,
            example["modalities"].numpy().decode().split(","),
            info.label_map.colors,
            ignore_label=info.label_map.ignore_label,
        )
        path = out / f"{example['case_id'].numpy().decode()}.png"
        Image.fromarray(picture).save(path)  # write: picture
        written.append(path)
        tiles.append(picture)
    if not tiles:
        raise UserInputError(f"split {split!r} of {info.folder} holds no records")
    Image.fromarray(grid(tiles, columns=1)).save(out / "grid.png")  # write: picture
    written.append(out / "grid.png")
    return written
