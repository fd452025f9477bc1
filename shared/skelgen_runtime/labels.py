"""Label maps: a dataset's classes (names, colours, ids), and the table from its files' values to them.

At the bottom of the library: the readers (:mod:`skelgen_runtime.sources`), the records
(:mod:`skelgen_runtime.records.info`) and the tasks all use these, and this module uses none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from skelgen_runtime.errors import BadExampleError, DatasetError

__all__ = ["DEFAULT_PALETTE", "LabelLookup", "LabelMap"]

#: colours for class ids without a colour of their own (id 0 is black)
DEFAULT_PALETTE = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (255, 225, 25),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
)


@dataclass(frozen=True)
class LabelMap:
    """Class names in id order, their display colours and the ignore label.

    Class ``names[i]`` has id ``first_id + i``: segmentation and classification count from 0,
    detection from 1 (the Object Detection API's convention; 0 is background). ``source_ids``
    keeps the id each class has in the dataset's own files when that differs from the contiguous
    id (empty when they are the same).
    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...] = ()
    ignore_label: int = 255
    source_ids: tuple[int, ...] = ()
    first_id: int = 0

    def __post_init__(self) -> None:
        if not self.names:
            raise DatasetError("the label map has no classes")
        if len(set(self.names)) != len(self.names):
            raise DatasetError(f"the label map repeats a class name: {list(self.names)}")
        if not self.colors:
            start = self.first_id
            palette = [DEFAULT_PALETTE[(start + i) % len(DEFAULT_PALETTE)] for i in range(len(self.names))]
            object.__setattr__(self, "colors", tuple(palette))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_json(self) -> list[dict]:
        return [
            {
                "id": self.first_id + i,
                "name": name,
                "color": list(self.colors[i]),
                **({"source_id": self.source_ids[i]} if self.source_ids else {}),
            }
            for i, name in enumerate(self.names)
        ]

    @classmethod
    def from_json(cls, entries: Sequence[dict], ignore_label: int = 255) -> "LabelMap":
        entries = sorted(entries, key=lambda e: e["id"])
        return cls(
            names=tuple(e["name"] for e in entries),
            colors=tuple(tuple(e["color"]) for e in entries),
            ignore_label=ignore_label,
            source_ids=tuple(e["source_id"] for e in entries) if entries and "source_id" in entries[0] else (),
            first_id=entries[0]["id"] if entries else 0,
        )


#: a lookup-table entry for a source value that is not in the dataset's table
_UNKNOWN = -1


@dataclass(frozen=True)
class LabelLookup:
    """Maps the label values a dataset writes into its files to training ids.

    Training id ``i`` is written as ``source_ids[i]`` in the files; every other value in ``known``
    becomes ``ignore_label``; any value outside ``known`` makes the example bad (the file is not
    what the reader expects, e.g. a colour PNG or another dataset's ids).

    Attributes:
        dataset: name used in messages, e.g. ``"Cityscapes labelIds"``.
        source_ids: source value of each training id, in training-id order.
        known: every value the dataset's files may hold.
        ignore_label: the training id of ignored pixels.
    """

    dataset: str
    source_ids: tuple[int, ...]
    known: tuple[int, ...]
    ignore_label: int = 255

    def __post_init__(self) -> None:
        unknown = sorted(v for v in set(self.source_ids) if v not in self.known or not 0 <= v < 256)
        if unknown:
            raise DatasetError(
                f"source ids {unknown} of the label map are not {self.dataset} values {list(self.known)}"
            )
        if len(set(self.source_ids)) != len(self.source_ids):
            raise DatasetError(f"the label map repeats a source id: {list(self.source_ids)}")

    @cached_property
    def table(self) -> np.ndarray:
        """``(256,)`` int16: training id of each uint8 source value, -1 for values not in ``known``."""
        table = np.full(256, _UNKNOWN, dtype=np.int16)
        table[[v for v in self.known if 0 <= v < 256]] = self.ignore_label
        table[list(self.source_ids)] = np.arange(len(self.source_ids))
        return table

    def apply(self, label: np.ndarray, path: Path) -> np.ndarray:
        """Map a ``(H, W)`` uint8 array of source values to training ids (one vectorised gather).

        Raises:
            BadExampleError: ``label`` holds values the dataset never writes (names ``path``).
        """
        mapped = self.table[label]
        if (mapped == _UNKNOWN).any():
            bad = np.unique(label[mapped == _UNKNOWN])
            raise BadExampleError(
                str(path),
                f"label values {bad.tolist()} are not {self.dataset} (expected {_ranges(self.known)}); "
                "is this the right annotation file?",
            )
        return mapped.astype(np.uint8)


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 255]`` -> ``"0..2, 5, 255"``."""
    values = sorted(set(values))
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts)
