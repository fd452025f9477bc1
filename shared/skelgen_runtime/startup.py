"""Importing TensorFlow without its start-up noise, keeping every real warning and error.

``import tensorflow`` (2.21) writes, twice, "WARNING: All log messages before absl::InitializeLog()
is called are written to STDERR" and an ``I0000 ... port.cc] oneDNN custom operations are on ...``
line straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says (only
``TF_ENABLE_ONEDNN_OPTS=0``, which turns the oneDNN kernels off, removes them). So
:func:`import_tensorflow` imports TensorFlow and Keras with descriptor 2 redirected into a pipe and
then writes back everything except that absl line and informational (``I``-level) log lines with
their continuation lines. Warnings (``W``), errors (``E``) and Python's own output pass unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from types import ModuleType

__all__ = ["import_tensorflow", "filter_startup_noise"]

_ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LOG_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")


def filter_startup_noise(data: bytes) -> bytes:
    """``data`` without the absl notice and informational log lines (and the lines continuing them)."""
    kept, dropping = [], False
    for line in data.splitlines(keepends=True):
        if line.rstrip(b"\r\n") == _ABSL:
            dropping = False
            continue
        if _LOG_LINE.match(line):
            dropping = line.startswith(b"I")
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` (and Keras) with the start-up noise filtered out; returns ``tensorflow``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, redirected to a non-file)
        import tensorflow

        return tensorflow
    read_end, write_end = os.pipe()
    captured: list[bytes] = []

    def drain() -> None:  # read while importing, so a chatty import can never fill the pipe and block
        with os.fdopen(read_end, "rb") as pipe:
            captured.append(pipe.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        import keras  # noqa: F401  (Keras 3 on the TensorFlow backend imports TensorFlow itself)
        import tensorflow
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees the end
        os.close(saved)
        reader.join()
        os.write(2, filter_startup_noise(b"".join(captured)))
    return tensorflow
