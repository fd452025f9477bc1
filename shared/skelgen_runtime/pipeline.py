"""The data-pipeline interface: one module per record schema, chosen by the dataset's ``dataset_info.json``.

A project's ``datasets/pipelines.py`` maps schema names to its pipeline modules
(``datasets/data_generator.py`` for images, ``datasets/volume_generator.py`` for volumes) and the
scripts call :func:`open_pipeline`; nothing downstream branches on the kind of data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.records.info import DatasetInfo, load_info

__all__ = ["Pipeline", "open_pipeline"]


@runtime_checkable
class Pipeline(Protocol):
    """The members of a pipeline module.

    Attributes:
        SCHEMA: the :class:`~skelgen_runtime.schemas.base.RecordSchema` of the records it reads.
    """

    SCHEMA: Any

    def train_examples(self, data_cfg: Any, info: DatasetInfo) -> int:
        """Training samples per pass over the train split (the steps of an epoch are this // batch size)."""

    def model_input_shape(self, data_cfg: Any, info: DatasetInfo) -> tuple[int, ...]:
        """The model's input shape without the batch axis."""

    def train_dataset(self, data_cfg: Any, info: DatasetInfo, *, split: str = "train", seed: int | None = None,
                      repeat: bool = False) -> Any:
        """Shuffled, augmented batches of ``(inputs, targets)``."""

    def eval_dataset(self, data_cfg: Any, info: DatasetInfo, *, split: str = "val", for_keras: bool = True) -> Any:
        """Deterministic batches: ``(inputs, targets)`` for validation, or what the binding's ``evaluate`` takes."""

    def raw_dataset(self, info: DatasetInfo, split: str) -> Any:
        """Decoded records of ``split`` in file order (what the binding's ``predict_item`` takes)."""


def open_pipeline(pipelines: Mapping[str, Pipeline], folder: Path) -> tuple[Pipeline, DatasetInfo]:
    """The pipeline for the records in ``folder`` and their checked ``dataset_info.json``.

    Raises:
        DatasetError: the dataset is not built, or holds records none of ``pipelines`` reads, or
            records of an older schema version (each message says what to do).
    """
    info = load_info(folder)
    pipeline = pipelines.get(info.schema)
    if pipeline is None:
        raise DatasetError(f"{folder / 'dataset_info.json'} describes {info.schema!r} records; this project reads "
                           f"{', '.join(repr(k) for k in pipelines)}: rebuild the dataset with this project's build "
                           "script or point data.dataset at another dataset")
    info.check_schema(pipeline.SCHEMA.name, pipeline.SCHEMA.version)
    return pipeline, info
