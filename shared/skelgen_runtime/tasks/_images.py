"""The parts of the task interface that every 2-D image task shares."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from skelgen_runtime.errors import BadExampleError
from skelgen_runtime.sources.images_masks import iter_images

__all__ = ["read_inputs", "predict_item", "no_artifacts"]


def read_inputs(
    path: Path, info, on_bad: Callable[[BadExampleError], None] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """``(stem, RGB uint8 (H, W, 3))`` for an image file or every image in a folder (``predict.py --input``);
    an unreadable one raises :class:`BadExampleError`, or goes to ``on_bad`` and is left out."""
    return iter_images(path, on_bad=on_bad)


def predict_item(example: dict, info) -> tuple[str, np.ndarray]:
    """``(stem, RGB uint8 (H, W, 3))`` of a decoded record (``predict.py --split``)."""
    return Path(example["filename"].numpy().decode()).stem, example["image"].numpy()


def no_artifacts(result: dict, info, out_dir: Path, split: str) -> list[Path]:
    """Tasks whose scores have no picture write nothing besides ``eval_SPLIT.json``."""
    return []
