"""What every record schema provides: a declarative feature spec, a decoder, and the feature builders.

A schema module imports no TensorFlow: build workers use its ``encode_example`` (which returns a
:class:`~skelgen_runtime.records.example.Example`) and the build records its spec as JSON. The
``tf.io`` parse spec is made from the declaration the first time a reader asks for it, and each
``decode`` imports TensorFlow itself (it only ever runs inside ``tf.data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

from skelgen_runtime._shapes import ensure_shape
from skelgen_runtime.records.example import Example, bytes_feature, encode_features, float_feature, int64_feature

__all__ = [
    "FeatureField",
    "RecordSchema",
    "DECODE_SIZE",
    "DECODE_PLAN",
    "DecodePlan",
    "decode_rgb",
    "fixed",
    "varlen",
    "bytes_feature",
    "int64_feature",
    "float_feature",
    "spec_to_json",
]


@dataclass(frozen=True)
class FeatureField:
    """One key of a record: ``kind`` ``"fixed"`` or ``"varlen"``, a TensorFlow ``dtype`` name
    (``string``, ``int64`` or ``float32``) and, for fixed features, the ``shape`` of its value and the
    ``default`` a record without the key parses to (None: the key is required)."""

    kind: str
    dtype: str
    shape: tuple[int, ...] = ()
    default: Any = None

    def to_tf(self) -> Any:
        """The ``tf.io.FixedLenFeature`` / ``tf.io.VarLenFeature`` this field parses with."""
        import tensorflow as tf

        dtype = tf.as_dtype(self.dtype)
        if self.kind == "varlen":
            return tf.io.VarLenFeature(dtype)
        return tf.io.FixedLenFeature(list(self.shape), dtype, default_value=self.default)


def fixed(dtype: str, shape: tuple[int, ...] = (), default: Any = None) -> FeatureField:
    """A fixed-length feature (a scalar unless ``shape`` is given); ``default``: the value of a record
    without the key (records written before the key existed), else the key is required."""
    return FeatureField("fixed", dtype, tuple(shape), default)


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
        reads: the earlier versions whose records this schema still parses and decodes.
        labelled_fields: the keys of a labelled record (train/val), declared without TensorFlow.
        unlabelled_fields: the keys of a record without labels (the ``pred`` split).
        decode: parsed features -> dict of decoded tensors (documented by each schema).
        case_key: the string feature naming a record's case (volumes), by which cross-validation
            folds select records; None for schemas without one.
    """

    name: str
    version: int
    labelled_fields: Mapping[str, FeatureField]
    unlabelled_fields: Mapping[str, FeatureField]
    decode: Callable[[Mapping[str, Any]], dict[str, Any]]
    reads: tuple[int, ...] = ()
    case_key: str | None = None

    @property
    def readable_versions(self) -> tuple[int, ...]:
        """The versions whose records this schema reads: its own and :attr:`reads`."""
        return (self.version, *self.reads)

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

    def example(self, values: Mapping[str, Any]) -> Example:
        """One record of ``values`` (key -> Python or NumPy value), each key encoded as declared.

        Raises:
            ExampleEncodingError: a key this schema does not declare, or a value its feature cannot
                hold (a ``str`` for bytes, an int64 out of range, ...), naming the key.
        """
        return encode_features({key: f.dtype for key, f in self.labelled_fields.items()}, values)


#: a key a reader adds to parsed features: the ``(height, width)`` the pipeline will resize images to
DECODE_SIZE = "_decode_size"
#: a key a reader adds to parsed features: a :class:`DecodePlan`, decided once for a whole split
DECODE_PLAN = "_decode_plan"

_RATIOS = (8, 4, 2, 1)


def _ratio(stored: Sequence[int], target: Sequence[int]) -> int:
    """The largest JPEG DCT scale 1/r that keeps ``stored`` at least ``target`` on both sides."""
    room = min(int(stored[0]) // int(target[0]), int(stored[1]) // int(target[1]))
    return next(r for r in _RATIOS if room >= r or r == 1)


@dataclass(frozen=True)
class DecodePlan:
    """How every image of a split decodes, decided in Python when the build recorded that they all share
    one size and one encoding (:class:`~skelgen_runtime.records.image_stats.ImageStats`): the decoder,
    the JPEG scale and the decoded shape are then constants of the graph, with no per-example branch.

    Attributes:
        stored: ``(height, width)`` of every stored image (and of every segmentation label).
        format: ``"jpeg"`` or ``"png"``.
        ratio: the JPEG DCT scale 1/``ratio`` (1 for PNG).
    """

    stored: tuple[int, int]
    format: str
    ratio: int = 1

    @classmethod
    def choose(cls, stats: Any, target: Sequence[int] | None) -> DecodePlan | None:
        """The plan for a split with these ``ImageStats`` and a model of size ``target``; None when the images
        differ in size or encoding (or are neither JPEG nor PNG): they are then decided per example."""
        if stats is None or stats.uniform_size is None or stats.single_format not in ("jpeg", "png"):
            return None
        stored = stats.uniform_size
        ratio = _ratio(stored, target) if target is not None and stats.single_format == "jpeg" else 1
        return cls(stored, stats.single_format, ratio)

    @property
    def decoded(self) -> tuple[int, int]:
        """``(height, width)`` of the decoded image: libjpeg rounds a scaled side up."""
        return (-(-self.stored[0] // self.ratio), -(-self.stored[1] // self.ratio))


def decode_rgb(parsed: Mapping[str, Any]) -> Any:
    """The record's image as uint8 ``(H, W, 3)``.

    With a :data:`DECODE_PLAN` from the reader, the plan's decoder at its scale, with a static shape.
    Otherwise, when the reader hints the model size (:data:`DECODE_SIZE`) and the stored image
    (``image/height``, ``image/width``) is at least twice as large on both sides, a JPEG is decoded at
    1/2, 1/4 or 1/8 of its size in the DCT domain (``tf.io.decode_jpeg(ratio=...)``, the largest ratio
    that keeps it at least the model size), chosen per example: most of the decoding and all of a
    later downscale's work are skipped, and the scaled decode averages the pixels it drops, like an
    antialiased resize. PNGs decode in full.
    """
    import tensorflow as tf

    encoded = parsed["image/encoded"]
    plan = parsed.get(DECODE_PLAN)
    if isinstance(plan, DecodePlan):
        if plan.format == "jpeg":
            image = tf.io.decode_jpeg(encoded, channels=3, ratio=plan.ratio)
        else:
            image = tf.io.decode_png(encoded, channels=3)
        return ensure_shape(image, [*plan.decoded, 3])

    def full() -> tf.Tensor:
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    if DECODE_SIZE not in parsed:
        return ensure_shape(full(), [None, None, 3])
    target = tf.cast(parsed[DECODE_SIZE], tf.int64)
    room = tf.minimum(parsed["image/height"] // target[0], parsed["image/width"] // target[1])
    index = tf.cast(tf.where(room >= 8, 3, tf.where(room >= 4, 2, tf.where(room >= 2, 1, 0))), tf.int32)
    index = tf.where(tf.io.is_jpeg(encoded), index, 0)  # one branch op per image

    def scaled(ratio: int):
        return lambda: tf.io.decode_jpeg(encoded, channels=3, ratio=ratio)

    image = tf.switch_case(index, [full, scaled(2), scaled(4), scaled(8)])
    return ensure_shape(image, [None, None, 3])
