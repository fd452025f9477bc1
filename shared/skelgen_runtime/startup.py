"""Importing TensorFlow without its start-up noise, and running TensorFlow without its known harmless
warnings, keeping every real warning and error.

``import tensorflow`` (2.21) writes, twice, "WARNING: All log messages before absl::InitializeLog()
is called are written to STDERR" and an ``I0000 ... port.cc] oneDNN custom operations are on ...``
line straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says (only
``TF_ENABLE_ONEDNN_OPTS=0``, which turns the oneDNN kernels off, removes them). Some of TensorFlow's
own code paths then warn about themselves on every use, with nothing a user can change (see
:data:`KNOWN_NOISE`). :func:`native_log_filter` runs a block with descriptor 2 redirected into a pipe
and forwards, as it comes, everything except the absl line, informational (``I``-level) log lines
with their continuation lines, and the :data:`KNOWN_NOISE` warnings. Other warnings (``W``),
errors (``E``) and Python's own output pass unchanged. :func:`import_tensorflow` imports TensorFlow
and Keras inside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from types import ModuleType
from typing import Iterator

__all__ = ["import_tensorflow", "filter_startup_noise", "native_log_filter", "KNOWN_NOISE"]

_ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LOG_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")

#: warnings TensorFlow 2.21 prints about its own code paths, whatever the caller does: (the log line's
#: source and message start, why it is harmless)
KNOWN_NOISE: tuple[tuple[bytes, str], ...] = (
    (
        rb"tf_tfl_flatbuffer_helpers\.cc:\d+\] Ignored (?:output_format|drop_control_dependency)\.",
        "TFLiteConverter's Python side always sets output_format=TFLITE and drop_control_dependency=True "
        "(tensorflow/lite/python/convert.py), which the converter's C++ side then reports as ignored",
    ),
    (
        rb"dataset\.cc:\d+\] Input of GeneratorDatasetOp::Dataset will not be optimized",
        "tf.distribute's MultiDeviceIterator (MirroredStrategy input) feeds each device from a generator "
        "dataset that tf.data's graph rewrites cannot serialise; the input pipeline itself is optimised",
    ),
    (
        rb"local_rendezvous\.cc:\d+\] Local rendezvous is aborting with status: CANCELLED: GetNextFromShard was "
        rb"cancelled",
        "when an epoch ends before its data does (train.steps_per_epoch), tf.distribute's MultiDeviceIterator "
        "is destroyed with a shard read still prefetching, and the cancelled read reports itself; no batch "
        "of a finished epoch is lost",
    ),
)
_NOISE = re.compile(rb"|".join(rb"(?:" + pattern + rb")" for pattern, _ in KNOWN_NOISE))


class _Filter:
    """Drops noise from a stream of lines; a dropped log line takes its continuation lines with it."""

    def __init__(self) -> None:
        self.dropping = False

    def line(self, line: bytes) -> bytes:
        if line.rstrip(b"\r\n") == _ABSL:
            self.dropping = False
            return b""
        if _LOG_LINE.match(line):
            self.dropping = line.startswith(b"I") or bool(_NOISE.search(line))
        return b"" if self.dropping else line


def filter_startup_noise(data: bytes) -> bytes:
    """``data`` without the absl notice, informational log lines and :data:`KNOWN_NOISE` (and the lines
    continuing them)."""
    keep = _Filter()
    return b"".join(keep.line(line) for line in data.splitlines(keepends=True))


@contextlib.contextmanager
def native_log_filter() -> Iterator[None]:
    """Run the block with file descriptor 2 filtered (:func:`filter_startup_noise`, line by line as it comes).

    Lines pass on as soon as they end (a partial line that cannot be a log line at once), so output is
    not held back; everything written before the block ends is forwarded before it returns. Without
    a real descriptor 2 (embedded interpreters), the block runs unfiltered.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()

    def pump() -> None:  # read while the block runs, so a chatty block can never fill the pipe and block
        keep, pending = _Filter(), b""
        while chunk := os.read(read_end, 1 << 16):
            lines = (pending + chunk).splitlines(keepends=True)
            pending = lines.pop() if not lines[-1].endswith((b"\n", b"\r")) else b""
            out = b"".join(keep.line(line) for line in lines)
            if pending and pending[:1] not in b"IWEF":  # not a log line: pass it on now (progress output)
                out, pending = out + pending, b""
            if out:
                os.write(saved, out)
        if pending:
            os.write(saved, keep.line(pending))
        os.close(read_end)

    reader = threading.Thread(target=pump, daemon=True, name="skelgen-stderr-filter")
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees the end
        reader.join(timeout=5)  # a child process that inherited the pipe keeps it open: the reader goes on
        if not reader.is_alive():
            os.close(saved)


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` (and Keras) with the start-up noise filtered out; returns ``tensorflow``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_log_filter():
        import keras  # noqa: F401  (Keras 3 on the TensorFlow backend imports TensorFlow itself)
        import tensorflow
    return tensorflow
