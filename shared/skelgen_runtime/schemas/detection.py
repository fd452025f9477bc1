"""Object detection records, with the keys of the TF Object Detection API's ``create_coco_tf_record.py``.

===========================================  ======  ==============================================
key                                          type    content
===========================================  ======  ==============================================
``image/encoded``                            bytes   the image file's bytes (JPEG or PNG)
``image/format``                             bytes   ``jpeg`` or ``png``
``image/filename``                           bytes   source file name (``SPLIT/NAME.jpg``)
``image/source_id``                          bytes   the image's id in the source (COCO ``image.id``)
``image/key/sha256``                         bytes   hex SHA-256 of ``image/encoded``
``image/height``, ``image/width``            int64   image size in pixels
``image/object/bbox/ymin|xmin|ymax|xmax``    float   per object, varlen, normalised to ``[0, 1]``
``image/object/class/label``                 int64   per object, varlen, 1-based class id
``image/object/class/text``                  bytes   per object, varlen, class name
``image/object/is_crowd``                    int64   per object, varlen, 0 or 1
``image/object/area``                        float   per object, varlen, area in pixels (written
                                                     as float: an int64 list breaks float parsing)
``image/object/difficult``                   int64   optional, per object, varlen, 0 or 1
===========================================  ======  ==============================================

Records of the unlabelled ``pred`` split carry only the ``image/*`` keys (no ``image/object/*``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.records.example import Example
from skelgen_runtime.schemas.base import RecordSchema, decode_rgb, fixed, varlen

__all__ = ["SCHEMA", "encode_example", "decode"]

_IMAGE_SPEC = {
    "image/encoded": fixed("string"),
    "image/format": fixed("string"),
    "image/filename": fixed("string"),
    "image/source_id": fixed("string"),
    "image/key/sha256": fixed("string"),
    "image/height": fixed("int64"),
    "image/width": fixed("int64"),
}
_OBJECT_SPEC = {
    "image/object/bbox/xmin": varlen("float32"),
    "image/object/bbox/xmax": varlen("float32"),
    "image/object/bbox/ymin": varlen("float32"),
    "image/object/bbox/ymax": varlen("float32"),
    "image/object/class/label": varlen("int64"),
    "image/object/class/text": varlen("string"),
    "image/object/is_crowd": varlen("int64"),
    "image/object/area": varlen("float32"),
    "image/object/difficult": varlen("int64"),
}


def encode_example(
    *,
    image_bytes: bytes,
    image_format: str,
    filename: str,
    source_id: str,
    height: int,
    width: int,
    boxes: Sequence[Sequence[float]] | None,
    labels: Sequence[int] = (),
    texts: Sequence[str] = (),
    is_crowd: Sequence[int] = (),
    areas: Sequence[float] = (),
    difficult: Sequence[int] | None = None,
) -> Example:
    """Build one record.

    Args:
        boxes: per object ``[ymin, xmin, ymax, xmax]`` normalised to ``[0, 1]``, or ``None`` for an
            unlabelled (``pred``) record, which then carries only the image keys. An empty list is a
            labelled image without objects.
        labels: per object 1-based class id; ``texts`` the class names.
        is_crowd: per object 0/1 (COCO ``iscrowd``); ``areas`` per object area in pixels.
        difficult: optional per object 0/1 (VOC ``difficult``).
    """
    feature = {
        "image/encoded": image_bytes,
        "image/format": image_format.encode(),
        "image/filename": filename.encode(),
        "image/source_id": str(source_id).encode(),
        "image/key/sha256": hashlib.sha256(image_bytes).hexdigest().encode(),
        "image/height": height,
        "image/width": width,
    }
    if boxes is not None:
        n = len(boxes)
        lengths = {len(labels), len(texts), len(is_crowd), len(areas)}
        if difficult is not None:
            lengths.add(len(difficult))
        if lengths != {n}:
            raise ValueError(f"per-object lists of {filename} have different lengths ({n} boxes)")
        for k, name in enumerate(("ymin", "xmin", "ymax", "xmax")):
            feature[f"image/object/bbox/{name}"] = [float(b[k]) for b in boxes]
        feature["image/object/class/label"] = list(labels)
        feature["image/object/class/text"] = [t.encode() for t in texts]
        feature["image/object/is_crowd"] = list(is_crowd)
        feature["image/object/area"] = [float(a) for a in areas]  # float, never int64
        if difficult is not None:
            feature["image/object/difficult"] = list(difficult)
    return SCHEMA.example(feature)


def _dense(parsed: Mapping[str, Any], key: str) -> Any:
    import tensorflow as tf

    value = parsed[key]
    return tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value


def decode(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Decode parsed features.

    Returns:
        Always: ``image`` uint8 ``(H, W, 3)``; ``filename`` and ``source_id`` string scalars;
        ``height`` and ``width`` int32 scalars (of the stored image).
        For labelled records also, with ``N`` objects:

        - ``boxes``: float32 ``(N, 4)``, ``[ymin, xmin, ymax, xmax]`` normalised to ``[0, 1]``
          (the Object Detection API decoder's order);
        - ``classes``: int32 ``(N,)``, 1-based class ids;
        - ``is_crowd``: bool ``(N,)``;
        - ``area``: float32 ``(N,)``, object area in pixels of the original image;
        - ``difficult``: bool ``(N,)`` (all False when the record has no difficult flags).
    """
    import tensorflow as tf

    image = decode_rgb(parsed)  # at a reduced DCT scale when the reader hints a smaller model size
    out = {
        "image": ensure_shape(image, [None, None, 3]),
        "filename": parsed["image/filename"],
        "source_id": parsed["image/source_id"],
        "height": tf.cast(parsed["image/height"], tf.int32),
        "width": tf.cast(parsed["image/width"], tf.int32),
    }
    if "image/object/class/label" in parsed:
        coords = [_dense(parsed, f"image/object/bbox/{k}") for k in ("ymin", "xmin", "ymax", "xmax")]
        out["boxes"] = tf.reshape(tf.stack(coords, axis=-1), [-1, 4])
        out["classes"] = tf.cast(_dense(parsed, "image/object/class/label"), tf.int32)
        out["is_crowd"] = tf.cast(_dense(parsed, "image/object/is_crowd"), tf.bool)
        out["area"] = _dense(parsed, "image/object/area")
        n = tf.shape(out["classes"])[0]
        key = "image/object/difficult"
        difficult = _dense(parsed, key) if key in parsed else tf.zeros([0], tf.int64)
        # the key is optional: an absent list decodes as all False rather than a length mismatch
        out["difficult"] = tf.cond(
            tf.equal(tf.shape(difficult)[0], n),
            lambda: tf.cast(difficult, tf.bool),
            lambda: tf.zeros([n], tf.bool),
        )
    return out


SCHEMA = RecordSchema(
    name="detection",
    version=1,
    labelled_fields={**_IMAGE_SPEC, **_OBJECT_SPEC},
    unlabelled_fields=dict(_IMAGE_SPEC),
    decode=decode,
)
