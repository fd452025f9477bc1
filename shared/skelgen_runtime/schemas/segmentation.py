"""Semantic segmentation records, with the keys of DeepLab's ``build_data.py``.

=====================================  ======  ===========================================
key                                    type    content
=====================================  ======  ===========================================
``image/encoded``                      bytes   the image file's bytes (JPEG or PNG)
``image/filename``                     bytes   source file name (relative to the split)
``image/format``                       bytes   ``jpeg`` or ``png``
``image/height``, ``image/width``      int64   image size in pixels
``image/channels``                     int64   3
``image/segmentation/class/encoded``   bytes   single-channel PNG of class ids (255 = ignore)
``image/segmentation/class/format``    bytes   ``png``
=====================================  ======  ===========================================

Records of the unlabelled ``pred`` split carry no ``image/segmentation/class/*`` keys.
"""

from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from skelgen_runtime.schemas.base import RecordSchema, bytes_feature, int64_feature

__all__ = ["SCHEMA", "IGNORE_LABEL", "encode_example", "decode"]

IGNORE_LABEL = 255

_IMAGE_SPEC = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/channels": tf.io.FixedLenFeature([], tf.int64),
}
_LABEL_SPEC = {
    "image/segmentation/class/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/segmentation/class/format": tf.io.FixedLenFeature([], tf.string),
}


def encode_example(
    *,
    image_bytes: bytes,
    image_format: str,
    filename: str,
    height: int,
    width: int,
    label_png: bytes | None,
) -> tf.train.Example:
    """Build one record. ``label_png`` is a single-channel PNG of class ids, or ``None`` (pred split)."""
    feature = {
        "image/encoded": bytes_feature(image_bytes),
        "image/filename": bytes_feature(filename.encode()),
        "image/format": bytes_feature(image_format.encode()),
        "image/height": int64_feature(height),
        "image/width": int64_feature(width),
        "image/channels": int64_feature(3),
    }
    if label_png is not None:
        feature["image/segmentation/class/encoded"] = bytes_feature(label_png)
        feature["image/segmentation/class/format"] = bytes_feature(b"png")
    return tf.train.Example(features=tf.train.Features(feature=feature))


def decode(parsed: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decode parsed features.

    Returns:
        ``image``: uint8 ``(H, W, 3)``; ``filename``: string scalar; and, for labelled records,
        ``label``: uint8 ``(H, W, 1)`` of class ids with 255 = ignore.
    """
    image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
    out = {"image": tf.ensure_shape(image, [None, None, 3]), "filename": parsed["image/filename"]}
    if "image/segmentation/class/encoded" in parsed:
        label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
        out["label"] = tf.ensure_shape(label, [None, None, 1])
    return out


SCHEMA = RecordSchema(
    name="segmentation",
    version=1,
    labelled_spec={**_IMAGE_SPEC, **_LABEL_SPEC},
    unlabelled_spec=dict(_IMAGE_SPEC),
    decode=decode,
)
