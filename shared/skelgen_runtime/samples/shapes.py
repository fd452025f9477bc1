"""The built-in ``shapes`` dataset: circles, squares and triangles on textured backgrounds.

Images are written as JPEG files in the layout a user's own dataset of the task would have:

    segmentation    ROOT/data/{train,val,pred}/*.jpg, ROOT/annotations/{train,val}/*.png (class ids)
    classification  ROOT/data/{train,val}/<class>/*.jpg (one shape per image), ROOT/data/pred/*.jpg
    detection       ROOT/data/{train,val,pred}/*.jpg, ROOT/annotations/instances_{train,val}.json (COCO)

Everything is drawn from one seeded generator per split, so the dataset is identical on every
machine. Shapes are drawn without anti-aliasing so that image and label agree pixel for pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASSES", "DEFAULT_COUNTS", "ShapeObject", "draw_scene", "write_shapes"]

CLASSES = ("background", "circle", "square", "triangle")
DEFAULT_COUNTS = {"train": 800, "val": 200, "pred": 16}
#: classification sees one shape per image, so it needs more images to generalise
TASK_COUNTS = {"classification": {"train": 2000, "val": 400, "pred": 16}}
_SPLIT_SEEDS = {"train": 0, "val": 1, "pred": 2}


@dataclass(frozen=True)
class ShapeObject:
    """One drawn shape: class id (1-based, 0 is background) and box ``(xmin, ymin, xmax, ymax)`` in pixels."""

    label: int
    box: tuple[int, int, int, int]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field plus stripes and pixel noise, ``(size, size, 3)`` uint8."""
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
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
    return int(colour[0]), int(colour[1]), int(colour[2])


def _polygon(label: int, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]] | None:
    if label == 2:  # square
        corners = [rot + math.pi / 4 + k * math.pi / 2 for k in range(4)]
    elif label == 3:  # triangle
        corners = [rot + k * 2 * math.pi / 3 for k in range(3)]
    else:
        return None
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in corners]


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection of two ``(xmin, ymin, xmax, ymax)`` boxes over the area of the smaller one."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / max(smaller, 1)


def draw_scene(
    rng: np.random.Generator,
    size: int,
    num_objects: tuple[int, int] = (1, 4),
    radius: tuple[float, float] = (0.1, 0.22),
    max_overlap: float | None = None,
) -> tuple[Image.Image, Image.Image, list[ShapeObject]]:
    """Draw one scene of ``num_objects`` (inclusive range) shapes of ``radius`` (fraction of ``size``).

    ``max_overlap`` (detection): re-draw a shape's place until its box covers at most this fraction
    of the smaller of its box and each earlier one (so no shape hides another); a shape that finds
    no such place in 50 tries is left out. ``None`` places shapes anywhere (occlusion allowed).

    Returns:
        ``(image, label, objects)``: an RGB image ``(size, size)``, an ``L`` image of class ids of
        the same size, and the drawn objects in drawing order (later ones occlude earlier ones).
    """
    pixels = _background(rng, size)
    image = Image.fromarray(pixels)
    label = Image.new("L", (size, size), 0)
    draw_image, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label)
    mean = pixels.reshape(-1, 3).mean(axis=0)
    objects: list[ShapeObject] = []
    for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1))):
        cls = int(rng.integers(1, len(CLASSES)))
        for _attempt in range(1 if max_overlap is None else 50):  # one try keeps the random stream as it was
            r = float(rng.uniform(*radius) * size)
            cx, cy = (float(v) for v in rng.uniform(r, size - r, size=2))
            colour = _shape_colour(rng, mean)
            poly = _polygon(cls, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
            if poly is None:
                bbox = (cx - r, cy - r, cx + r, cy + r)
            else:
                xs, ys = zip(*poly)
                bbox = (min(xs), min(ys), max(xs), max(ys))
            box = tuple(int(round(min(max(v, 0), size))) for v in bbox)
            if max_overlap is None or all(_overlap(box, o.box) <= max_overlap for o in objects):
                break
        else:
            continue
        if poly is None:
            draw_image.ellipse(bbox, fill=colour)
            draw_label.ellipse(bbox, fill=cls)
        else:
            draw_image.polygon(poly, fill=colour)
            draw_label.polygon(poly, fill=cls)
        objects.append(ShapeObject(cls, box))  # type: ignore[arg-type]
    return image, label, objects


def _write_segmentation(
    root: Path, split: str, n: int, rng: np.random.Generator, size: int, tick: Callable[[], None]
) -> None:
    """``data/SPLIT/*.jpg`` and, for labelled splits, ``annotations/SPLIT/*.png`` of class ids."""
    image_dir, label_dir = root / "data" / split, root / "annotations" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    if split != "pred":
        label_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label, _ = draw_scene(rng, size)
        image.save(image_dir / f"{split}_{i:05d}.jpg", quality=92)  # write: sample data
        if split != "pred":
            label.save(label_dir / f"{split}_{i:05d}.png")  # write: sample data
        tick()


def _write_classification(
    root: Path, split: str, n: int, rng: np.random.Generator, size: int, tick: Callable[[], None]
) -> None:
    """One larger shape per image: ``data/SPLIT/<class>/*.jpg``; ``data/pred/*.jpg`` without classes."""
    for i in range(n):
        image, _, objects = draw_scene(rng, size, num_objects=(1, 1), radius=(0.18, 0.36))
        folder = root / "data" / split
        if split != "pred":
            folder = folder / CLASSES[objects[0].label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{split}_{i:05d}.jpg", quality=92)  # write: sample data
        tick()


def _write_detection(
    root: Path, split: str, n: int, rng: np.random.Generator, size: int, tick: Callable[[], None]
) -> None:
    """COCO layout: ``data/SPLIT/*.jpg`` and, for labelled splits, ``annotations/instances_SPLIT.json``.

    Category ids 1..3 are circle, square, triangle; image and annotation ids count from 1 (a
    ground-truth id of 0 never matches in pycocotools); ``bbox`` is ``[x, y, w, h]`` in pixels and
    ``area`` the box area as a float. Shapes overlap by at most a quarter of the smaller box, so
    every labelled shape is mostly visible.
    """
    import json

    image_dir = root / "data" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(n):
        image, _, objects = draw_scene(rng, size, max_overlap=0.25)
        name = f"{split}_{i:05d}.jpg"
        image.save(image_dir / name, quality=92)  # write: sample data
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        tick()
        for obj in objects:
            x0, y0, x1, y1 = obj.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": obj.label,
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                }
            )
    if split != "pred":
        categories = [{"id": k, "name": CLASSES[k], "supercategory": "shape"} for k in range(1, len(CLASSES))]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(  # write: sample data
            json.dumps({"images": images, "annotations": annotations, "categories": categories})
        )


#: task -> writer of one split
_WRITERS = {
    "segmentation": _write_segmentation,
    "classification": _write_classification,
    "detection": _write_detection,
}


def write_shapes(
    root: Path,
    *,
    task: str = "segmentation",
    counts: dict[str, int] | None = None,
    size: int = 128,
    seed: int = 0,
) -> dict[str, int]:
    """Write the shapes dataset for ``task`` under ``root`` (layouts in the writers' docstrings).

    Args:
        root: the dataset folder, e.g. ``PROJECT/datasets/shapes``.
        task: which labels to write: a key of ``_WRITERS``.
        counts: images per split; defaults to :data:`TASK_COUNTS` for the task, else :data:`DEFAULT_COUNTS`.
            The ``pred`` split gets no labels.
        size: side of the square images in pixels.
        seed: base seed; each split draws from its own generator derived from it.

    Returns:
        The number of images written per split.
    """
    if task not in _WRITERS:
        raise ValueError(f"no shapes layout for task {task!r}; known: {', '.join(_WRITERS)}")
    from tqdm import tqdm

    counts = dict(TASK_COUNTS.get(task, DEFAULT_COUNTS) if counts is None else counts)
    # a bar on a terminal (tqdm's disable=None: not in logs), gone when done
    with tqdm(total=sum(counts.values()), desc="shapes images", unit="img", disable=None, leave=False) as bar:
        for split, n in counts.items():
            rng = np.random.default_rng([seed, _SPLIT_SEEDS.get(split, len(_SPLIT_SEEDS))])
            _WRITERS[task](root, split, n, rng, size, lambda: bar.update(1))
    return counts
