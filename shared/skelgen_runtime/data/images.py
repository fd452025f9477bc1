"""Image records (``segmentation``, ``classification``, ``detection``) -> batched ``tf.data`` pipelines.

The order is :mod:`skelgen_runtime.data.batches`': with ``data.cache`` the deterministic part
(``hooks.resize_example``: uint8 at model size) is cached and the random part (``hooks.augment`` then
``hooks.finalize``) runs after the shuffle; without it the serialised records are shuffled before
decoding. A split whose images the build found to share one size and encoding (``dataset_info.json``)
is decoded with one plan and static shapes, so that the resizes are decided in Python, once. Images stay uint8 until one normalisation per batch
(``(x / 255 - data.mean) / data.std``, or none when the backbone normalises its own input).

The hooks each task calls (``datasets/preprocesses.py``, one signature per task):

- segmentation: ``resize_example(example, data)``, ``augment(example, data, ignore_label)``,
  ``finalize(example, data) -> (image, label)``;
- classification and detection: ``resize_example(example, data)``, ``augment(example, data)``,
  ``finalize(example, data, num_classes) -> (image, targets)``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from skelgen_runtime.data.base import DataPipeline
from skelgen_runtime.data.batches import eval_batches, train_batches
from skelgen_runtime.errors import ConfigError
from skelgen_runtime.preprocessing.image import normalize
from skelgen_runtime.records.reader import read_split

__all__ = ["ImagePipeline", "SegmentationPipeline", "ClassificationPipeline", "DetectionPipeline"]

AUTOTUNE = tf.data.AUTOTUNE


class ImagePipeline(DataPipeline):
    """What the three image pipelines share: reading, the model's input shape, validation and raw examples."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, 3)``: ``data.image_size`` in RGB."""
        if getattr(self.data, "mode", "2d") == "3d":
            raise ConfigError(f"data.mode 3d needs a volume dataset (e.g. BraTS); {self.data.dataset!r} holds images")
        return (*self.data.image_size, 3)

    def _read(
        self, split: str, *, training: bool, seed: int | None = None, shuffle: int = 0, then: Any = None
    ) -> tf.data.Dataset:
        return read_split(
            self.info,
            self.schema(),
            split,
            training=training,
            seed=seed,
            shuffle_records=shuffle,
            decode_size=self.data.image_size,
            then=then,
        )

    # the per-task steps, one decoded example at a time
    def _labelled(self, example: dict) -> dict:
        """The keys the hooks see of a decoded labelled record."""
        return example

    def _prepare(self, example: dict) -> dict:
        """The deterministic, cacheable part of a training example."""
        return self.hooks.resize_example(self._labelled(example), self.data)

    def _randomize(self, example: dict) -> tuple[Any, Any]:
        """A prepared example -> augmented ``(inputs, targets)``."""
        raise NotImplementedError

    def _finalize(self, example: dict) -> tuple[Any, Any]:
        """A resized example -> ``(inputs, targets)`` without augmentation."""
        raise NotImplementedError

    def train_batches(self, *, seed: int | None = None, repeat: bool = False, split: str = "train") -> tf.data.Dataset:
        """Shuffled, augmented batches of ``(image (B, H, W, 3) float32 normalised, targets)``."""
        return train_batches(
            lambda shuffle, then: self._read(split, training=True, seed=seed, shuffle=shuffle, then=then),
            prepare=self._prepare,
            randomize=self._randomize,
            data_cfg=self.data,
            seed=seed,
            repeat=repeat,
        )

    def eval_steps(self, split: str = "val") -> int | None:
        """Batches of :meth:`eval_examples`: the split's examples over ``data.eval_batch_size``, rounded up."""
        return -(-self.info.count(split) // self.data.eval_batch_size)

    def val_batches(self, split: str = "val", *, cache: bool | None = None) -> tf.data.Dataset:
        """Deterministic batches of ``(image, targets)`` at model size, as training sees them without augmentation."""
        return eval_batches(
            lambda shuffle, then: self._read(split, training=False, then=then),
            example=lambda e: self._finalize(self.hooks.resize_example(self._labelled(e), self.data)),
            data_cfg=self._data(cache),
            count=self.info.count(split),
        )

    def raw_examples(self, split: str) -> tf.data.Dataset:
        """Decoded examples of ``split`` in file order (``image`` uint8, ``filename``, the labels if labelled)."""
        return read_split(self.info, self.schema(), split, training=False).prefetch(AUTOTUNE)

    def _model_image(self, image: tf.Tensor) -> tf.Tensor:
        """A decoded image resized by the project's hook and normalised: what the model takes."""
        resized = self.hooks.resize_example({"image": image}, self.data)["image"]
        return normalize(resized, self.data.mean, self.data.std)


class SegmentationPipeline(ImagePipeline):
    """``segmentation`` records: targets are label maps ``(B, H, W, 1)`` int32 at model size."""

    schema_name = "segmentation"

    def _randomize(self, example: dict) -> tuple[Any, Any]:
        augmented = self.hooks.augment(example, self.data, self.info.label_map.ignore_label)
        return self.hooks.finalize(augmented, self.data)

    def _finalize(self, example: dict) -> tuple[Any, Any]:
        return self.hooks.finalize(example, self.data)

    def eval_examples(self, split: str = "val") -> tf.data.Dataset:
        """Batches of dicts: the normalised ``image`` at model size, the original ``label`` ``(B, H, W)``
        int32 (padded with the ignore label to the largest in the batch) and its ``height``/``width``,
        so that evaluation scores at the original resolution."""

        def to_eval(e: dict) -> dict:
            shape = tf.shape(e["label"])
            return {
                "image": self._model_image(e["image"]),
                "label": tf.cast(e["label"], tf.int32),
                "height": shape[0],
                "width": shape[1],
            }

        ds = self._read(split, training=False, then=to_eval)
        padding = {"image": 0.0, "label": self.info.label_map.ignore_label, "height": 0, "width": 0}
        return ds.padded_batch(self.data.eval_batch_size, padding_values=padding).prefetch(AUTOTUNE)


class ClassificationPipeline(ImagePipeline):
    """``classification`` records: targets are one-hot ``(B, C)``. With ``data.augment.crop`` the cached
    training images keep their stored size, so that random crops see the full resolution."""

    schema_name = "classification"

    def _labelled(self, example: dict) -> dict:
        return {"image": example["image"], "label": example["label"]}

    def _prepare(self, example: dict) -> dict:
        labelled = self._labelled(example)
        return labelled if self.data.augment.crop else self.hooks.resize_example(labelled, self.data)

    def _randomize(self, example: dict) -> tuple[Any, Any]:
        return self.hooks.finalize(self.hooks.augment(example, self.data), self.data, self.info.num_classes)

    def _finalize(self, example: dict) -> tuple[Any, Any]:
        return self.hooks.finalize(example, self.data, self.info.num_classes)

    def eval_examples(self, split: str = "val") -> tf.data.Dataset:
        """Batches of dicts: the normalised ``image`` at model size and the integer ``label`` ``(B,)``."""
        ds = self._read(
            split, training=False, then=lambda e: {"image": self._model_image(e["image"]), "label": e["label"]}
        )
        return ds.batch(self.data.eval_batch_size).prefetch(AUTOTUNE)


class DetectionPipeline(ImagePipeline):
    """``detection`` records: targets are CenterNet's ``(B, H/4, W/4, C + 5)`` float32
    (:func:`skelgen_runtime.formats.centernet.encode_targets`, called by the project's ``finalize``),
    so that the model's loss is a plain ``loss(targets, outputs)``."""

    schema_name = "detection"

    def _randomize(self, example: dict) -> tuple[Any, Any]:
        return self.hooks.finalize(self.hooks.augment(example, self.data), self.data, self.info.num_classes)

    def _finalize(self, example: dict) -> tuple[Any, Any]:
        return self.hooks.finalize(example, self.data, self.info.num_classes)

    def eval_examples(self, split: str = "val") -> tf.data.Dataset:
        """Batches of dicts for COCO evaluation: the normalised ``image`` at model size, the ground truth
        ``boxes`` ``(B, N, 4)`` normalised, ``classes`` ``(B, N)`` (padded with 0), ``area`` and
        ``is_crowd`` ``(B, N)``, and the stored image's ``height``/``width`` ``(B,)``."""
        keys = ("boxes", "classes", "area", "is_crowd", "height", "width")
        ds = self._read(
            split, training=False, then=lambda e: {"image": self._model_image(e["image"]), **{k: e[k] for k in keys}}
        )
        return ds.padded_batch(self.data.eval_batch_size).prefetch(AUTOTUNE)
