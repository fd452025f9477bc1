"""Pictures of boxes: rectangles with class names drawn on an image. NumPy + Pillow only."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["draw_boxes", "boxes_to_pixels"]


def boxes_to_pixels(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised ``(N, 4)`` ``[ymin, xmin, ymax, xmax]`` -> ``(N, 4)`` ``[xmin, ymin, xmax, ymax]`` pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 1] * width, boxes[:, 0] * height, boxes[:, 3] * width, boxes[:, 2] * height], axis=-1)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    captions: Sequence[str],
    colors: Sequence[Sequence[int]],
    width: int | None = None,
) -> np.ndarray:
    """Draw boxes with captions on a copy of ``image``.

    Args:
        image: RGB uint8 ``(H, W, 3)``.
        boxes: ``(N, 4)`` ``[xmin, ymin, xmax, ymax]`` in pixels (see :func:`boxes_to_pixels`).
        captions: one text per box, drawn above its top-left corner (inside the box at the top edge).
        colors: one RGB colour per box.
        width: line width; default grows with the image (1 px per 200 px of the longer side, at least 1).

    Returns:
        RGB uint8 ``(H, W, 3)``.
    """
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    line = width or max(1, max(picture.size) // 200)
    for (x0, y0, x1, y1), caption, colour in zip(np.asarray(boxes).reshape(-1, 4), captions, colors):
        colour = tuple(int(c) for c in colour)
        draw.rectangle([float(x0), float(y0), float(x1), float(y1)], outline=colour, width=line)
        if caption:
            left, top, right, bottom = draw.textbbox((0, 0), caption)
            tx, ty = float(x0), float(y0) - (bottom - top) - 2
            if ty < 0:  # no room above the box: write inside it
                ty = float(y0) + line
            draw.rectangle([tx, ty, tx + (right - left) + 2, ty + (bottom - top) + 2], fill=colour)
            text = (0, 0, 0) if sum(colour) > 382 else (255, 255, 255)
            draw.text((tx + 1, ty + 1 - top), caption, fill=text)
    return np.asarray(picture)
