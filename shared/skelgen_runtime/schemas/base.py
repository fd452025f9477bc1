"""What every record schema provides: a declarative feature spec, a decoder, and the feature builders.

A schema module imports no TensorFlow: build workers use its ``encode_example`` (which returns a
:class:`~skelgen_runtime.records.example.Example`) and the build records its spec as JSON. The
``tf.io`` parse spec is made from the declaration the first time a reader asks for it, and each
``decode`` imports TensorFlow itself (it only ever runs inside ``tf.data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping

from skelgen_runtime.records.example import bytes_feature, float_feature, int64_feature

__all__ = ["FeatureField", "RecordSchema", "fixed", "varlen", "bytes_feature", "int64_feature", "float_feature",
           "spec_to_json"]


@dataclass(frozen=True)
class FeatureField:
    """One key of a record: ``kind`` ``"fixed"`` or ``"varlen"``, a TensorFlow ``dtype`` name
    (``string``, ``int64`` or ``float32``) and, for fixed features, the ``shape`` of its value."""

    kind: str
    dtype: str
    shape: tuple[int, ...] = ()

    def to_tf(self) -> Any:
        """The ``tf.io.FixedLenFeature`` / ``tf.io.VarLenFeature`` this field parses with."""
        import tensorflow as tf

        dtype = tf.as_dtype(self.dtype)
        return tf.io.FixedLenFeature(list(self.shape), dtype) if self.kind == "fixed" else tf.io.VarLenFeature(dtype)


def fixed(dtype: str, shape: tuple[int, ...] = ()) -> FeatureField:
    """A fixed-length feature (a scalar unless ``shape`` is given)."""
    return FeatureField("fixed", dtype, tuple(shape))


def varlen(dtype: str) -> FeatureField:
    """A variable-length feature (parsed as a ``tf.SparseTensor``)."""
    return FeatureField("varlen", dtype)


def spec_to_json(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Describe a spec (of :class:`FeatureField`, or of ``tf.io`` features) as JSON, for ``dataset_info.json``."""
    out = {}
    for key, feature in spec.items():
        if isinstance(feature, FeatureField):
            out[key] = {"kind": feature.kind, "dtype": feature.dtype}
        else:
            kind = "varlen" if type(feature).__name__ == "VarLenFeature" else "fixed"
            out[key] = {"kind": kind, "dtype": feature.dtype.name}
    return out


@dataclass(frozen=True)
class RecordSchema:
    """A task's record format.

    Attributes:
        name: schema name written to ``dataset_info.json`` (e.g. ``"segmentation"``).
        version: bumped whenever keys or encodings change incompatibly.
        labelled_fields: the keys of a labelled record (train/val), declared without TensorFlow.
        unlabelled_fields: the keys of a record without labels (the ``pred`` split).
        decode: parsed features -> dict of decoded tensors (documented by each schema).
    """

    name: str
    version: int
    labelled_fields: Mapping[str, FeatureField]
    unlabelled_fields: Mapping[str, FeatureField]
    decode: Callable[[Mapping[str, Any]], dict[str, Any]]

    @cached_property
    def labelled_spec(self) -> dict[str, Any]:
        """The ``tf.io.parse_single_example`` spec of a labelled record (imports TensorFlow)."""
        return {key: f.to_tf() for key, f in self.labelled_fields.items()}

    @cached_property
    def unlabelled_spec(self) -> dict[str, Any]:
        """The ``tf.io.parse_single_example`` spec of an unlabelled record (imports TensorFlow)."""
        return {key: f.to_tf() for key, f in self.unlabelled_fields.items()}

    def spec(self, labelled: bool) -> Mapping[str, Any]:
        return self.labelled_spec if labelled else self.unlabelled_spec

    def fields(self, labelled: bool) -> Mapping[str, FeatureField]:
        return self.labelled_fields if labelled else self.unlabelled_fields
