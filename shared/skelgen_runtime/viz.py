"""Pictures of labels: colourised masks, overlays, palette PNGs, grids. NumPy + Pillow only."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

__all__ = ["colorize", "overlay", "save_label_png", "grid"]

IGNORE_COLOR = (255, 255, 255)


def _lut(colors: Sequence[Sequence[int]], ignore_label: int = 255) -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    lut[ignore_label] = IGNORE_COLOR
    return lut


def colorize(label: np.ndarray, colors: Sequence[Sequence[int]], ignore_label: int = 255) -> np.ndarray:
    """Class ids ``(H, W)`` -> RGB ``(H, W, 3)`` uint8; the ignore label is drawn white."""
    return _lut(colors, ignore_label)[np.asarray(label, dtype=np.uint8).squeeze()]


def overlay(
    image: np.ndarray, label: np.ndarray, colors: Sequence[Sequence[int]], alpha: float = 0.5, ignore_label: int = 255
) -> np.ndarray:
    """Blend the colourised ``label`` over RGB ``image`` (same size); background (id 0) stays clear."""
    label = np.asarray(label, dtype=np.uint8).squeeze()
    image = np.asarray(image, dtype=np.float32)
    coloured = colorize(label, colors, ignore_label).astype(np.float32)
    mask = (label != 0)[..., None]
    out = np.where(mask, (1 - alpha) * image + alpha * coloured, image)
    return np.clip(out, 0, 255).astype(np.uint8)


def save_label_png(path: Path, label: np.ndarray, colors: Sequence[Sequence[int]], ignore_label: int = 255) -> None:
    """Save class ids as a palette PNG: pixel values are the ids, viewers show the class colours."""
    img = Image.fromarray(np.asarray(label, dtype=np.uint8).squeeze(), mode="P")
    img.putpalette(_lut(colors, ignore_label).reshape(-1).tolist())
    img.save(path)  # write: picture


def grid(images: Sequence[np.ndarray], columns: int = 4, pad: int = 2) -> np.ndarray:
    """Tile RGB images (any sizes) into one RGB array, row by row, on a white background."""
    if not images:
        raise ValueError("no images to tile")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    cell_h = max(i.shape[0] for i in images) + pad
    cell_w = max(i.shape[1] for i in images) + pad
    out = np.full((rows * cell_h + pad, columns * cell_w + pad, 3), 255, dtype=np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        y, x = pad + r * cell_h, pad + c * cell_w
        out[y : y + img.shape[0], x : x + img.shape[1]] = img
    return out
