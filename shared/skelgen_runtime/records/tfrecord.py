"""TFRecord files written without TensorFlow: the framing, checksums and compression TensorFlow reads.

Each record is framed as (``tensorflow/core/lib/io/record_writer.cc``)::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). CRC-32C comes from
Google's ``google-crc32c`` package (Apache-2.0; SSE4.2 / ARMv8 instructions in its C extension).

``GZIP`` files are one gzip stream and ``ZLIB`` files one zlib stream of those bytes, which is what
``tf.data.TFRecordDataset(..., compression_type="GZIP"|"ZLIB")`` inflates. They are deflated by
ISA-L (the ``isal`` package), which at its level 1 compresses raw volumes about as small as zlib's
default level 6 in a tenth of the time (``benchmarks/run.py``, group ``brats``); the standard
``zlib`` module at level 1 stands in where ``isal`` is not installed.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import google_crc32c

_deflate: Any
try:  # the same API as zlib's
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal has wheels for the common platforms
    _deflate = zlib

__all__ = [
    "COMPRESSIONS",
    "COMPRESSION_LEVEL",
    "TFRecordFileWriter",
    "compressor",
    "deflate",
    "masked_crc32c",
    "check_records",
]

#: the ``compression`` values a writer accepts (``None`` writes plain records)
COMPRESSIONS = (None, "GZIP", "ZLIB")
#: deflate level of compressed shards (ISA-L's levels are 0-3; zlib's level 1 is its fastest)
COMPRESSION_LEVEL = 1
_WBITS = {"GZIP": 16 + zlib.MAX_WBITS, "ZLIB": zlib.MAX_WBITS}
_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    if isinstance(data, memoryview):  # google_crc32c takes bytes only: reuse the object a view spans whole
        whole = isinstance(data.obj, bytes) and data.nbytes == len(data.obj)
        data = bytes(data.obj) if whole else data.tobytes()  # bytes(a bytes object) is that object, no copy
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def deflate(data: bytes | memoryview, level: int = COMPRESSION_LEVEL) -> bytes:
    """``data`` as one zlib stream (what ``tf.io.decode_compressed(..., "ZLIB")`` and ``zlib.decompress``
    inflate), with ISA-L when it is installed, else zlib."""
    return _deflate.compress(data, level)


def compressor(compression: str, level: int = COMPRESSION_LEVEL) -> Any:
    """A ``compressobj`` writing ``compression`` (``"GZIP"`` or ``"ZLIB"``) with ISA-L, else zlib."""
    return _deflate.compressobj(level, _deflate.DEFLATED, _WBITS[compression])


class TFRecordFileWriter:
    """Write records to one TFRecord file; a context manager, like ``tf.io.TFRecordWriter``.

    The SHA-256 and size of the file's bytes are kept as they are written (:attr:`sha256`,
    :attr:`size`; final once closed), so nobody reads the file again to describe it.

    Args:
        path: the file to create (truncated if it exists).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        level: deflate level for the compressed formats.

    Raises:
        ValueError: an unknown ``compression``.
    """

    def __init__(self, path: Path | str, compression: str | None = None, level: int = COMPRESSION_LEVEL) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        self._file: BinaryIO = open(path, "wb")  # write: staged
        self._zip = compressor(compression, level) if compression else None
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
        self._emit(self._zip.compress(data) if self._zip is not None else data)

    def write(self, record: bytes | memoryview) -> None:
        """Append one record (a serialised ``tf.train.Example``, or any bytes)."""
        record = memoryview(record).cast("B")
        length = struct.pack("<Q", record.nbytes)
        self._put(length + struct.pack("<I", masked_crc32c(length)))
        self._put(record)
        self._put(struct.pack("<I", masked_crc32c(record)))

    def close(self, *, complete: bool = True) -> None:
        """Finish the compressed stream and close the file (``complete=False``: just close it)."""
        if self._file.closed:
            return
        try:
            if complete and self._zip is not None:
                self._emit(self._zip.flush())
        finally:
            self._file.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close(complete=error is None)  # a failed shard is deleted: no need to finish it


def _stream(path: Path | str, compression: str | None) -> BinaryIO:
    if compression == "GZIP":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "ZLIB":
        import io

        return io.BytesIO(zlib.decompress(Path(path).read_bytes()))
    return open(path, "rb")


def check_records(path: Path | str, compression: str | None = None) -> tuple[int, str | None]:
    """Read every record of a TFRecord file as TensorFlow does, checking both CRCs of each.

    Returns:
        How many records are whole, and None, or what is wrong where: ``"record 12 (byte 34567): its
        data does not match its CRC"``, ``"... is cut short"``, ... (bytes counted in the uncompressed stream).
    """
    count, offset = 0, 0
    try:
        with _stream(path, compression) as f:
            while True:
                head = f.read(12)
                if not head:
                    return count, None
                where = f"record {count + 1} (byte {offset})"
                if len(head) < 12:
                    return count, f"{where} is cut short: the file ends inside its length"
                (length,), (crc,) = struct.unpack("<Q", head[:8]), struct.unpack("<I", head[8:])
                if masked_crc32c(head[:8]) != crc:
                    return count, f"{where}: its length does not match its CRC"
                data = f.read(length)
                tail = f.read(4)
                if len(data) < length or len(tail) < 4:
                    return count, f"{where} is cut short: the file ends inside its data"
                if masked_crc32c(data) != struct.unpack("<I", tail)[0]:
                    return count, f"{where}: its data does not match its CRC"
                count, offset = count + 1, offset + 12 + length + 4
    except (OSError, EOFError, zlib.error) as err:  # a damaged compressed stream
        return count, f"record {count + 1} (byte {offset}): the {compression} stream is damaged ({err})"
