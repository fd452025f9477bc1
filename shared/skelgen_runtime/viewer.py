"""Records back to pictures: what a generated ``tfrecord2image_DATASET_format.py`` runs.

For each of the first ``--num`` records of a split it writes ``<name>.png`` (the image beside the
image with its label drawn over it) and a ``grid.png`` of all of them. Volume records (BraTS) are
drawn as montages of axial slices per modality (:mod:`skelgen_runtime.viz_volume`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np

from skelgen_runtime.errors import UserInputError, exit_on_error

__all__ = ["render_examples", "main"]


def _captioned(image: np.ndarray, text: str) -> np.ndarray:
    """The image, enlarged to at least 128 px, with ``text`` written in its top-left corner."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(image)
    scale = max(1, -(-128 // max(picture.size)))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    ImageDraw.Draw(picture).text((4, 4), text, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


def render_examples(folder: Path, schema, split: str, num: int, out: Path) -> list[Path]:
    """Write the pictures of the first ``num`` records of ``split``; return the files written."""
    from PIL import Image

    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import open_dataset, read_split
    from skelgen_runtime.viz import grid, overlay

    info = load_info(folder)
    if info.schema == "volume_segmentation" and schema.name != info.schema:  # BraTS in a segmentation project
        from skelgen_runtime.viz_volume import render_volumes

        return render_volumes(info, split, num, out)
    info = open_dataset(folder, schema)
    colors = info.label_map.colors
    out.mkdir(parents=True, exist_ok=True)
    written, tiles = [], []
    for example in read_split(info, schema, split, training=False).take(num):
        image = example["image"].numpy()
        name = Path(example["filename"].numpy().decode()).stem
        if "label" in example and example["label"].shape.rank == 0:  # classification: the class name on top
            picture = _captioned(image, info.label_map.names[int(example["label"]) - info.label_map.first_id])
        elif "label" in example:
            drawn = overlay(image, example["label"].numpy()[..., 0], colors, ignore_label=info.label_map.ignore_label)
            picture = np.concatenate([image, drawn], axis=1)
        elif "boxes" in example:  # detection: the image beside the image with its boxes and class names
            from skelgen_runtime.viz_boxes import boxes_to_pixels, draw_boxes

            first, ids = info.label_map.first_id, example["classes"].numpy()
            pixels = boxes_to_pixels(example["boxes"].numpy(), *image.shape[:2])
            drawn = draw_boxes(
                image, pixels, [info.label_map.names[c - first] for c in ids], [colors[c - first] for c in ids]
            )
            picture = np.concatenate([image, drawn], axis=1)
        else:
            picture = image
        path = out / f"{name}.png"
        Image.fromarray(picture).save(path)  # write: picture
        written.append(path)
        tiles.append(picture)
    if not tiles:
        raise UserInputError(f"split {split!r} of {folder} holds no records")
    # write: picture
    Image.fromarray(grid(tiles, columns=2 if tiles[0].shape[1] > tiles[0].shape[0] else 4)).save(out / "grid.png")
    written.append(out / "grid.png")
    return written


def main(*, dataset: str, folder: Path, schema, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"tfrecord2image_{dataset}_format.py",
        description=f"Draw records of {dataset} as PNGs (image | image with labels).",
    )
    parser.add_argument("--split", default="val", help="split to draw (default: val)")
    parser.add_argument("--num", type=int, default=8, help="number of records (default: 8)")
    parser.add_argument(
        "--out",
        type=Path,
        default=folder.parent / "preview",
        help=f"output folder (default: {folder.parent / 'preview'})",
    )
    args = parser.parse_args(argv)
    with exit_on_error():
        if args.num < 1:
            raise UserInputError(f"--num must be at least 1, got {args.num}")
        from skelgen_runtime.startup import import_tensorflow

        import_tensorflow()  # without its start-up noise (when nothing imported it yet)
        files = render_examples(folder, schema, args.split, args.num, args.out)
        print(f"wrote {len(files) - 1} pictures and grid.png to {args.out}")
