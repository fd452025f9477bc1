"""Task bindings: what differs between segmentation, classification and detection at run time.

Each task module exposes the same names, which the generated scripts call:

- ``MONITOR``, ``MONITOR_MODE``: the validation metric that selects the best checkpoint.
- ``loss(config, info)``: the training loss (a Keras loss or ``fn(y_true, y_pred)``).
- ``train_metrics(config, info)``: Keras metrics shown per epoch.
- ``evaluate(model, batches, config, info) -> dict``: scores written to ``logs/RUN/eval_SPLIT.json``.
- ``report(result, info) -> str``: the printed table.
- ``write_artifacts(result, info, out_dir, split) -> list[Path]`` (optional): pictures of the scores.
- ``predict(model, items, config, info, out_dir) -> str``: writes predictions, returns a summary.

Importing this package does not import TensorFlow; :func:`get_task` does.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from skelgen_runtime.errors import UserInputError

__all__ = ["TASK_MODULES", "get_task"]

TASK_MODULES = {
    "segmentation": "skelgen_runtime.tasks.segmentation",
    "detection": "skelgen_runtime.tasks.detection",
    "classification": "skelgen_runtime.tasks.classification",
}


def get_task(name: str) -> ModuleType:
    """The task module of ``name``; raise :class:`UserInputError` listing the known tasks."""
    try:
        return importlib.import_module(TASK_MODULES[name])
    except KeyError:
        raise UserInputError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASK_MODULES))}") from None
