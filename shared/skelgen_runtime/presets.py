"""Dataset presets: plain data that both the CLI (no TensorFlow) and the runtime library read.

A preset names a dataset layout that skelgen knows how to read: which tasks it serves, its classes
and how ``add-dataset`` prepares it. Readers of the layouts live in :mod:`skelgen_runtime.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass

from skelgen_runtime.errors import UserInputError

__all__ = ["DatasetPreset", "PRESETS", "get_preset", "preset_names"]


@dataclass(frozen=True)
class DatasetPreset:
    """What skelgen knows about one dataset layout.

    Attributes:
        name: preset key, e.g. ``"shapes"``.
        readers: task -> name of the reader class in :mod:`skelgen_runtime.sources` for that task;
            its keys are the tasks this layout can feed.
        description: one line for ``--help`` and the generated README.
        classes: class names in label-id order (id 0 first), or ``None`` when read from the data.
        builtin: True when ``add-dataset`` generates the data itself (no download, no ``--source``).
    """

    name: str
    readers: dict[str, str]
    description: str
    classes: tuple[str, ...] | None = None
    builtin: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.readers)


PRESETS: dict[str, DatasetPreset] = {
    p.name: p
    for p in (
        DatasetPreset(
            name="shapes",
            readers={"segmentation": "ImagesMasksSource"},
            description="built-in sample: circles, squares and triangles on textured backgrounds",
            classes=("background", "circle", "square", "triangle"),
            builtin=True,
        ),
    )
}


def preset_names() -> list[str]:
    """All preset keys, sorted."""
    return sorted(PRESETS)


def get_preset(name: str) -> DatasetPreset:
    """Return the preset called ``name``; raise :class:`UserInputError` listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown dataset preset {name!r}; choose one of: {', '.join(preset_names())}"
        ) from None
