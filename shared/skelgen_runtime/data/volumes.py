"""Volume records (``volume_segmentation``, e.g. BraTS) -> batched ``tf.data`` pipelines.

``data.mode: 2d`` trains on axial slices resized to ``data.image_size``, ``3d`` on patches of
``data.patch_size``; :mod:`skelgen_runtime.preprocessing.volume` documents how cases are prepared
(z-score over the brain) and sampled (tumour-biased). Training samples are augmented by the project's
``augment_volume(image, label, data)`` hook (``datasets/preprocesses.py``; the library's
:func:`~skelgen_runtime.preprocessing.volume.augment` for projects whose file predates it).
Evaluation and prediction take whole cases.
"""

from __future__ import annotations

import tensorflow as tf

from skelgen_runtime.data.base import DataPipeline
from skelgen_runtime.preprocessing import volume as ops

__all__ = ["VolumePipeline"]

AUTOTUNE = tf.data.AUTOTUNE


class VolumePipeline(DataPipeline):
    """``volume_segmentation`` records: slices or patches for training, whole cases for evaluation."""

    schema_name = "volume_segmentation"

    @property
    def examples_per_epoch(self) -> int:
        """Training samples per pass: cases x ``data.samples_per_case``."""
        return ops.train_examples(self.data, self.info)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(H, W, C)`` in 2D mode, ``(D, H, W, C)`` in 3D mode (``C``: the modalities used)."""
        return ops.model_input_shape(self.data, self.info)

    def _augment(self, image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        hook = getattr(self.hooks, "augment_volume", ops.augment)
        return hook(image, label, self.data)

    def train_batches(self, *, seed: int | None = None, repeat: bool = False, split: str = "train") -> tf.data.Dataset:
        """Shuffled, augmented batches of ``(image (B, ..., C) float32, label (B, ..., 1) int32)``."""
        ds = ops.sample_dataset(self.data, self.info, split, training=True, seed=seed, repeat=repeat)
        ds = ds.shuffle(min(self.data.shuffle_buffer, ops.SHUFFLE_SAMPLES), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(self._augment, num_parallel_calls=AUTOTUNE)
        return ds.batch(self.data.batch_size, drop_remainder=True).prefetch(AUTOTUNE)

    def val_batches(self, split: str = "val", *, cache: bool | None = None) -> tf.data.Dataset:
        """Deterministic batches of validation slices or patches (``data.cache`` is not used for volumes)."""
        ds = ops.sample_dataset(self.data, self.info, split, training=False)
        # a known length spares Keras a first validation pass that ends in a "ran out of data" warning
        ds = ds.apply(tf.data.experimental.assert_cardinality(ops.eval_examples(self.data, self.info, split)))
        return ds.batch(self.data.eval_batch_size).prefetch(AUTOTUNE)

    def eval_steps(self, split: str = "val") -> int | None:
        """One element of :meth:`eval_examples` per case."""
        return self.info.count(split)

    def eval_examples(self, split: str = "val") -> tf.data.Dataset:
        """Whole prepared cases, one per element (:func:`~skelgen_runtime.preprocessing.volume.case_dataset`)."""
        return ops.case_dataset(self.data, self.info, split)

    def raw_examples(self, split: str) -> tf.data.Dataset:
        """Decoded records of ``split`` in file order, unprepared."""
        return ops.raw_dataset(self.info, split)
