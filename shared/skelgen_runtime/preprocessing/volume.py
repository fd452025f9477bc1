"""Multi-modal volumes (``volume_segmentation`` records, e.g. BraTS) -> tf.data pipelines.

The ops that :class:`skelgen_runtime.data.volumes.VolumePipeline` composes into its pipelines
(:func:`sample_dataset`, :func:`case_dataset`, :func:`random_flip`, ...). Every case is decoded
whole (one BraTS case is ~140 MB as float32), prepared, then cut into
training samples; ``data.cache`` is not used for volumes.

Preparation (:func:`prepare`): keep the modalities of ``data.modalities`` (default: all, in record
order), then z-score every modality over the *brain* voxels, the voxels where any modality is
non-zero (skull-stripped BraTS volumes are 0 outside the brain); voxels outside the brain become 0.

Samples, ``data.samples_per_case`` of them per case and epoch:

- ``data.mode: 2d``: axial slices ``(H, W, C)`` (``volume[d]``), resized to ``data.image_size``
  (bilinear; labels nearest). Training draws slices that contain tumour with probability
  ``data.foreground_fraction``, else any slice with brain in it; validation takes evenly spaced slices
  across the brain.
- ``data.mode: 3d``: patches ``data.patch_size = (D, H, W)`` with all channels. Training centres a
  patch on a random tumour voxel with probability ``data.foreground_fraction``, else on a random
  voxel; validation centres one patch on the tumour's bounding box (the volume's centre without
  tumour). Volumes smaller than a patch are padded: image with 0, label with the ignore label.

Training samples are augmented by the project (``datasets/preprocesses.py``, e.g. :func:`random_flip`).
Evaluation and prediction use whole cases (:func:`case_dataset`) and the task binding's slice-wise or
sliding-window inference.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from skelgen_runtime.errors import ConfigError, DatasetError
from skelgen_runtime.records.info import DatasetInfo
from skelgen_runtime.records.reader import read_split
from skelgen_runtime.schemas.volume import NAME, SCHEMA

__all__ = [
    "SCHEMA",
    "SHUFFLE_SAMPLES",
    "is_volume",
    "dataset_modalities",
    "channels",
    "model_input_shape",
    "train_examples",
    "eval_examples",
    "prepare",
    "zscore",
    "sample_dataset",
    "random_flip",
    "augment",
    "case_dataset",
    "raw_dataset",
]

AUTOTUNE = tf.data.AUTOTUNE
#: at most this many samples in a shuffle buffer (a 3D patch of 128^3 x 4 is 32 MB)
SHUFFLE_SAMPLES = 64


def is_volume(info: DatasetInfo) -> bool:
    """Whether the dataset holds volume records (this module's business)."""
    return info.schema == NAME


def _mode(data_cfg) -> str:
    return getattr(data_cfg, "mode", "2d")


def dataset_modalities(info: DatasetInfo) -> list[str]:
    """The modality names of the dataset's records (from ``dataset_info.json``, else its first record)."""
    named = (info.data.get("source_info") or {}).get("modalities")
    if named:
        return list(named)
    for split in info.data["splits"]:
        files = info.split_files(split)
        if files:
            spec = {"volume/modalities": tf.io.FixedLenFeature([], tf.string)}
            ds = tf.data.TFRecordDataset([str(f) for f in files[:1]], compression_type=info.compression or "")
            for raw in ds.take(1):
                return tf.io.parse_single_example(raw, spec)["volume/modalities"].numpy().decode().split(",")
    raise DatasetError(f"{info.folder} holds no volume records")


def channels(data_cfg, info: DatasetInfo) -> list[str]:
    """The modalities fed to the model, in order; raise :class:`ConfigError` naming an unknown one."""
    available = dataset_modalities(info)
    wanted = list(getattr(data_cfg, "modalities", None) or available)
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise ConfigError(f"data.modalities: {unknown} not in the dataset's modalities {available}")
    return wanted


def model_input_shape(data_cfg, info: DatasetInfo) -> tuple[int, ...]:
    """``(H, W, C)`` in 2D mode, ``(D, H, W, C)`` in 3D mode."""
    c = len(channels(data_cfg, info))
    if _mode(data_cfg) == "3d":
        return (*data_cfg.patch_size, c)
    return (*data_cfg.image_size, c)


def train_examples(data_cfg, info: DatasetInfo, split: str = "train") -> int:
    """Samples per pass over ``split``: cases x ``data.samples_per_case``."""
    return info.count(split) * data_cfg.samples_per_case


def eval_examples(data_cfg, info: DatasetInfo, split: str = "val") -> int:
    """Validation samples of ``split``: one patch per case in 3D mode, ``data.samples_per_case`` slices in 2D."""
    return info.count(split) * (1 if _mode(data_cfg) == "3d" else data_cfg.samples_per_case)


# ------------------------------------------------------------------------------------ preparation


def zscore(image: tf.Tensor) -> tf.Tensor:
    """Per-channel z-score of ``(..., C)`` over the voxels where any channel is non-zero; 0 elsewhere."""
    image = tf.cast(image, tf.float32)
    brain = tf.reduce_any(tf.not_equal(image, 0), axis=-1, keepdims=True)
    weight = tf.cast(brain, tf.float32)
    axes = list(range(image.shape.rank - 1))
    n = tf.maximum(tf.reduce_sum(weight, axis=axes), 1.0)
    mean = tf.reduce_sum(image * weight, axis=axes) / n
    var = tf.reduce_sum(tf.square(image - mean) * weight, axis=axes) / n
    std = tf.sqrt(var)
    std = tf.where(std < 1e-6, tf.ones_like(std), std)
    return tf.where(brain, (image - mean) / std, 0.0)


def _select(image: tf.Tensor, modalities: tf.Tensor, wanted: Sequence[str]) -> tf.Tensor:
    names = tf.strings.split(modalities, ",")
    index = [tf.argmax(tf.cast(tf.equal(names, w), tf.int32), output_type=tf.int32) for w in wanted]
    return tf.gather(image, tf.stack(index), axis=-1)


def prepare(example: dict, wanted: Sequence[str]) -> dict:
    """Decoded record -> ``image`` float32 ``(D, H, W, C)`` z-scored, ``label`` uint8 ``(D, H, W, 1)`` if any."""
    out = dict(example)
    image = _select(example["image"], example["modalities"], wanted)
    out["image"] = tf.ensure_shape(zscore(image), [None, None, None, len(wanted)])
    return out


# ---------------------------------------------------------------------------------------- samples


def _brain_slices(image: tf.Tensor) -> tf.Tensor:
    """Indices of the axial slices with brain; all slices if none has."""
    has = tf.reduce_any(tf.not_equal(image, 0), axis=[1, 2, 3])
    idx = tf.cast(tf.where(has)[:, 0], tf.int32)
    return tf.cond(tf.size(idx) > 0, lambda: idx, lambda: tf.range(tf.shape(image)[0]))


def _random_choice(values: tf.Tensor, seed=None) -> tf.Tensor:
    return values[tf.random.uniform([], 0, tf.shape(values)[0], dtype=tf.int32, seed=seed)]


def _slices(example: dict, data_cfg, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
    image, label = example["image"], example["label"]
    brain = _brain_slices(image)
    n = data_cfg.samples_per_case
    if training:
        tumour = tf.cast(tf.where(tf.reduce_any(label[..., 0] > 0, axis=[1, 2]))[:, 0], tf.int32)
        picks = []
        for _ in range(n):
            use_tumour = tf.logical_and(tf.size(tumour) > 0, tf.random.uniform([]) < data_cfg.foreground_fraction)
            picks.append(tf.cond(use_tumour, lambda: _random_choice(tumour), lambda: _random_choice(brain)))
        index = tf.stack(picks)
    else:
        positions = tf.cast(tf.round(tf.linspace(0.0, tf.cast(tf.size(brain) - 1, tf.float32), n)), tf.int32)
        index = tf.gather(brain, positions)
    images, labels = tf.gather(image, index), tf.gather(label, index)
    size = tf.constant(data_cfg.image_size, tf.int32)
    same = tf.reduce_all(tf.equal(tf.shape(images)[1:3], size))  # slices already at the size need no resize
    images = tf.cond(same, lambda: images, lambda: tf.image.resize(images, size, method="bilinear"))
    labels = tf.cond(same, lambda: labels, lambda: tf.image.resize(labels, size, method="nearest"))
    return images, tf.cast(labels, tf.int32)


def _patch_start(center: tf.Tensor, shape: tf.Tensor, patch: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(center - patch // 2, 0, shape - patch)


def _pad_to(image: tf.Tensor, label: tf.Tensor, patch: Sequence[int], ignore: int):
    shape = tf.shape(image)[:3]
    extra = tf.maximum(tf.constant(patch, tf.int32) - shape, 0)
    pads = tf.stack([extra // 2, extra - extra // 2], axis=1)
    pads = tf.concat([pads, [[0, 0]]], 0)
    image = tf.pad(image, pads)
    label = tf.pad(tf.cast(label, tf.int32), pads, constant_values=ignore)
    return image, label


def _patches(example: dict, data_cfg, training: bool, ignore: int) -> tuple[tf.Tensor, tf.Tensor]:
    patch = tuple(data_cfg.patch_size)
    image, label = _pad_to(example["image"], example["label"], patch, ignore)
    shape = tf.shape(image)[:3]
    size = tf.constant(patch, tf.int32)
    tumour = tf.cast(tf.where(tf.logical_and(label[..., 0] > 0, label[..., 0] != ignore)), tf.int32)
    if training:
        centers = []
        for _ in range(data_cfg.samples_per_case):
            anywhere = lambda: tf.cast(tf.random.uniform([3]) * tf.cast(shape, tf.float32), tf.int32)  # noqa: E731
            use_tumour = tf.logical_and(tf.shape(tumour)[0] > 0, tf.random.uniform([]) < data_cfg.foreground_fraction)
            centers.append(tf.cond(use_tumour, lambda: _random_choice(tumour), anywhere))
    else:
        middle = tf.cond(
            tf.shape(tumour)[0] > 0,
            lambda: (tf.reduce_min(tumour, 0) + tf.reduce_max(tumour, 0)) // 2,
            lambda: shape // 2,
        )
        centers = [middle]
    images, labels = [], []
    for center in centers:
        start = _patch_start(center, shape, size)
        images.append(tf.slice(image, tf.concat([start, [0]], 0), tf.concat([size, [-1]], 0)))
        labels.append(tf.slice(label, tf.concat([start, [0]], 0), tf.concat([size, [-1]], 0)))
    return tf.stack(images), tf.stack(labels)


def random_flip(image: tf.Tensor, label: tf.Tensor, seed=None) -> tuple[tf.Tensor, tf.Tensor]:
    """Left-right flip (the W axis, second to last) of one sample ``(..., H, W, C)`` and its label, p = 1/2."""
    axis = image.shape.rank - 2
    flip = tf.random.uniform([], seed=seed) < 0.5
    return (
        tf.cond(flip, lambda: tf.reverse(image, [axis]), lambda: image),
        tf.cond(flip, lambda: tf.reverse(label, [axis]), lambda: label),
    )


def augment(image: tf.Tensor, label: tf.Tensor, data_cfg) -> tuple[tf.Tensor, tf.Tensor]:
    """The default augmentation of one training sample: :func:`random_flip` when ``data.augment.flip``."""
    if data_cfg.augment.flip:
        image, label = random_flip(image, label)
    return image, label


def sample_dataset(
    data_cfg, info: DatasetInfo, split: str, *, training: bool, seed=None, repeat: bool = False
) -> tf.data.Dataset:
    """Unbatched samples of ``split``: ``(image float32 (H, W, C) | (D, H, W, C), label int32 (..., 1))``.

    Slices or patches (``data.mode``), drawn as the module docstring says: random with tumour bias
    when ``training``, fixed otherwise. Not shuffled across cases and not augmented.
    """
    wanted = channels(data_cfg, info)
    ignore = info.label_map.ignore_label
    ds = read_split(info, SCHEMA, split, training=training, seed=seed)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda e: prepare(e, wanted), num_parallel_calls=2, deterministic=not training)
    if _mode(data_cfg) == "3d":
        cut = lambda e: _patches(e, data_cfg, training, ignore)  # noqa: E731
        shape = (*data_cfg.patch_size, len(wanted))
    else:
        cut = lambda e: _slices(e, data_cfg, training)  # noqa: E731
        shape = (*data_cfg.image_size, len(wanted))
    ds = ds.map(cut, num_parallel_calls=2, deterministic=not training).unbatch()  # 2 whole cases at a time
    return ds.map(lambda x, y: (tf.ensure_shape(x, shape), tf.ensure_shape(y, (*shape[:-1], 1))))


def case_dataset(data_cfg, info: DatasetInfo, split: str) -> tf.data.Dataset:
    """Whole prepared cases, one per element, in file order: the decoded record's keys (see
    :mod:`skelgen_runtime.schemas.volume`) with ``image`` z-scored and reduced to ``data.modalities``."""
    wanted = channels(data_cfg, info)
    ds = read_split(info, SCHEMA, split, training=False)
    return ds.map(lambda e: prepare(e, wanted), num_parallel_calls=2, deterministic=True).prefetch(1)


def raw_dataset(info: DatasetInfo, split: str) -> tf.data.Dataset:
    """Decoded records of ``split`` in file order, unprepared."""
    return read_split(info, SCHEMA, split, training=False).prefetch(1)
