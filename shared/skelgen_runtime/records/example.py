"""``tf.train.Example`` serialisation without TensorFlow, so that build workers never import it.

The wire format is protobuf's, from ``tensorflow/core/example/{example,feature}.proto``::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }    // each entry: { string key = 1; Feature value = 2; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }   // little-endian float32
    Int64List { repeated int64 value = 1 [packed = true]; }   // varints, negatives as 10 bytes

``tf.io.parse_example`` and ``tf.train.Example.FromString`` read what :meth:`Example.SerializeToString`
writes (tests compare both against TensorFlow's own encoder). Large values are kept as references
(e.g. a ``memoryview`` of a NumPy array) until the single join in ``SerializeToString``, so a
volume is copied once, not three times.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence, Union

__all__ = ["Buffer", "Example", "Feature", "bytes_feature", "float_feature", "int64_feature"]

#: anything ``bytes.join`` accepts: bytes, bytearray, a C-contiguous ``memoryview``
Buffer = Union[bytes, bytearray, memoryview]

# the tag bytes of the fields used here: (field number << 3) | wire type 2 (length-delimited)
_TAG_1, _TAG_2, _TAG_3 = b"\x0a", b"\x12", b"\x1a"


_ONE_BYTE = tuple(bytes([v]) for v in range(0x80))  # the varints of 0..127: most tags, keys and lengths


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values take their 64-bit two's complement (10 bytes)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _nbytes(value: Buffer) -> int:
    return value.nbytes if isinstance(value, memoryview) else len(value)


@dataclass(frozen=True)
class Feature:
    """One serialised ``tf.train.Feature``, held as the buffers that make it up (joined later)."""

    parts: tuple[Buffer, ...]
    size: int


def _wrap(tag: bytes, parts: Sequence[Buffer], size: int) -> tuple[list[Buffer], int]:
    """``parts`` (``size`` bytes in all) as one length-delimited field ``tag``."""
    head = tag + _varint(size)
    return [head, *parts], len(head) + size


def bytes_feature(values: Buffer | Iterable[Buffer]) -> Feature:
    """A ``BytesList`` feature of one value or a list of values (kept by reference, not copied)."""
    values = [values] if isinstance(values, (bytes, bytearray, memoryview)) else list(values)
    parts: list[Buffer] = []
    size = 0
    for value in values:
        value_parts, value_size = _wrap(_TAG_1, [value], _nbytes(value))
        parts += value_parts
        size += value_size
    parts, size = _wrap(_TAG_1, parts, size)  # Feature.bytes_list = 1
    return Feature(tuple(parts), size)


def int64_feature(values: int | Iterable[int]) -> Feature:
    """An ``Int64List`` feature (packed varints)."""
    values = [values] if isinstance(values, int) else list(values)
    packed = b"".join(_varint(int(v)) for v in values)
    parts, size = _wrap(_TAG_1, [packed], len(packed)) if values else ([], 0)
    parts, size = _wrap(_TAG_3, parts, size)  # Feature.int64_list = 3
    return Feature(tuple(parts), size)


def float_feature(values: float | Iterable[float]) -> Feature:
    """A ``FloatList`` feature (packed little-endian float32: values are rounded to float32)."""
    values = [values] if isinstance(values, (int, float)) else list(values)
    packed = struct.pack(f"<{len(values)}f", *(float(v) for v in values))
    parts, size = _wrap(_TAG_1, [packed], len(packed)) if values else ([], 0)
    parts, size = _wrap(_TAG_2, parts, size)  # Feature.float_list = 2
    return Feature(tuple(parts), size)


@dataclass(frozen=True)
class Example:
    """A ``tf.train.Example``: feature key -> :class:`Feature`, serialised in insertion order.

    ``SerializeToString`` keeps protobuf's method name so that code written for
    ``tf.train.Example`` (``encode_example(...).SerializeToString()``) works unchanged.
    """

    features: Mapping[str, Feature] = field(default_factory=dict)

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name)
        """The protobuf encoding: one join of every part, so large values are copied exactly once."""
        entries: list[Buffer] = []
        size = 0
        for key, feature in self.features.items():
            name = key.encode()
            key_parts, key_size = _wrap(_TAG_1, [name], len(name))
            value_parts, value_size = _wrap(_TAG_2, feature.parts, feature.size)
            entry_parts, entry_size = _wrap(_TAG_1, [*key_parts, *value_parts], key_size + value_size)
            entries += entry_parts
            size += entry_size
        parts, _ = _wrap(_TAG_1, entries, size)  # Example.features = 1
        return b"".join(parts)
