"""Image classification records, with the keys of TF-slim's ``dataset_utils.py`` / Model Garden.

=========================  ======  ==============================================
key                        type    content
=========================  ======  ==============================================
``image/encoded``          bytes   the image file's bytes (JPEG or PNG)
``image/format``           bytes   ``jpeg`` or ``png``
``image/filename``         bytes   source file name (relative to the split)
``image/height``           int64   image height in pixels
``image/width``            int64   image width in pixels
``image/class/label``      int64   class id, 0-based
``image/class/text``       bytes   class name
=========================  ======  ==============================================

Records of the unlabelled ``pred`` split carry no ``image/class/*`` keys.
"""

from __future__ import annotations

from typing import Any, Mapping

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.records.example import Example
from skelgen_runtime.schemas.base import RecordSchema, decode_rgb, fixed

__all__ = ["SCHEMA", "encode_example", "decode"]

_IMAGE_SPEC = {
    "image/encoded": fixed("string"),
    "image/format": fixed("string"),
    "image/filename": fixed("string"),
    "image/height": fixed("int64"),
    "image/width": fixed("int64"),
}
_LABEL_SPEC = {
    "image/class/label": fixed("int64"),
    "image/class/text": fixed("string"),
}


def encode_example(
    *,
    image_bytes: bytes,
    image_format: str,
    filename: str,
    height: int,
    width: int,
    label: int | None,
    text: str | None,
) -> Example:
    """Build one record; ``label``/``text`` are ``None`` for unlabelled images."""
    feature = {
        "image/encoded": image_bytes,
        "image/format": image_format.encode(),
        "image/filename": filename.encode(),
        "image/height": height,
        "image/width": width,
    }
    if label is not None:
        feature["image/class/label"] = label
        feature["image/class/text"] = (text or "").encode()
    return SCHEMA.example(feature)


def decode(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Decode parsed features.

    Returns:
        ``image``: uint8 ``(H, W, 3)``; ``filename``: string scalar; and, for labelled records,
        ``label``: int32 scalar (0-based class id).
    """
    import tensorflow as tf

    image = decode_rgb(parsed)  # at a reduced DCT scale when the reader hints a smaller model size
    out = {"image": ensure_shape(image, [None, None, 3]), "filename": parsed["image/filename"]}
    if "image/class/label" in parsed:
        out["label"] = tf.cast(parsed["image/class/label"], tf.int32)
    return out


SCHEMA = RecordSchema(
    name="classification",
    version=1,
    labelled_fields={**_IMAGE_SPEC, **_LABEL_SPEC},
    unlabelled_fields=dict(_IMAGE_SPEC),
    decode=decode,
)
