"""``tf.train.Example`` serialisation without TensorFlow, so that build workers never import it.

The wire format is protobuf's, from ``tensorflow/core/example/{example,feature}.proto``::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }    // each entry: { string key = 1; Feature value = 2; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }   // little-endian float32
    Int64List { repeated int64 value = 1 [packed = true]; }   // varints, negatives as 10 bytes

``tf.io.parse_example`` and ``tf.train.Example.FromString`` read what :meth:`Example.SerializeToString`
writes (tests compare both against TensorFlow's own encoder); :func:`read_features` reads a few keys
back out of a serialised example (what a build records about its images), without copying values. Large values are kept as references
(e.g. a ``memoryview`` of a NumPy array) until the single join in ``SerializeToString``, so a
volume is copied once, not three times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np

from skelgen_runtime.errors import ExampleEncodingError

__all__ = [
    "Buffer",
    "Example",
    "FEATURE_OF_DTYPE",
    "Feature",
    "bytes_feature",
    "encode_features",
    "float_feature",
    "int64_feature",
    "read_features",
]

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


def _refuse(value: object, expected: str) -> ExampleEncodingError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    hint = " (encode text first, e.g. value.encode())" if isinstance(value, str) else ""
    return ExampleEncodingError(f"{type(value).__name__} {shown} is not {expected}{hint}")


def _listed(values: Any, scalar: tuple[type, ...]) -> list[Any]:
    """``values`` as a list: one scalar, a NumPy array (any shape, flattened) or an iterable."""
    if isinstance(values, scalar):
        return [values]
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist() if values.dtype != object else list(values.reshape(-1))
    if isinstance(values, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(values, Iterable):
        return [values]  # refused by the caller, by type
    return list(values)


def bytes_feature(values: Buffer | Iterable[Buffer]) -> Feature:
    """A ``BytesList`` feature of one value or a list of values (kept by reference, not copied).

    Values are ``bytes`` (NumPy's ``bytes_`` too), ``bytearray`` or a C-contiguous ``memoryview``; a
    ``str`` is refused (:class:`ExampleEncodingError`), as ``tf.train.BytesList`` refuses it.
    """
    values = _listed(values, (bytes, bytearray, memoryview))
    parts: list[Buffer] = []
    size = 0
    for value in values:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _refuse(value, "bytes")
        if isinstance(value, memoryview) and not value.c_contiguous:
            raise ExampleEncodingError("a memoryview that is not C-contiguous (copy it with .tobytes())")
        value_parts, value_size = _wrap(_TAG_1, [value], _nbytes(value))
        parts += value_parts
        size += value_size
    parts, size = _wrap(_TAG_1, parts, size)  # Feature.bytes_list = 1
    return Feature(tuple(parts), size)


_INT64 = (-(1 << 63), (1 << 63) - 1)


def _int64(value: object) -> int:
    if not isinstance(value, (int, np.integer, np.bool_)):  # bool is an int, as tf.train.Int64List takes it
        raise _refuse(value, "an integer")
    number = int(value)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ExampleEncodingError(f"{number} is out of the int64 range [-2**63, 2**63 - 1]")
    return number


def int64_feature(values: int | Iterable[int]) -> Feature:
    """An ``Int64List`` feature (packed varints) of Python or NumPy integers (a scalar, a list, an array).

    Floats, strings and values outside the int64 range are refused (:class:`ExampleEncodingError`).
    """
    values = _listed(values, (int, np.integer, np.bool_))
    packed = b"".join(_varint(_int64(v)) for v in values)
    parts, size = _wrap(_TAG_1, [packed], len(packed)) if values else ([], 0)
    parts, size = _wrap(_TAG_3, parts, size)  # Feature.int64_list = 3
    return Feature(tuple(parts), size)


def float_feature(values: float | Iterable[float]) -> Feature:
    """A ``FloatList`` feature (packed little-endian float32) of Python or NumPy numbers.

    Values are rounded to float32 as ``tf.train.FloatList`` does (beyond its range: ``inf``); strings
    and other types are refused (:class:`ExampleEncodingError`).
    """
    values = _listed(values, (int, float, np.integer, np.floating, np.bool_))
    for value in values:
        if not isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
            raise _refuse(value, "a number")
    with np.errstate(over="ignore"):
        packed = np.asarray(values, dtype="<f4").tobytes()
    parts, size = _wrap(_TAG_1, [packed], len(packed)) if values else ([], 0)
    parts, size = _wrap(_TAG_2, parts, size)  # Feature.float_list = 2
    return Feature(tuple(parts), size)


#: the feature builder of each ``dtype`` a schema declares (``tf.io`` names)
FEATURE_OF_DTYPE: dict[str, Callable[[Any], Feature]] = {
    "string": bytes_feature,
    "int64": int64_feature,
    "float32": float_feature,
}


def encode_features(dtypes: Mapping[str, str], values: Mapping[str, Any]) -> Example:
    """An :class:`Example` of ``values`` (key -> value), each encoded as the ``dtypes`` mapping declares.

    Raises:
        ExampleEncodingError: a key that is not declared, or a value its feature cannot hold; the
            message names the key.
    """
    features = {}
    for key, value in values.items():
        if key not in dtypes:
            raise ExampleEncodingError(f"{key}: not a key of this record ({', '.join(dtypes)})")
        try:
            features[key] = FEATURE_OF_DTYPE[dtypes[key]](value)
        except ExampleEncodingError as err:
            raise ExampleEncodingError(f"{key}: {err}") from None
    return Example(features)


@dataclass(frozen=True)
class Example:
    """A ``tf.train.Example``: feature key -> :class:`Feature`, serialised in insertion order.

    ``SerializeToString`` keeps protobuf's method name so that code written for
    ``tf.train.Example`` (``encode_example(...).SerializeToString()``) works unchanged.
    """

    features: Mapping[str, Feature] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, feature in self.features.items():
            if not isinstance(key, str):
                raise ExampleEncodingError(f"{key!r}: feature keys are str")
            if not isinstance(feature, Feature):
                raise ExampleEncodingError(
                    f"{key}: {type(feature).__name__} is not a Feature (build it with "
                    "bytes_feature, int64_feature or float_feature)"
                )

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


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterable[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of one message: an int for varints, a ``memoryview`` otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + width], pos + width
        else:
            raise ValueError(f"wire type {wire} is not used by tf.train.Example")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def _int64_value(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature_values(feature: memoryview) -> list[Any]:
    """The values of one serialised ``tf.train.Feature``: ``memoryview`` for bytes, ``int``, ``float``."""
    values: list[Any] = []
    for kind, _, listed in _fields(feature):  # the oneof: 1 bytes_list, 2 float_list, 3 int64_list
        for number, wire, value in _fields(listed):
            if number != 1:
                continue
            if kind == 1:
                values.append(value)
            elif kind == 2:
                values += np.frombuffer(value, "<f4").tolist()  # packed, or one unpacked float (wire type 5)
            elif wire == 0:
                values.append(_int64_value(value))
            else:
                pos = 0
                while pos < len(value):
                    number, pos = _read_varint(value, pos)
                    values.append(_int64_value(number))
    return values


def read_features(record: Buffer, keys: Iterable[str]) -> dict[str, list[Any]]:
    """The values of ``keys`` in a serialised ``tf.train.Example`` (keys it lacks are left out).

    Bytes values come back as ``memoryview`` slices of ``record`` (no copy), int64 and float values as
    Python numbers. Protobuf's rules hold: a repeated map key keeps its last value.

    Raises:
        ValueError: ``record`` is not a well-formed serialised example.
    """
    wanted = set(keys)
    found: dict[str, list[Any]] = {}
    for number, wire, features in _fields(memoryview(record)):
        if number != 1 or wire != 2:
            continue
        for _, _, entry in _fields(features):
            key, value = None, None
            for part, _, content in _fields(entry):
                if part == 1:
                    key = bytes(content).decode()
                elif part == 2:
                    value = content
            if key in wanted:
                found[key] = _feature_values(value) if value is not None else []
    return found
