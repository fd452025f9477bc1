"""The built-in ``shapes`` dataset: circles, squares and triangles on textured backgrounds.

Images are written as JPEG files and labels as single-channel PNGs of class ids, in the same
layout a user's own images + masks dataset would have::

    ROOT/data/{train,val,pred}/NNNNN.jpg
    ROOT/annotations/{train,val}/NNNNN.png     (uint8 class ids: 0 background, 1 circle, ...)

Everything is drawn from one seeded generator per split, so the dataset is identical on every
machine. Shapes are drawn without anti-aliasing so that image and label agree pixel for pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASSES", "DEFAULT_COUNTS", "ShapeObject", "draw_scene", "write_shapes"]

CLASSES = ("background", "circle", "square", "triangle")
DEFAULT_COUNTS = {"train": 800, "val": 200, "pred": 16}
_SPLIT_SEEDS = {"train": 0, "val": 1, "pred": 2}


@dataclass(frozen=True)
class ShapeObject:
    """One drawn shape: class id (1-based, 0 is background) and box ``(xmin, ymin, xmax, ymax)`` in pixels."""

    label: int
    box: tuple[int, int, int, int]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field plus stripes and pixel noise, ``(size, size, 3)`` uint8."""
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 20)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    field += stripes[..., None] * rng.uniform(5, 25)
    field += rng.normal(0, 6, size=field.shape)
    return np.clip(field, 0, 255).astype(np.uint8)


def _shape_colour(rng: np.random.Generator, background_mean: np.ndarray) -> tuple[int, int, int]:
    """A colour at least 90 (L2 in RGB) away from the background's mean so shapes stay visible."""
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.linalg.norm(colour - background_mean) > 90:
            break
    return tuple(int(c) for c in colour)


def _polygon(label: int, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]] | None:
    if label == 2:  # square
        corners = [rot + math.pi / 4 + k * math.pi / 2 for k in range(4)]
    elif label == 3:  # triangle
        corners = [rot + k * 2 * math.pi / 3 for k in range(3)]
    else:
        return None
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in corners]


def draw_scene(
    rng: np.random.Generator, size: int, num_objects: tuple[int, int] = (1, 4)
) -> tuple[Image.Image, Image.Image, list[ShapeObject]]:
    """Draw one scene.

    Returns:
        ``(image, label, objects)``: an RGB image ``(size, size)``, an ``L`` image of class ids of
        the same size, and the drawn objects in drawing order (later ones occlude earlier ones).
    """
    pixels = _background(rng, size)
    image = Image.fromarray(pixels)
    label = Image.new("L", (size, size), 0)
    draw_image, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label)
    mean = pixels.reshape(-1, 3).mean(axis=0)
    objects = []
    for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1))):
        cls = int(rng.integers(1, len(CLASSES)))
        r = float(rng.uniform(0.1, 0.22) * size)
        cx, cy = (float(v) for v in rng.uniform(r, size - r, size=2))
        colour = _shape_colour(rng, mean)
        poly = _polygon(cls, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        if poly is None:
            bbox = (cx - r, cy - r, cx + r, cy + r)
            draw_image.ellipse(bbox, fill=colour)
            draw_label.ellipse(bbox, fill=cls)
        else:
            draw_image.polygon(poly, fill=colour)
            draw_label.polygon(poly, fill=cls)
            xs, ys = zip(*poly)
            bbox = (min(xs), min(ys), max(xs), max(ys))
        box = tuple(int(round(min(max(v, 0), size))) for v in bbox)
        objects.append(ShapeObject(cls, box))  # type: ignore[arg-type]
    return image, label, objects


def write_shapes(
    root: Path,
    *,
    task: str = "segmentation",
    counts: dict[str, int] | None = None,
    size: int = 128,
    seed: int = 0,
) -> dict[str, int]:
    """Write the shapes dataset under ``root`` (see the module docstring for the layout).

    Args:
        root: the dataset folder, e.g. ``PROJECT/datasets/shapes``.
        task: which labels to write (only ``segmentation`` so far).
        counts: images per split; defaults to :data:`DEFAULT_COUNTS`. The ``pred`` split gets no labels.
        size: side of the square images in pixels.
        seed: base seed; each split draws from its own generator derived from it.

    Returns:
        The number of images written per split.
    """
    if task != "segmentation":
        raise ValueError(f"no shapes layout for task {task!r}")
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    for split, n in counts.items():
        rng = np.random.default_rng([seed, _SPLIT_SEEDS.get(split, len(_SPLIT_SEEDS))])
        image_dir = root / "data" / split
        label_dir = root / "annotations" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        if split != "pred":
            label_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, label, _ = draw_scene(rng, size)
            image.save(image_dir / f"{split}_{i:05d}.jpg", quality=92)
            if split != "pred":
                label.save(label_dir / f"{split}_{i:05d}.png")
    return counts
