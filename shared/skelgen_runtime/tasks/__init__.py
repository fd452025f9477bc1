"""Task bindings: what differs between segmentation, classification and detection at run time.

Each task module exposes the same names, which the generated scripts call:

- ``MONITOR``, ``MONITOR_MODE``: the validation metric that selects the best checkpoint.
- ``loss(config, info)``: the training loss (a Keras loss or ``fn(y_true, y_pred)``).
- ``train_metrics(config, info)``: Keras metrics shown per epoch.
- ``evaluate(model, batches, config, info) -> dict``: scores written to ``logs/RUN/eval_SPLIT.json``.
- ``report(result, info) -> str``: the printed table.
- ``write_artifacts(result, info, out_dir, split) -> list[Path]``: pictures of the scores (may be none).
- ``read_inputs(path, info)`` and ``predict_item(example, info)``: what ``predict()`` gets from
  ``predict.py --input PATH`` and from a decoded record (image tasks share :mod:`._images`).
- ``predict(model, items, config, info, out_dir) -> str``: writes predictions, returns a summary.

The scripts pick the module with :func:`get_task_for`: the project's task, unless the dataset's
records have a task module of their own (``volume_segmentation`` records in a segmentation project).

Importing this package does not import TensorFlow; :func:`get_task` does.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from skelgen_runtime.errors import UserInputError

__all__ = ["TASK_MODULES", "SCHEMA_TASKS", "get_task", "get_task_for"]

TASK_MODULES = {
    "segmentation": "skelgen_runtime.tasks.segmentation",
    "detection": "skelgen_runtime.tasks.detection",
    "classification": "skelgen_runtime.tasks.classification",
    "volume_segmentation": "skelgen_runtime.tasks.volume_segmentation",
}
#: record schemas with a task module of their own, whatever the project's task (volumes in a segmentation project)
SCHEMA_TASKS = {"volume_segmentation": "volume_segmentation"}


def get_task(name: str) -> ModuleType:
    """The task module of ``name``; raise :class:`UserInputError` listing the known tasks."""
    try:
        return importlib.import_module(TASK_MODULES[name])
    except KeyError:
        raise UserInputError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASK_MODULES))}") from None


def get_task_for(task: str, schema: str) -> ModuleType:
    """The task module for a ``task`` project reading records of ``schema`` (``dataset_info.json``'s schema)."""
    return get_task(SCHEMA_TASKS.get(schema, task))
