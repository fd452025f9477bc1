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

from typing import Any, Mapping

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.records.example import Example
from skelgen_runtime.schemas.base import DECODE_PLAN, DecodePlan, RecordSchema, decode_rgb, fixed

__all__ = ["SCHEMA", "IGNORE_LABEL", "encode_example", "decode"]

IGNORE_LABEL = 255

_IMAGE_SPEC = {
    "image/encoded": fixed("string"),
    "image/filename": fixed("string"),
    "image/format": fixed("string"),
    "image/height": fixed("int64"),
    "image/width": fixed("int64"),
    "image/channels": fixed("int64"),
}
_LABEL_SPEC = {
    "image/segmentation/class/encoded": fixed("string"),
    "image/segmentation/class/format": fixed("string"),
}


def encode_example(
    *,
    image_bytes: bytes,
    image_format: str,
    filename: str,
    height: int,
    width: int,
    label_png: bytes | None,
) -> Example:
    """Build one record. ``label_png`` is a single-channel PNG of class ids, or ``None`` (pred split)."""
    feature = {
        "image/encoded": image_bytes,
        "image/filename": filename.encode(),
        "image/format": image_format.encode(),
        "image/height": height,
        "image/width": width,
        "image/channels": 3,
    }
    if label_png is not None:
        feature["image/segmentation/class/encoded"] = label_png
        feature["image/segmentation/class/format"] = b"png"
    return SCHEMA.example(feature)


def decode(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Decode parsed features.

    Returns:
        ``image``: uint8 ``(H, W, 3)``; ``filename``: string scalar; and, for labelled records,
        ``label``: uint8 ``(H, W, 1)`` of class ids with 255 = ignore, at the stored image's size.
    """
    import tensorflow as tf

    image = decode_rgb(parsed)  # at a reduced DCT scale when the reader hints a smaller model size
    out = {"image": ensure_shape(image, [None, None, 3]), "filename": parsed["image/filename"]}
    if "image/segmentation/class/encoded" in parsed:
        label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
        plan = parsed.get(DECODE_PLAN)
        known = list(plan.stored) if isinstance(plan, DecodePlan) else [None, None]  # a label has its image's size
        out["label"] = ensure_shape(label, [*known, 1])
    return out


SCHEMA = RecordSchema(
    name="segmentation",
    version=1,
    labelled_fields={**_IMAGE_SPEC, **_LABEL_SPEC},
    unlabelled_fields=dict(_IMAGE_SPEC),
    decode=decode,
)
