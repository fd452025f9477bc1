"""This project's preprocessing, composed of the shared library's mask-aware ops.

Edit freely: every function maps one decoded example (no batch axis) to one example.
"""

from __future__ import annotations

import tensorflow as tf

from skelgen_runtime.preprocessing import segmentation as ops

__all__ = ["resize_example", "augment", "finalize"]


def resize_example(example: dict, data_cfg) -> dict:
    """Deterministic part, cached after the first epoch: resize image and label to ``data.image_size``."""
    image, label = ops.resize(example["image"], example.get("label"), data_cfg.image_size)
    out = {"image": image}
    if label is not None:
        out["label"] = label
    return out


def augment(example: dict, data_cfg, ignore_label: int) -> dict:
    """Random part, training only: scale, crop back to ``image_size``, flip. Labels follow the image."""
    aug = data_cfg.augment
    image, label = example["image"], example["label"]
    if aug.scale_min != 1.0 or aug.scale_max != 1.0:
        image, label = ops.random_scale(image, label, aug.scale_min, aug.scale_max)
    if aug.crop:
        image, label = ops.random_crop(image, label, data_cfg.image_size, ignore_label)
    else:
        image, label = ops.resize(image, label, data_cfg.image_size)
    if aug.flip:
        image, label = ops.random_flip(image, label)
    return {"image": image, "label": label}


def finalize(example: dict, data_cfg) -> tuple[tf.Tensor, tf.Tensor]:
    """Normalise the image and return ``(image float32 (H, W, 3), label int32 (H, W, 1))``."""
    image = ops.normalize(example["image"], data_cfg.mean, data_cfg.std)
    return image, tf.cast(example["label"], tf.int32)
