"""What every record schema provides, and the helpers that build ``tf.train.Example`` features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import tensorflow as tf

__all__ = ["RecordSchema", "bytes_feature", "int64_feature", "float_feature", "spec_to_json"]


def bytes_feature(values: bytes | list[bytes]) -> tf.train.Feature:
    values = values if isinstance(values, list) else [values]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def int64_feature(values: int | list[int]) -> tf.train.Feature:
    values = values if isinstance(values, list) else [values]
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values: float | list[float]) -> tf.train.Feature:
    values = values if isinstance(values, list) else [values]
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def spec_to_json(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Describe a ``parse_single_example`` spec as JSON, for ``dataset_info.json``."""
    out = {}
    for key, feature in spec.items():
        kind = "fixed" if isinstance(feature, tf.io.FixedLenFeature) else "varlen"
        out[key] = {"kind": kind, "dtype": feature.dtype.name}
    return out


@dataclass(frozen=True)
class RecordSchema:
    """A task's record format.

    Attributes:
        name: schema name written to ``dataset_info.json`` (e.g. ``"segmentation"``).
        version: bumped whenever keys or encodings change incompatibly.
        labelled_spec: the ``tf.io.parse_single_example`` spec of a labelled record (train/val).
        unlabelled_spec: the spec of a record without labels (the ``pred`` split).
        decode: parsed features -> dict of decoded tensors (documented by each schema).
    """

    name: str
    version: int
    labelled_spec: Mapping[str, Any]
    unlabelled_spec: Mapping[str, Any]
    decode: Callable[[Mapping[str, tf.Tensor]], dict[str, tf.Tensor]]

    def spec(self, labelled: bool) -> Mapping[str, Any]:
        return self.labelled_spec if labelled else self.unlabelled_spec
