"""TFRecord files written without TensorFlow: the framing, checksums and compression TensorFlow reads.

Each record is framed as (``tensorflow/core/lib/io/record_writer.cc``)::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). ``GZIP`` files are one
gzip stream and ``ZLIB`` files one zlib stream of those bytes, which is what ``tf.data.TFRecordDataset``
(``compression_type="GZIP"|"ZLIB"``) inflates. CRC-32C comes from the ``crc32c`` package (SSE4.2 /
ARMv8 instructions, with a software fallback).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from crc32c import crc32c

__all__ = ["COMPRESSIONS", "COMPRESSION_LEVEL", "TFRecordFileWriter", "masked_crc32c"]

#: the ``compression`` values a writer accepts (``None`` writes plain records)
COMPRESSIONS = (None, "GZIP", "ZLIB")
#: zlib level of compressed shards: level 1 costs a fraction of the default 6's time for files a
#: little larger (raw volumes: see benchmarks/run.py), and the reader does not care
COMPRESSION_LEVEL = 1
_WBITS = {"GZIP": 16 + zlib.MAX_WBITS, "ZLIB": zlib.MAX_WBITS}
_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class TFRecordFileWriter:
    """Write records to one TFRecord file; a context manager, like ``tf.io.TFRecordWriter``.

    The SHA-256 and size of the file's bytes are kept as they are written (:attr:`sha256`,
    :attr:`size`, final once closed), so nobody reads the file again to describe it.

    Args:
        path: the file to create (truncated if it exists).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        level: zlib compression level for the compressed formats.

    Raises:
        ValueError: an unknown ``compression``.
    """

    def __init__(self, path: Path | str, compression: str | None = None, level: int = COMPRESSION_LEVEL) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        self._file: BinaryIO = open(path, "wb")
        self._zip = zlib.compressobj(level, zlib.DEFLATED, _WBITS[compression]) if compression else None
        self._digest = hashlib.sha256()
        self.size = 0

    def _put(self, data: bytes | memoryview) -> None:
        out = self._zip.compress(data) if self._zip is not None else data
        self._digest.update(out)
        self.size += len(out) if isinstance(out, bytes) else memoryview(out).nbytes
        self._file.write(out)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written to the file so far."""
        return self._digest.hexdigest()

    def write(self, record: bytes | memoryview) -> None:
        """Append one record (a serialised ``tf.train.Example``, or any bytes)."""
        length = struct.pack("<Q", len(record) if isinstance(record, bytes) else memoryview(record).nbytes)
        self._put(length + struct.pack("<I", masked_crc32c(length)))
        self._put(record)
        self._put(struct.pack("<I", masked_crc32c(record)))

    def close(self) -> None:
        """Finish the compressed stream (if any) and close the file."""
        if self._file.closed:
            return
        try:
            if self._zip is not None:
                tail = self._zip.flush()
                self._digest.update(tail)
                self.size += len(tail)
                self._file.write(tail)
        finally:
            self._file.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
