"""TFRecords -> batched, preprocessed ``tf.data`` pipelines for training, evaluation and prediction."""

from __future__ import annotations

import tensorflow as tf

from datasets import preprocesses
from datasets.build_data import SCHEMA, tfrecord_dir
from skelgen_runtime.preprocessing.segmentation import normalize
from skelgen_runtime.records.info import DatasetInfo
from skelgen_runtime.records.reader import open_dataset, read_split

__all__ = ["dataset_info", "train_dataset", "eval_dataset", "raw_dataset"]

AUTOTUNE = tf.data.AUTOTUNE


def dataset_info(data_cfg) -> DatasetInfo:
    """The ``dataset_info.json`` of the configured dataset, checked against this project's schema."""
    return open_dataset(tfrecord_dir(data_cfg.dataset), SCHEMA)


def train_dataset(data_cfg, info: DatasetInfo, *, split: str = "train", seed: int | None = None,
                  repeat: bool = False) -> tf.data.Dataset:
    """Batches of ``(image (B, H, W, 3) float32 normalised, label (B, H, W, 1) int32)``, shuffled, augmented."""
    ds = read_split(info, SCHEMA, split, training=True, seed=seed)
    ds = ds.map(lambda e: preprocesses.resize_example(e, data_cfg), num_parallel_calls=AUTOTUNE)
    if data_cfg.cache:
        ds = ds.cache()
    ds = ds.shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ignore = info.label_map.ignore_label
    ds = ds.map(lambda e: preprocesses.augment(e, data_cfg, ignore), num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda e: preprocesses.finalize(e, data_cfg), num_parallel_calls=AUTOTUNE)
    return ds.batch(data_cfg.batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def eval_dataset(data_cfg, info: DatasetInfo, *, split: str = "val", for_keras: bool = True) -> tf.data.Dataset:
    """Deterministic batches of ``split``.

    ``for_keras=True`` gives ``(image, label)`` at model size for ``model.fit`` validation.
    ``for_keras=False`` gives dicts with the normalised ``image`` at model size, the original
    ``label`` (padded with the ignore label to the largest in the batch) and its ``height``/``width``,
    so that evaluation scores at the original resolution.
    """
    ds = read_split(info, SCHEMA, split, training=False)
    if for_keras:
        ds = ds.map(lambda e: preprocesses.finalize(preprocesses.resize_example(e, data_cfg), data_cfg),
                    num_parallel_calls=AUTOTUNE, deterministic=True)
        if data_cfg.cache:
            ds = ds.cache()
        return ds.batch(data_cfg.eval_batch_size).prefetch(AUTOTUNE)

    def to_eval(e):
        resized = preprocesses.resize_example({"image": e["image"]}, data_cfg)
        shape = tf.shape(e["label"])
        return {
            "image": normalize(resized["image"], data_cfg.mean, data_cfg.std),
            "label": tf.cast(e["label"], tf.int32),
            "height": shape[0],
            "width": shape[1],
        }

    ds = ds.map(to_eval, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.padded_batch(
        data_cfg.eval_batch_size,
        padding_values={"image": 0.0, "label": info.label_map.ignore_label, "height": 0, "width": 0},
    ).prefetch(AUTOTUNE)


def raw_dataset(info: DatasetInfo, split: str) -> tf.data.Dataset:
    """Decoded examples of ``split`` in file order (``image`` uint8, ``filename``, ``label`` if labelled)."""
    return read_split(info, SCHEMA, split, training=False).prefetch(AUTOTUNE)
