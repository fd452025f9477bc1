"""Record schemas: one feature spec per record kind, with the keys the TensorFlow ecosystem already uses.

Which schemas exist is the task table's business (:data:`skelgen_runtime.tasks.RECORD_KINDS`).
Neither importing this package nor :func:`get_schema` imports TensorFlow (build workers encode
without it); a schema's ``labelled_spec``/``unlabelled_spec`` and its ``decode`` do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skelgen_runtime.errors import UserInputError

if TYPE_CHECKING:
    from skelgen_runtime.schemas.base import RecordSchema

__all__ = ["get_schema"]


def get_schema(name: str) -> "RecordSchema":
    """The record schema called ``name`` (a task's own schema has the task's name).

    Raises:
        UserInputError: no task reads records of that name (the message lists those that exist).
    """
    from skelgen_runtime.tasks import RECORD_KINDS

    try:
        kind = RECORD_KINDS[name]
    except KeyError:
        raise UserInputError(f"unknown record schema {name!r}; known: {', '.join(RECORD_KINDS)}") from None
    return importlib.import_module(kind.schema_module).SCHEMA
