"""One object naming what a project trains: :class:`Project`, made in the project's ``core/project.py``.

The library's jobs (:mod:`skelgen_runtime.jobs`) call these hooks in their own order; the project
never has to know that order::

    PROJECT = Project(
        task="segmentation", framework="keras",
        config=Config,                     # core/config.py: the schema of configs/*.yaml
        build_model=build_model,           # core/__init__.py: MODELS, picked by model.name
        build_loss=build_loss,             # core/losses.py: LOSSES, picked by train.loss
        optimizers=OPTIMIZERS, schedules=SCHEDULES,   # core/optimizers.py: train.optimizer, train.lr_schedule
        preprocesses=preprocesses,         # datasets/preprocesses.py: resize, augment, finalize
    )

Hooks and their signatures:

- ``config``: a pydantic model class (:mod:`skelgen_runtime.config`), validated on load;
- ``build_model(model_cfg, *, num_classes, input_shape) -> keras.Model`` (logits);
- ``build_loss(config, info) -> loss(y_true, y_pred) -> (B,)``;
- ``optimizers`` / ``schedules``: registries of :mod:`skelgen_runtime.training.optim` factories;
- ``preprocesses``: the preprocessing hooks the dataset pipelines call (``datasets/preprocesses.py``;
  one signature per task, :mod:`skelgen_runtime.data.images`, :mod:`skelgen_runtime.data.volumes`);
- ``pipelines`` (optional): ``{schema name: DataPipeline subclass}`` for records of a schema of the
  project's own, or to replace the library's pipeline of a schema (:mod:`skelgen_runtime.data`);
- ``metrics`` (optional): the registry ``train.metrics`` picks from (``core/metrics.py``,
  :mod:`skelgen_runtime.training.metrics`); the list must include the task's monitor; without it
  (or without ``train.metrics`` in the config) the task's own metrics are logged;
- ``steps``: the custom loop's step class (``core/steps.py``), for ``framework="tf"``.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from skelgen_runtime.errors import ProjectError
from skelgen_runtime.registry import Registry

__all__ = ["Project", "load_project", "check_project"]


@dataclass(frozen=True)
class Project:
    """The hooks of one project (see the module docstring for each signature)."""

    task: str
    framework: Literal["keras", "tf"]
    config: type[Any]
    build_model: Callable[..., Any]
    build_loss: Callable[[Any, Any], Any]
    optimizers: Registry
    schedules: Registry
    preprocesses: Any
    pipelines: Mapping[str, type] | None = None
    metrics: Registry | None = None
    steps: type | None = None

    def open_data(self, root: Path, data_cfg: Any) -> Any:
        """The :class:`~skelgen_runtime.data.DataPipeline` of ``data_cfg.dataset`` in the project at ``root``,
        bound to ``data_cfg`` and this project's preprocessing (imports TensorFlow when it is used)."""
        from skelgen_runtime.data import open_pipeline
        from skelgen_runtime.layout import ProjectLayout

        folder = ProjectLayout(root).tfrecords(data_cfg.dataset)
        return open_pipeline(self.task, data_cfg, folder, self.preprocesses, extra=self.pipelines)

    def __post_init__(self) -> None:
        if self.framework not in ("keras", "tf"):
            raise ProjectError(f"core/project.py: framework must be keras or tf, not {self.framework!r}")
        if self.framework == "tf" and self.steps is None:
            raise ProjectError("core/project.py: a framework='tf' project names its training steps (steps=Steps)")


def check_project(root: Path) -> None:
    """Raise :class:`ProjectError` unless ``root`` is a project with its hooks (no TensorFlow: scripts call it first)."""
    from skelgen_runtime.layout import ProjectLayout

    if (root / "core" / "project.py").is_file():
        return
    if not ProjectLayout(root).answers.is_file():
        raise ProjectError(
            f"{root} is not a skelgen project (no core/project.py, no .copier-answers.yml): run the script that "
            "skelgen new wrote into the project's folder, or make a project with skelgen new NAME --task TASK"
        )
    raise ProjectError(
        f"{root / 'core' / 'project.py'} not found: this script needs the project's hooks there; "
        "run skelgen update (it adds the file to projects made before it existed)"
    )


def load_project(root: Path) -> Project:
    """``PROJECT`` of ``root/core/project.py`` (the project folder goes first on ``sys.path``)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    check_project(root)
    module = importlib.import_module("core.project")
    project = getattr(module, "PROJECT", None)
    if not isinstance(project, Project):
        raise ProjectError(
            f"{module.__file__}: PROJECT must be a skelgen_runtime.project.Project, not {type(project).__name__}"
        )
    return project
