"""TFRecords -> ``tf.data``: parallel reads, parallel parse/decode, prefetch.

The reader checks ``dataset_info.json`` against the project's schema before reading anything.
Training order is shuffled; evaluation order is deterministic (files and records in order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import tensorflow as tf

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.records.info import DatasetInfo, load_info
from skelgen_runtime.schemas.base import DECODE_PLAN, DECODE_SIZE, DecodePlan, RecordSchema

__all__ = ["open_dataset", "read_split", "read_labels"]

AUTOTUNE = tf.data.AUTOTUNE


def open_dataset(folder: Path, schema: RecordSchema) -> DatasetInfo:
    """Load ``folder/dataset_info.json`` and check it describes ``schema`` records."""
    info = load_info(folder)
    info.check_schema(schema.name, schema.readable_versions)
    return info


def read_split(
    info: DatasetInfo,
    schema: RecordSchema,
    split: str,
    *,
    training: bool,
    seed: int | None = None,
    shuffle_records: int = 0,
    decode_size: Sequence[int] | None = None,
    static: bool = True,
    then: Callable[[dict], Any] | None = None,
) -> tf.data.Dataset:
    """Records of ``split`` as decoded examples (see the schema's ``decode`` for the keys).

    Args:
        training: shuffle shard order and read shards interleaved, non-deterministically, for
            speed; otherwise read in file order with deterministic output.
        shuffle_records: training only: shuffle the serialised records in a buffer of this many
            before decoding them (a buffer of small byte strings rather than decoded images).
        decode_size: the ``(height, width)`` the pipeline resizes images to: JPEGs at least twice as
            large are decoded at a reduced scale (:func:`~skelgen_runtime.schemas.base.decode_rgb`).
        static: when the build recorded that every image of the split has one size and one encoding
            (``dataset_info.json``), decode them all with one :class:`~skelgen_runtime.schemas.base.
            DecodePlan` and give the images (and segmentation labels) a static shape, so that later
            steps decide resizes in Python; False: decide per example, as for a dataset without the record.
        then: a function of each decoded example, run in the same map as parsing and decoding (one
            function per example: what a pipeline would otherwise chain as a second map).
    """
    files = [str(f) for f in info.split_files(split)]
    spec = schema.spec(info.is_labelled(split))
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=info.compression or ""),
        cycle_length=min(len(files), 8),
        num_parallel_calls=AUTOTUNE,
        deterministic=not training,
    )
    cases = info.split_cases(split)
    if cases is not None:  # a cross-validation fold's split: the named cases of the labelled shards
        ds = ds.filter(lambda record: _one_of(record, schema.case_key, cases))
    if training and shuffle_records > 1:
        ds = ds.shuffle(shuffle_records, seed=seed, reshuffle_each_iteration=True)
    hint = () if decode_size is None else (int(decode_size[0]), int(decode_size[1]))
    plan = DecodePlan.choose(info.image_stats(split), hint or None) if static else None

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        if plan is not None:
            parsed[DECODE_PLAN] = plan  # a Python value: decided once, no op in the graph
        elif hint:  # a constant made inside the function: a captured tensor would keep tf.data from fusing maps
            parsed[DECODE_SIZE] = tf.constant(hint)
        decoded = schema.decode(parsed)
        return decoded if then is None else then(decoded)

    return ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=not training)


def _one_of(record: tf.Tensor, key: str | None, cases: list[str]) -> tf.Tensor:
    """Whether the serialised ``record``'s ``key`` (its case id) is one of ``cases``, parsing nothing else."""
    if key is None:
        raise DatasetError("this record schema has no case id: cross-validation folds are for volume datasets")
    parsed = tf.io.parse_single_example(record, {key: tf.io.FixedLenFeature([], tf.string)})
    return tf.reduce_any(tf.equal(parsed[key], tf.constant(cases)))


def read_labels(info: DatasetInfo, split: str, key: str):
    """All values of one int64 feature ``key`` in ``split`` as a NumPy array, parsing nothing else."""
    import numpy as np

    spec = {key: tf.io.FixedLenFeature([], tf.int64)}
    ds = tf.data.TFRecordDataset([str(f) for f in info.split_files(split)], compression_type=info.compression or "")
    ds = ds.batch(1024).map(lambda r: tf.io.parse_example(r, spec)[key], num_parallel_calls=AUTOTUNE)
    return np.concatenate([b.numpy() for b in ds]) if info.count(split) else np.zeros([0], np.int64)
