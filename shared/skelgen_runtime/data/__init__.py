"""A dataset's ``tf.data`` pipelines, chosen by the record schema its ``dataset_info.json`` names.

:func:`open_pipeline` reads and checks ``dataset_info.json`` and binds the pipeline class of its
schema, once, to the config's ``data`` section, the dataset's info and the project's preprocessing
hooks (``datasets/preprocesses.py``). A :class:`DataPipeline` then has one named method per use:

=========================  ==========================================================================
``train_batches()``        shuffled, augmented batches of ``(inputs, targets)`` for fitting
``val_batches(split)``     deterministic batches of ``(inputs, targets)`` for validation while fitting
``eval_examples(split)``   deterministic batches of dicts for the task's evaluation (original sizes)
``raw_examples(split)``    decoded records in file order, one at a time, for prediction
``examples_per_epoch``     training samples per pass over the train split
``input_shape``            the model's input shape without the batch axis
=========================  ==========================================================================

Which schemas a task reads is the task table's (:data:`skelgen_runtime.tasks.TASKS`); the class of each
is :data:`PIPELINES`. A project reads another schema by naming its own class for it
(``Project.pipelines``). Importing this package does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from skelgen_runtime.data.base import DataPipeline
from skelgen_runtime.errors import DatasetError
from skelgen_runtime.records.info import DatasetInfo, load_info

__all__ = ["DataPipeline", "PIPELINES", "open_pipeline", "pipeline_class"]

#: record schema -> ``module:Class`` of the pipeline that reads it (imported when a dataset needs it)
PIPELINES: Mapping[str, str] = {
    "segmentation": "skelgen_runtime.data.images:SegmentationPipeline",
    "classification": "skelgen_runtime.data.images:ClassificationPipeline",
    "detection": "skelgen_runtime.data.images:DetectionPipeline",
    "volume_segmentation": "skelgen_runtime.data.volumes:VolumePipeline",
}


def pipeline_class(schema: str, extra: Mapping[str, type[DataPipeline]] | None = None) -> type[DataPipeline]:
    """The pipeline class of records of ``schema``: the project's own (``extra``), else the library's."""
    if extra and schema in extra:
        return extra[schema]
    module, _, name = PIPELINES[schema].partition(":")
    return getattr(importlib.import_module(module), name)


def open_pipeline(
    task: str, data_cfg: Any, folder: Path, hooks: Any, *, extra: Mapping[str, type[DataPipeline]] | None = None
) -> DataPipeline:
    """The pipeline of the records in ``folder``, bound to ``data_cfg``, their info and ``hooks``.

    Args:
        task: the project's task; it reads the schemas of its row of the task table, and those of ``extra``.
        data_cfg: the config's ``data`` section.
        folder: the dataset's ``tfrecords`` folder (with ``dataset_info.json``).
        hooks: the project's preprocessing functions (``datasets/preprocesses.py``, a module).
        extra: the project's pipeline classes by schema (``Project.pipelines``), over the library's.

    Raises:
        DatasetError: the dataset is not built, holds records this project does not read, or records of
            another schema version, or ``data.fold`` names no fold of it (each message says what to do).
    """
    from skelgen_runtime.tasks import get_spec

    info: DatasetInfo = load_info(folder)
    readable = [kind.schema for kind in get_spec(task).records] + [s for s in (extra or {}) if s not in PIPELINES]
    if info.schema not in readable:
        raise DatasetError(
            f"{folder / 'dataset_info.json'} describes {info.schema!r} records; this {task} project "
            f"reads {', '.join(repr(k) for k in readable)}: rebuild the dataset with this project's "
            "build script or point data.dataset at another dataset"
        )
    cls = pipeline_class(info.schema, extra)
    info.check_schema(cls.schema().name, cls.schema().readable_versions)
    fold = getattr(data_cfg, "fold", None)
    if fold is not None:  # data.fold: train and val are the cross-validation fold's
        if cls.schema().case_key is None:
            raise DatasetError(
                f"data.fold is for volume datasets (BraTS): {folder.parent.name} holds {info.schema} records"
            )
        info = info.with_fold(int(fold))
    return cls(data_cfg, info, hooks)
