"""The interface every dataset reader implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from skelgen_runtime.errors import DatasetError

__all__ = ["LabelMap", "Source", "SourceItem", "DEFAULT_PALETTE"]

#: colours for class ids without a colour of their own (id 0 is black)
DEFAULT_PALETTE = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
    (255, 215, 180), (0, 0, 128), (128, 128, 128),
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


@dataclass(frozen=True)
class SourceItem:
    """One example on disk: a stable ``key`` (sorts the split) and the files it is made of."""

    key: str
    files: dict[str, Path] = field(default_factory=dict)


class Source(Protocol):
    """A dataset layout. Implementations must be picklable (they travel to worker processes)."""

    root: Path
    label_map: LabelMap

    def splits(self) -> list[str]:
        """Split names found on disk, e.g. ``["train", "val", "pred"]``."""

    def items(self, split: str) -> list[SourceItem]:
        """The split's examples, sorted by key. Cheap: lists files, reads nothing large."""

    def is_labelled(self, split: str) -> bool:
        """Whether records of ``split`` carry labels."""

    def encode(self, item: SourceItem, split: str) -> bytes:
        """Read, validate and serialise one example as a ``tf.train.Example``.

        Raises:
            BadExampleError: the example is unusable (names the file and the reason).
        """
