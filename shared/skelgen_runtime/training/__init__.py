"""Training: the loops that write the run record, and what a project picks its optimizer, schedule and
metrics from.

One loop per framework a project can be generated with (:data:`FRAMEWORKS`): ``keras``
(:mod:`.keras_fit`, ``model.fit``) and ``tf`` (:mod:`.custom_loop`, the project's own steps).
The registries a project's ``core/optimizers.py`` and ``core/metrics.py`` start from, and the
``@reads`` declaration of the ``train`` keys a factory uses, are here too (from :mod:`.optim` and
:mod:`.metrics`, imported when first used: importing this package stays cheap, no TensorFlow).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FRAMEWORKS",
    "REMOVED_FRAMEWORKS",
    "check_train_keys",
    "default_metrics",
    "default_optimizers",
    "default_schedules",
    "reads",
]

#: the --framework choices, each the name of a training loop
FRAMEWORKS = ("keras", "tf")
#: frameworks users ask for that are gone, and why
REMOVED_FRAMEWORKS = {
    "estimator": "tf.estimator was removed in TensorFlow 2.16; use --framework keras (model.fit) or tf (custom loop)",
}

#: name -> the submodule that defines it (imported on first use, PEP 562)
_LAZY = {
    "check_train_keys": "optim",
    "default_optimizers": "optim",
    "default_schedules": "optim",
    "reads": "optim",
    "default_metrics": "metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
