"""Record schemas: one feature spec per record kind, with the keys the TensorFlow ecosystem already uses.

Which schemas exist is the task table's business (:data:`skelgen_runtime.tasks.RECORD_KINDS`).
Neither importing this package nor :func:`get_schema` imports TensorFlow (build workers encode
without it); a schema's ``labelled_spec``/``unlabelled_spec`` and its ``decode`` do.
"""

from __future__ import annotations

from skelgen_runtime.tasks import get_schema

__all__ = ["get_schema"]
