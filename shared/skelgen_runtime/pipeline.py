"""The data-pipeline interface: one module per record schema, chosen by the dataset's ``dataset_info.json``.

A project's ``datasets/pipelines.py`` maps schema names to its pipeline modules
(``datasets/data_generator.py`` for images, ``datasets/volume_generator.py`` for volumes) and the
scripts call :func:`open_pipeline`; nothing downstream branches on the kind of data.

:func:`train_batches` and :func:`eval_batches` are the order the image pipelines share, tuned once:

- with ``data.cache`` on: decode, *prepare* (the deterministic part, uint8 at model size), cache,
  shuffle the cached examples, *randomize* (augment and finalize, one map), batch, normalise the
  batch, prefetch; the cache holds uint8 examples at model size;
- with it off (datasets larger than memory): shuffle the *serialised records* (small byte strings,
  not decoded images), decode, prepare and randomize, batch, normalise, prefetch;
- normalisation is one fused multiply-add per batch
  (:func:`~skelgen_runtime.preprocessing.image.normalize_batch`) of the uint8 inputs.
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


def _normalised(data_cfg) -> Callable:
    from skelgen_runtime.preprocessing.image import normalize_batch

    return lambda inputs, targets: (normalize_batch(inputs, data_cfg.mean, data_cfg.std), targets)


def _options():
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True  # decode, prepare and randomize run as one function
    return options


def train_batches(decoded: Callable[[int], Any], *, prepare: Callable, randomize: Callable, data_cfg,
                  seed: int | None = None, repeat: bool = False) -> Any:
    """Shuffled, augmented batches of ``(inputs float32 normalised, targets)`` (module docstring).

    Args:
        decoded: ``decoded(shuffle_records)`` -> the split's decoded examples, their serialised records
            shuffled in a buffer of that many first (``records.reader.read_split(..., shuffle_records=)``).
        prepare: one decoded example -> its deterministic, cacheable form.
        randomize: a prepared example -> ``(inputs uint8 (or float normalised), targets)``.
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    if data_cfg.cache:
        ds = decoded(0).map(prepare, num_parallel_calls=auto, deterministic=False).cache()
        ds = ds.shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.map(randomize, num_parallel_calls=auto)
    else:
        ds = decoded(data_cfg.shuffle_buffer)
        if repeat:
            ds = ds.repeat()
        # deterministic as the reader's map, so that tf.data fuses the two (map_fusion needs the same setting)
        ds = ds.map(lambda e: randomize(prepare(e)), num_parallel_calls=auto, deterministic=False)
    ds = ds.batch(data_cfg.batch_size, drop_remainder=True).map(_normalised(data_cfg), num_parallel_calls=auto)
    return ds.prefetch(auto).with_options(_options())


def eval_batches(decoded: Any, *, example: Callable, data_cfg, count: int) -> Any:
    """Deterministic batches of ``(inputs float32 normalised, targets)`` for validation during training.

    Args:
        decoded: the split's decoded examples in file order.
        example: one decoded example -> ``(inputs uint8 (or float normalised), targets)``.
        count: examples in the split (a known length spares Keras a first pass that warns it ran out of data).
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    ds = decoded.map(example, num_parallel_calls=auto, deterministic=True)
    if data_cfg.cache:
        ds = ds.cache()
    ds = ds.apply(tf.data.experimental.assert_cardinality(count)).batch(data_cfg.eval_batch_size)
    ds = ds.map(_normalised(data_cfg), num_parallel_calls=auto, deterministic=True)
    return ds.prefetch(auto).with_options(_options())
