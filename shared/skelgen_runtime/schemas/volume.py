"""Multi-modal 3D segmentation records (BraTS and similar): one case per record, lossless.

===============================  ======  =========================================================
key                              type    content
===============================  ======  =========================================================
``volume/encoded``               bytes   the modalities as one raw little-endian array ``(D, H, W, C)``
                                         in ``volume/dtype`` (the files' own dtype: nothing rounded),
                                         deflated as one zlib stream when ``volume/format`` is ``zlib``
``volume/format``                bytes   ``zlib`` (written since version 2) or ``raw`` (version 1:
                                         records without the key)
``volume/dtype``                 bytes   NumPy dtype name of ``volume/encoded``, one of :data:`DTYPES`
``volume/shape``                 int64   ``[D, H, W, C]``
``volume/spacing``               float   voxel size in mm, ``[D, H, W]`` order
``volume/affine``                float   the NIfTI affine (voxel ``(i, j, k)`` -> mm), 16 values, row-major
``volume/nifti_header``          bytes   the reference image's NIfTI header (348 bytes for NIfTI-1)
``volume/case_id``               bytes   the case id, e.g. ``BraTS2021_00000``
``volume/modalities``            bytes   comma-separated modality names in channel order
``volume/release``               bytes   which layout the case came from, e.g. ``brats2021``
``volume/label/encoded``         bytes   raw ``uint8`` array ``(D, H, W)`` of contiguous training ids,
                                         deflated like the volume when ``volume/label/format`` is ``zlib``
``volume/label/format``          bytes   ``zlib`` (version 2) or ``raw`` (version 1)
===============================  ======  =========================================================

Axes: arrays are stored ``(D, H, W)`` = NIfTI ``(k, j, i)``, i.e. the NIfTI data array transposed
with ``(2, 1, 0)``, so that ``volume[d]`` is the ``d``-th axial slice of a BraTS volume.
:func:`to_nifti_axes` turns a ``(D, H, W)`` array back into the NIfTI array order.

Records of unlabelled cases carry no ``volume/label/*`` keys. Raw volumes compress several-fold: since
version 2 each array is deflated inside its record (zlib, the layout of TensorFlow Datasets'
``Tensor(encoding="zlib")``) and the shards themselves are plain TFRecords (:data:`COMPRESSION`), which
any TFRecord reader, ``tfds.builder_from_directory`` included, opens; version 1 shards (raw arrays in
GZIP-compressed shards) are still read.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from skelgen_runtime.records.example import Example
from skelgen_runtime.records.tfrecord import deflate
from skelgen_runtime.schemas.base import RecordSchema, fixed

__all__ = ["SCHEMA", "NAME", "COMPRESSION", "DTYPES", "encode_example", "decode", "to_nifti_axes", "from_nifti_axes"]

NAME = "volume_segmentation"
#: the shards' own compression: none (the arrays are deflated inside the records)
COMPRESSION = None
#: ``volume/format`` / ``volume/label/format`` of a deflated array (version 2), and of a raw one (version 1)
DEFLATED, RAW = "zlib", "raw"
#: dtypes ``volume/encoded`` may hold (what ``tf.io.decode_raw`` can read)
DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")

_VOLUME_SPEC = {
    "volume/encoded": fixed("string"),
    "volume/format": fixed("string", default=RAW),
    "volume/dtype": fixed("string"),
    "volume/shape": fixed("int64", (4,)),
    "volume/spacing": fixed("float32", (3,)),
    "volume/affine": fixed("float32", (16,)),
    "volume/nifti_header": fixed("string"),
    "volume/case_id": fixed("string"),
    "volume/modalities": fixed("string"),
    "volume/release": fixed("string"),
}
_LABEL_SPEC = {
    "volume/label/encoded": fixed("string"),
    "volume/label/format": fixed("string"),
}


def to_nifti_axes(array: np.ndarray) -> np.ndarray:
    """``(D, H, W, ...)`` record order -> NIfTI ``(i, j, k, ...)`` array order (a view)."""
    return np.swapaxes(array, 0, 2)


def from_nifti_axes(array: np.ndarray) -> np.ndarray:
    """NIfTI ``(i, j, k, ...)`` array order -> ``(D, H, W, ...)`` record order (a view)."""
    return np.swapaxes(array, 0, 2)


def _raw_bytes(array: np.ndarray) -> memoryview:
    """The little-endian bytes of ``array`` in C order, as a view: copied only if not already laid out so."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return little.reshape(-1).view(np.uint8).data


def encode_example(
    *,
    volume: np.ndarray,
    spacing: Sequence[float],
    affine: np.ndarray,
    nifti_header: bytes,
    case_id: str,
    modalities: Sequence[str],
    release: str,
    label: np.ndarray | None,
) -> Example:
    """Build one record.

    Args:
        volume: ``(D, H, W, C)`` in one of :data:`DTYPES`.
        spacing: mm per voxel along D, H, W.
        affine: ``(4, 4)`` NIfTI affine.
        nifti_header: header bytes to write predictions with.
        label: ``(D, H, W)`` uint8 training ids, or ``None`` for an unlabelled case.
    """
    if volume.ndim != 4 or volume.shape[-1] != len(modalities):
        raise ValueError(f"volume of shape {volume.shape} does not hold {len(modalities)} modalities (D, H, W, C)")
    if volume.dtype.name not in DTYPES:
        raise ValueError(f"volume dtype {volume.dtype} is not one of {DTYPES}")
    if label is not None and (label.shape != volume.shape[:3] or label.dtype != np.uint8):
        raise ValueError(f"label must be uint8 {volume.shape[:3]}, got {label.dtype} {label.shape}")
    feature = {
        "volume/encoded": deflate(_raw_bytes(volume)),
        "volume/format": DEFLATED.encode(),
        "volume/dtype": volume.dtype.name.encode(),
        "volume/shape": [int(s) for s in volume.shape],
        "volume/spacing": [float(s) for s in spacing],
        "volume/affine": [float(v) for v in np.asarray(affine, dtype=np.float64).reshape(16)],
        "volume/nifti_header": bytes(nifti_header),
        "volume/case_id": case_id.encode(),
        "volume/modalities": ",".join(modalities).encode(),
        "volume/release": release.encode(),
    }
    if label is not None:
        feature["volume/label/encoded"] = deflate(_raw_bytes(label))
        feature["volume/label/format"] = DEFLATED.encode()
    return SCHEMA.example(feature)


def _inflated(encoded: Any, fmt: Any) -> Any:
    """The raw bytes of an array stored in ``fmt`` (:data:`DEFLATED` or :data:`RAW`)."""
    import tensorflow as tf

    return tf.cond(
        tf.equal(fmt, DEFLATED), lambda: tf.io.decode_compressed(encoded, compression_type="ZLIB"), lambda: encoded
    )


def _decode_volume(encoded: Any, dtype: Any) -> Any:
    """Raw bytes in any of :data:`DTYPES` -> flat float32 (exact for the integer types up to 16 bits and float32)."""
    import tensorflow as tf

    names = tf.constant(DTYPES)
    index = tf.argmax(tf.cast(tf.equal(names, dtype), tf.int32), output_type=tf.int32)
    tf.debugging.assert_equal(tf.reduce_any(tf.equal(names, dtype)), True, message="volume/dtype is not a known dtype")
    branches = [
        (lambda dt=dt: tf.cast(tf.io.decode_raw(encoded, tf.as_dtype(dt), little_endian=True), tf.float32))
        for dt in DTYPES
    ]
    return tf.switch_case(index, branches)


def decode(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Decode parsed features.

    Returns:
        ``image``: float32 ``(D, H, W, C)`` (the stored values, cast); ``shape``: int32 ``[4]``;
        ``spacing``: float32 ``[3]`` (mm, D/H/W); ``affine``: float32 ``(4, 4)``; ``nifti_header``,
        ``case_id``, ``filename`` (= case id), ``modalities``, ``release``, ``dtype``: string scalars;
        and, for labelled records, ``label``: uint8 ``(D, H, W, 1)`` of training ids.
    """
    import tensorflow as tf

    shape = tf.cast(parsed["volume/shape"], tf.int32)
    raw = _inflated(parsed["volume/encoded"], parsed["volume/format"])
    image = tf.reshape(_decode_volume(raw, parsed["volume/dtype"]), shape)
    out = {
        "image": tf.ensure_shape(image, [None, None, None, None]),
        "shape": shape,
        "spacing": parsed["volume/spacing"],
        "affine": tf.reshape(parsed["volume/affine"], [4, 4]),
        "nifti_header": parsed["volume/nifti_header"],
        "case_id": parsed["volume/case_id"],
        "filename": parsed["volume/case_id"],
        "modalities": parsed["volume/modalities"],
        "release": parsed["volume/release"],
        "dtype": parsed["volume/dtype"],
    }
    if "volume/label/encoded" in parsed:
        raw_label = _inflated(parsed["volume/label/encoded"], parsed["volume/label/format"])
        label = tf.reshape(tf.io.decode_raw(raw_label, tf.uint8), tf.concat([shape[:3], [1]], 0))
        out["label"] = tf.ensure_shape(label, [None, None, None, 1])
    return out


SCHEMA = RecordSchema(
    name=NAME,
    version=2,
    reads=(1,),
    labelled_fields={**_VOLUME_SPEC, **_LABEL_SPEC},
    unlabelled_fields=dict(_VOLUME_SPEC),
    decode=decode,
    case_key="volume/case_id",
)
