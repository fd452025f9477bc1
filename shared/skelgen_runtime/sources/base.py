"""The interface every dataset reader implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from skelgen_runtime.labels import DEFAULT_PALETTE, LabelMap

__all__ = ["LabelMap", "Source", "SourceItem", "DEFAULT_PALETTE"]


@dataclass(frozen=True)
class SourceItem:
    """One example on disk: a stable ``key`` (sorts the split) and the files it is made of.

    ``classes``: the names of the classes the example holds when listing knows them without reading
    the labels (an image folder's class folder, a COCO image's categories), else None; ``--max-examples``
    subsets use it to keep every class (:mod:`skelgen_runtime.records.subset`).
    """

    key: str
    files: dict[str, Path] = field(default_factory=dict)
    classes: frozenset[str] | None = None


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
