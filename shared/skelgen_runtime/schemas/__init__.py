"""Record schemas: one feature spec per task, with the keys the TensorFlow ecosystem already uses.

Neither importing this package nor :func:`get_schema` imports TensorFlow (build workers encode
without it); a schema's ``labelled_spec``/``unlabelled_spec`` and its ``decode`` do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skelgen_runtime.errors import UserInputError

if TYPE_CHECKING:
    from skelgen_runtime.schemas.base import RecordSchema

__all__ = ["SCHEMA_MODULES", "get_schema"]

#: task name -> module defining ``SCHEMA``
SCHEMA_MODULES = {
    "segmentation": "skelgen_runtime.schemas.segmentation",
    "detection": "skelgen_runtime.schemas.detection",
    "classification": "skelgen_runtime.schemas.classification",
    # not a project task: the records of multi-modal 3D datasets (BraTS) that segmentation projects read
    "volume_segmentation": "skelgen_runtime.schemas.volume",
}


def get_schema(task: str) -> "RecordSchema":
    """Return the record schema of ``task``; raise :class:`UserInputError` listing the known tasks."""
    import importlib

    try:
        module = SCHEMA_MODULES[task]
    except KeyError:
        raise UserInputError(f"unknown task {task!r}; choose one of: {', '.join(sorted(SCHEMA_MODULES))}") from None
    return importlib.import_module(module).SCHEMA
