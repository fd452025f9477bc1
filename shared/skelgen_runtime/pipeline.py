"""The data-pipeline interface: one module per record schema, chosen by the dataset's ``dataset_info.json``.

A project's ``datasets/pipelines.py`` maps schema names to its pipeline modules
(``datasets/data_generator.py`` for images, ``datasets/volume_generator.py`` for volumes) and the
scripts call :func:`open_pipeline`; nothing downstream branches on the kind of data.

:func:`train_batches` and :func:`eval_batches` are the 0.2 series' entry points of the order the image
pipelines share (:mod:`skelgen_runtime.data.batches`, where it is described).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.records.info import DatasetInfo, load_info

__all__ = ["Pipeline", "open_pipeline", "train_batches", "eval_batches"]


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

    def train_dataset(
        self, data_cfg: Any, info: DatasetInfo, *, split: str = "train", seed: int | None = None, repeat: bool = False
    ) -> Any:
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
        raise DatasetError(
            f"{folder / 'dataset_info.json'} describes {info.schema!r} records; this project reads "
            f"{', '.join(repr(k) for k in pipelines)}: rebuild the dataset with this project's build "
            "script or point data.dataset at another dataset"
        )
    info.check_schema(pipeline.SCHEMA.name, pipeline.SCHEMA.readable_versions)
    return pipeline, info


def _decoded_then(decoded: Callable, deterministic: bool) -> Callable:
    """A 0.2 ``decoded(shuffle_records)`` as a :mod:`skelgen_runtime.data.batches` read function."""
    import tensorflow as tf

    def read(shuffle: int, then: Callable) -> Any:
        ds = decoded(shuffle)
        # deterministic as the reader's map, so that tf.data fuses the two (map_fusion needs the same setting)
        return ds.map(then, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)

    return read


def train_batches(
    decoded: Callable[[int], Any],
    *,
    prepare: Callable,
    randomize: Callable,
    data_cfg,
    seed: int | None = None,
    repeat: bool = False,
) -> Any:
    """Shuffled, augmented batches of ``(inputs float32 normalised, targets)``
    (:func:`skelgen_runtime.data.batches.train_batches`).

    Args:
        decoded: ``decoded(shuffle_records)`` -> the split's decoded examples, their serialised records
            shuffled in a buffer of that many first (``records.reader.read_split(..., shuffle_records=)``).
        prepare: one decoded example -> its deterministic, cacheable form.
        randomize: a prepared example -> ``(inputs uint8 (or float normalised), targets)``.
    """
    from skelgen_runtime.data import batches

    return batches.train_batches(
        _decoded_then(decoded, False), prepare=prepare, randomize=randomize, data_cfg=data_cfg, seed=seed, repeat=repeat
    )


def eval_batches(decoded: Any, *, example: Callable, data_cfg, count: int) -> Any:
    """Deterministic batches of ``(inputs float32 normalised, targets)`` for validation during training.

    Args:
        decoded: the split's decoded examples in file order.
        example: one decoded example -> ``(inputs uint8 (or float normalised), targets)``.
        count: examples in the split (a known length spares Keras a first pass that warns it ran out of data).
    """
    from skelgen_runtime.data import batches

    return batches.eval_batches(
        _decoded_then(lambda shuffle: decoded, True), example=example, data_cfg=data_cfg, count=count
    )
