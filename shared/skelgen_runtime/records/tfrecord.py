"""TFRecord files written without TensorFlow: the framing, checksums and compression TensorFlow reads.

Each record is framed as (``tensorflow/core/lib/io/record_writer.cc``)::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). CRC-32C comes from the
``crc32c`` package (SSE4.2 / ARMv8 instructions, with a software fallback).

``ZLIB`` files are one zlib stream of those bytes. ``GZIP`` files are a series of gzip members,
one per :data:`GZIP_BLOCK` bytes of records, compressed by a few threads at once (zlib releases
the GIL), the way ``pigz --independent`` writes: gzip readers, ``tf.data.TFRecordDataset(...,
compression_type="GZIP")`` included, read concatenated members as one stream (RFC 1952, 2.2), and
a record may span members. Deflate looks back 32 KiB at most, so cutting every few MiB costs
almost nothing in size.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Sequence

from crc32c import crc32c

__all__ = ["COMPRESSIONS", "COMPRESSION_LEVEL", "GZIP_BLOCK", "TFRecordFileWriter", "masked_crc32c"]

#: the ``compression`` values a writer accepts (``None`` writes plain records)
COMPRESSIONS = (None, "GZIP", "ZLIB")
#: zlib level of compressed shards: level 1 takes a fraction of the default 6's time for files a
#: little larger (benchmarks/run.py), and readers do not care
COMPRESSION_LEVEL = 1
#: uncompressed bytes per gzip member
GZIP_BLOCK = 4 << 20
_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _gzip_member(parts: Sequence[memoryview], level: int) -> bytes:
    """``parts``, joined, as one complete gzip member."""
    zipper = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [zipper.compress(part) for part in parts]
    out.append(zipper.flush())
    return b"".join(out)


class TFRecordFileWriter:
    """Write records to one TFRecord file; a context manager, like ``tf.io.TFRecordWriter``.

    The SHA-256 and size of the file's bytes are kept as they are written (:attr:`sha256`,
    :attr:`size`; final once closed), so nobody reads the file again to describe it.

    Args:
        path: the file to create (truncated if it exists).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        level: zlib compression level for the compressed formats.
        threads: GZIP compression threads (default: the CPU count, at most 4).

    Raises:
        ValueError: an unknown ``compression``.
    """

    def __init__(self, path: Path | str, compression: str | None = None, level: int = COMPRESSION_LEVEL,
                 threads: int | None = None) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        self._file: BinaryIO = open(path, "wb")
        self._level = level
        self._zlib = zlib.compressobj(level) if compression == "ZLIB" else None
        self._pool = None
        if compression == "GZIP":
            self._threads = threads or min(4, os.cpu_count() or 1)
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="gzip")
        self._block: list[memoryview] = []
        self._block_size = 0
        self._members: deque[Future] = deque()
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written to the file so far."""
        return self._digest.hexdigest()

    def _emit(self, data: bytes | memoryview) -> None:
        self._digest.update(data)
        self.size += len(data)  # a byte-format view's len is its size
        self._file.write(data)

    def _put(self, data: bytes | memoryview) -> None:
        if self._pool is not None:
            view = memoryview(data)
            while view.nbytes:  # cut the stream into GZIP_BLOCK pieces (views: nothing is copied)
                take = min(view.nbytes, GZIP_BLOCK - self._block_size)
                self._block.append(view[:take])
                self._block_size += take
                view = view[take:]
                if self._block_size == GZIP_BLOCK:
                    self._compress_block()
        elif self._zlib is not None:
            self._emit(self._zlib.compress(data))
        else:
            self._emit(data)

    def _compress_block(self) -> None:
        if self._block:
            self._members.append(self._pool.submit(_gzip_member, self._block, self._level))
            self._block, self._block_size = [], 0
        while len(self._members) > self._threads:  # bounded: at most one block waiting per thread
            self._emit(self._members.popleft().result())

    def write(self, record: bytes | memoryview) -> None:
        """Append one record (a serialised ``tf.train.Example``, or any bytes)."""
        record = memoryview(record).cast("B")
        length = struct.pack("<Q", record.nbytes)
        self._put(length + struct.pack("<I", masked_crc32c(length)))
        self._put(record)
        self._put(struct.pack("<I", masked_crc32c(record)))

    def close(self, *, complete: bool = True) -> None:
        """Compress what is left, finish the stream and close the file (``complete=False``: just close)."""
        if self._file.closed:
            return
        try:
            if not complete:
                pass
            elif self._pool is not None:
                self._compress_block()
                while self._members:
                    self._emit(self._members.popleft().result())
            elif self._zlib is not None:
                self._emit(self._zlib.flush())
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            self._file.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close(complete=error is None)  # a failed shard is deleted: do not compress the rest of it
