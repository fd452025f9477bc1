"""What a build records about the images of a split, so that a pipeline can decide once what it would
otherwise decide per example: the JPEG decode scale, whether a resize is needed, the labels' shape.

A build reads ``image/height``, ``image/width`` and the first bytes of ``image/encoded`` back out of
each serialised record (:func:`~skelgen_runtime.records.example.read_features`, no decoding), so every
source, the built-in readers and a project's own, is described the same way. ``dataset_info.json``
holds per split::

    "images": {"count": 800, "min_size": [256, 256], "max_size": [256, 256],
               "formats": {"jpeg": 800}}

``min_size``/``max_size`` are per side (the smallest height and the smallest width, ...): equal, every
image of the split has that size. Records without those keys (volumes) have no ``images`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from skelgen_runtime.records.example import Buffer, read_features

__all__ = ["ImageStats", "image_format"]

_KEYS = ("image/height", "image/width", "image/encoded")


def image_format(encoded: Buffer) -> str:
    """``"jpeg"``, ``"png"``, ``"gif"``, ``"bmp"`` or ``"other"``, from the file's signature
    (``tf.io.decode_image`` tells them apart the same way)."""
    head = bytes(encoded[:8])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"GIF8":
        return "gif"
    if head[:2] == b"BM":
        return "bmp"
    return "other"


@dataclass
class ImageStats:
    """Sizes and encodings of the images of some records; :meth:`add` one record at a time, :meth:`merge`
    the stats of several shards. ``count`` 0: no record described an image (e.g. volume records)."""

    count: int = 0
    min_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None
    formats: dict[str, int] = field(default_factory=dict)

    def add(self, record: Buffer) -> None:
        """Count one serialised record (left out if it has no image keys)."""
        try:
            values = read_features(record, _KEYS)
        except ValueError:  # not an Example: TensorFlow will say so when reading it
            return
        if not all(values.get(key) for key in _KEYS):
            return
        self._count(
            (int(values["image/height"][0]), int(values["image/width"][0])),
            {image_format(values["image/encoded"][0]): 1},
            1,
        )

    def _count(
        self, size: tuple[int, int], formats: dict[str, int], count: int, largest: tuple[int, int] | None = None
    ) -> None:
        largest = largest or size
        self.count += count
        self.min_size = (
            size if self.min_size is None else (min(self.min_size[0], size[0]), min(self.min_size[1], size[1]))
        )
        self.max_size = (
            largest if self.max_size is None else (max(self.max_size[0], largest[0]), max(self.max_size[1], largest[1]))
        )
        for name, n in formats.items():
            self.formats[name] = self.formats.get(name, 0) + n

    @property
    def uniform_size(self) -> tuple[int, int] | None:
        """``(height, width)`` when every image has it, else ``None``."""
        return self.min_size if self.count and self.min_size == self.max_size else None

    @property
    def single_format(self) -> str | None:
        """The encoding every image has (``"jpeg"``, ``"png"``, ...), else ``None``."""
        return next(iter(self.formats)) if self.count and len(self.formats) == 1 else None

    def to_json(self) -> dict[str, Any] | None:
        if not self.count:
            return None
        return {
            "count": self.count,
            "min_size": list(self.min_size or ()),
            "max_size": list(self.max_size or ()),
            "formats": dict(sorted(self.formats.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ImageStats:
        """Stats as :meth:`to_json` wrote them; ``None`` or a malformed entry (a hand-edited file): empty stats."""
        stats = cls()
        try:
            if data and int(data["count"]) > 0:
                low, high = (int(v) for v in data["min_size"]), (int(v) for v in data["max_size"])
                smallest, largest = (next(low), next(low)), (next(high), next(high))
                stats._count(
                    smallest, {str(k): int(v) for k, v in data["formats"].items()}, int(data["count"]), largest
                )
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
            return cls()
        return stats

    @classmethod
    def merged(cls, parts: Iterable[ImageStats | None]) -> ImageStats | None:
        """The stats of several shards together; ``None`` if any is unknown (a shard an older build wrote)."""
        total = cls()
        for part in parts:
            if part is None:
                return None
            if part.count:
                assert part.min_size is not None and part.max_size is not None
                total._count(part.min_size, part.formats, part.count, part.max_size)
        return total
