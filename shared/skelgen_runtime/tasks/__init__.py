"""The task table: the one place that says which tasks exist and what each one is made of.

Everything that differs per task is found from :data:`TASKS`: the CLI's ``--task`` choices (and
``copier.yml``'s, which a test keeps equal), the record schemas a project of the task reads, the task
binding that scores and predicts each schema, the score evaluation leads with and the files
prediction writes.

A task may read more than one record schema: a segmentation project reads ``segmentation`` records
(images) and ``volume_segmentation`` records (multi-modal volumes such as BraTS). Each schema has its
own binding, so the scripts pick the binding by the schema written in ``dataset_info.json``
(:func:`binding_for_schema`), never by branching on it.

Task bindings are modules that satisfy :class:`~skelgen_runtime.tasks.binding.TaskBinding`.
Importing this package is cheap (no TensorFlow); :func:`get_binding` imports the binding.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Mapping

from skelgen_runtime.errors import DatasetError, UserInputError

if TYPE_CHECKING:
    from skelgen_runtime.schemas.base import RecordSchema
    from skelgen_runtime.tasks.volume_regions import RegionTable, output_mode, region_table

#: names re-exported from :mod:`skelgen_runtime.tasks.volume_regions` when first used (it imports NumPy;
#: the CLI reads the task table without it)
_REGIONS = ("RegionTable", "output_mode", "region_table")

__all__ = [
    "RecordKind",
    "TaskSpec",
    "TASKS",
    "TASK_NAMES",
    "RECORD_KINDS",
    "get_spec",
    "get_binding",
    "get_schema",
    "binding_for_schema",
    "RegionTable",
    "output_mode",
    "region_table",
]


@dataclass(frozen=True)
class RecordKind:
    """One record schema and the task binding that scores and predicts its records.

    Attributes:
        schema: the schema's name, as ``dataset_info.json`` records it.
        schema_module: module defining ``SCHEMA`` (:class:`~skelgen_runtime.schemas.base.RecordSchema`).
        binding: module satisfying :class:`~skelgen_runtime.tasks.binding.TaskBinding`.
    """

    schema: str
    schema_module: str
    binding: str


@dataclass(frozen=True)
class TaskSpec:
    """What a task is made of.

    Attributes:
        name: the task's name (``--task``, ``copier.yml``'s ``task`` answer).
        description: one line for ``--help``.
        records: the record kinds a project of this task reads; the first is the task's own
            (what ``datasets/build_data.py`` writes for image datasets).
        headline: the score ``evaluate.py`` leads with for the task's own records.
        predictions: file patterns ``predict.py`` writes one of per predicted image.
    """

    name: str
    description: str
    records: tuple[RecordKind, ...]
    headline: str
    predictions: tuple[str, ...]

    @property
    def schema(self) -> str:
        """The task's own record schema."""
        return self.records[0].schema


TASKS: Mapping[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="segmentation",
            description="a class id per pixel (or voxel, for volumes such as BraTS)",
            records=(
                RecordKind(
                    "segmentation", "skelgen_runtime.schemas.segmentation", "skelgen_runtime.tasks.segmentation"
                ),
                RecordKind(
                    "volume_segmentation", "skelgen_runtime.schemas.volume", "skelgen_runtime.tasks.volume_segmentation"
                ),
            ),
            headline="miou",
            predictions=("*_label.png", "*_overlay.png"),
        ),
        TaskSpec(
            name="classification",
            description="one class per image",
            records=(
                RecordKind(
                    "classification", "skelgen_runtime.schemas.classification", "skelgen_runtime.tasks.classification"
                ),
            ),
            headline="accuracy",
            predictions=("*_pred.png",),
        ),
        TaskSpec(
            name="detection",
            description="boxes and classes of the objects in an image",
            records=(RecordKind("detection", "skelgen_runtime.schemas.detection", "skelgen_runtime.tasks.detection"),),
            headline="ap",
            predictions=("*_boxes.png",),
        ),
    )
}

#: the task names in table order (the CLI's ``--task`` choices)
TASK_NAMES: tuple[str, ...] = tuple(TASKS)

#: every record schema of every task, by schema name
RECORD_KINDS: Mapping[str, RecordKind] = {kind.schema: kind for spec in TASKS.values() for kind in spec.records}


def get_spec(task: str) -> TaskSpec:
    """The :class:`TaskSpec` of ``task``; raise :class:`UserInputError` listing the known tasks."""
    try:
        return TASKS[task]
    except KeyError:
        raise UserInputError(f"unknown task {task!r}; choose one of: {', '.join(TASK_NAMES)}") from None


def binding_for_schema(task: str, schema: str) -> RecordKind:
    """The record kind of ``schema`` in a ``task`` project; :class:`DatasetError` if the task cannot read it."""
    spec = get_spec(task)
    for kind in spec.records:
        if kind.schema == schema:
            return kind
    readable = ", ".join(kind.schema for kind in spec.records)
    raise DatasetError(
        f"a {task} project cannot read {schema!r} records (it reads: {readable}); "
        "point data.dataset at a dataset built by this project's build scripts"
    )


def get_binding(task: str, schema: str | None = None) -> ModuleType:
    """The task binding for ``schema`` records in a ``task`` project (default: the task's own records)."""
    kind = binding_for_schema(task, schema or get_spec(task).schema)
    return importlib.import_module(kind.binding)


def get_schema(name: str) -> "RecordSchema":
    """The record schema called ``name`` (a task's own schema has the task's name).

    Raises:
        UserInputError: no task reads records of that name (the message lists those that exist).
    """
    try:
        kind = RECORD_KINDS[name]
    except KeyError:
        raise UserInputError(f"unknown record schema {name!r}; known: {', '.join(RECORD_KINDS)}") from None
    return importlib.import_module(kind.schema_module).SCHEMA


def __getattr__(name: str):  # PEP 562: the region names load NumPy only when a project uses them
    if name in _REGIONS:
        from skelgen_runtime.tasks import volume_regions

        return getattr(volume_regions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
