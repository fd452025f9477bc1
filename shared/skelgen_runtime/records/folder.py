"""The folder a build writes: a local path, or any location ``tf.io.gfile`` writes (``gs://``, ``s3://``, ``hdfs://``).

Every file is made visible whole: written under a temporary name (hidden, ``.NAME.tmp-...``, matching
no ``*.tfrecord`` glob) and then renamed. A local folder is written with the standard library, so
local builds never import TensorFlow; a URL is written with ``tf.io.gfile`` (only Beam builds write
URLs: their workers write each shard to a local temporary file and :meth:`GfileFolder.publish` it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from skelgen_runtime.files import TMP_MARK, atomic_path, atomic_write_text, temporary_name
from skelgen_runtime.locks import ProcessLock

__all__ = [
    "Folder",
    "LocalFolder",
    "GfileFolder",
    "open_folder",
    "is_url",
    "temporary_name",
    "atomic_write_text",
    "TMP_MARK",
    "BUILD_LOCK",
    "build_lock",
]


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names a file system by scheme (``gs://bucket/x``) rather than a local path."""
    return "://" in str(location)


class Folder(Protocol):
    """The file operations a build needs on its output folder; names are plain file names in it."""

    @property
    def local_path(self) -> Path | None:
        """A local folder's path; None for a URL (shards are then written locally first and published)."""

    def makedirs(self) -> None:
        """Create the folder and its parents if missing."""

    def names(self) -> list[str]:
        """The file names in the folder."""

    def read_text(self, name: str) -> str | None:
        """The text of file ``name``; None if it does not exist or cannot be read."""

    def size(self, name: str) -> int | None:
        """The size of file ``name`` in bytes; None if it does not exist."""

    def write_text(self, name: str, text: str) -> None:
        """Write file ``name`` atomically."""

    def publish(self, local: Path, name: str) -> None:
        """Copy the local file ``local`` to file ``name`` atomically (replacing it)."""

    def remove(self, name: str) -> None:
        """Delete file ``name`` if it exists."""


class LocalFolder:
    """A folder on a local (or mounted) file system."""

    def __init__(self, path: Path | str) -> None:
        self.local_path = Path(path)

    def __str__(self) -> str:
        return str(self.local_path)

    def makedirs(self) -> None:
        self.local_path.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[str]:
        return os.listdir(self.local_path)

    def read_text(self, name: str) -> str | None:
        try:
            return (self.local_path / name).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def size(self, name: str) -> int | None:
        path = self.local_path / name
        return path.stat().st_size if path.is_file() else None

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.local_path / name, text)

    def publish(self, local: Path, name: str) -> None:
        with atomic_path(self.local_path / name) as tmp:
            shutil.copyfile(local, tmp)  # write: staged

    def remove(self, name: str) -> None:
        (self.local_path / name).unlink(missing_ok=True)


class GfileFolder:
    """A folder that ``tf.io.gfile`` reads and writes (``gs://bucket/path``, ``s3://...``, ``hdfs://...``).

    Renames are as atomic as the file system makes them (on object stores a copy: the final name
    appears once the copy is complete). Pickles as its URL (it travels to Beam workers).
    """

    local_path = None

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def _join(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _tmp(self, name: str) -> str:
        return self._join(temporary_name(Path(name)).name)

    def makedirs(self) -> None:
        _gfile().makedirs(self.url)

    def names(self) -> list[str]:
        return [n.rstrip("/") for n in _gfile().listdir(self.url)]

    def read_text(self, name: str) -> str | None:
        try:
            with _gfile().GFile(self._join(name), "r") as f:
                return f.read()
        except _gfile_errors():
            return None

    def size(self, name: str) -> int | None:
        try:
            return int(_gfile().stat(self._join(name)).length)
        except _gfile_errors():
            return None

    def write_text(self, name: str, text: str) -> None:
        with _gfile().GFile(self._tmp(name), "w") as f:
            f.write(text)
        _gfile().rename(self._tmp(name), self._join(name), overwrite=True)  # write: object store

    def publish(self, local: Path, name: str) -> None:
        _gfile().copy(str(local), self._tmp(name), overwrite=True)
        _gfile().rename(self._tmp(name), self._join(name), overwrite=True)  # write: object store

    def remove(self, name: str) -> None:
        if _gfile().exists(self._join(name)):
            _gfile().remove(self._join(name))


def _gfile():
    """``tf.io.gfile``, imported when a URL is first touched: local builds never import TensorFlow."""
    import tensorflow as tf

    return tf.io.gfile


def _gfile_errors() -> tuple[type[BaseException], ...]:
    import tensorflow as tf

    return (tf.errors.OpError, OSError)


def open_folder(location: Path | str) -> Folder:
    """A :class:`GfileFolder` for a URL (``scheme://...``), else a :class:`LocalFolder`."""
    return GfileFolder(str(location)) if is_url(location) else LocalFolder(location)


#: the lock file a local build holds in its records folder
BUILD_LOCK = ".build.lock"


def build_lock(folder: Folder) -> ProcessLock | None:
    """Hold ``.build.lock`` in a local records folder while building it: a second build of the same
    dataset is refused, naming the first; a killed build holds nothing (:mod:`skelgen_runtime.locks`).
    Folders at a URL are not locked (their builds write each shard once, atomically, and never delete
    a finished one)."""
    if folder.local_path is None:
        return None
    return ProcessLock(
        folder.local_path / BUILD_LOCK,
        busy=f"{folder.local_path} is being built",
        advice="wait for that build to finish, or stop it and build again (a stopped build keeps the shards it finished)",
    ).acquire()
