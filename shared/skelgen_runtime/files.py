"""Files that later steps trust are written whole or not at all: the one way the library writes them.

Every such file (``dataset_info.json``, shard sidecars, ``run.json``, ``metrics.csv``, evaluations, the
config snapshot, ...) is written under a temporary name in its own folder (hidden, ``.NAME.tmp-PID``,
matching no ``*.tfrecord`` or ``*.json`` glob), flushed and ``fsync``-ed, renamed over the final name
(``os.replace``: atomic on POSIX file systems) and then the folder itself is ``fsync``-ed so that the
rename survives a power cut. A reader sees the old file or the whole new one, never a part; a process
killed in between leaves only a temporary file, which the next writer of that name replaces.

- :func:`atomic_write_text` / :func:`atomic_write_bytes`: a small file at once;
- :func:`atomic_path`: a temporary path for a writer that wants a path (Keras ``model.save``, ``nib.save``,
  ``shutil.copyfile``), published when the block ends without an error;
- :func:`publish`: a file the caller wrote under :func:`temporary_name` (a shard) renamed into place;
- :func:`publish_dir`: a staging folder (an export, predictions) renamed into place whole.

``tests/test_atomic_writes.py`` lists every write in the library, the template and the generator and
fails on one that bypasses these helpers without a recorded reason.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

__all__ = [
    "TMP_MARK",
    "temporary_name",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_path",
    "publish",
    "publish_dir",
    "discard_dir",
    "fsync_dir",
    "remove_leftovers",
    "file_digest",
    "free_bytes",
    "is_disk_full",
]

#: what marks a temporary name; a build removes every ``.*TMP_MARK*`` file it finds when it starts
TMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: hidden, and matching no ``*.tfrecord`` glob."""
    return path.with_name(f".{path.name.lstrip('.')}{TMP_MARK}{os.getpid()}")


def remove_leftovers(folder: Path) -> list[str]:
    """Remove what writers killed mid-write left in ``folder`` (``.NAME.tmp-PID...`` files and folders); their names."""
    gone = []
    for path in Path(folder).glob(f".*{TMP_MARK}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        gone.append(path.name)
    return gone


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _publish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers see the old file or the whole new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed over ``path`` when the block ends without an
    error (removed otherwise). The temporary name keeps ``path``'s suffixes (Keras and nibabel choose the
    format by them)."""
    path = Path(path)
    suffix = "".join(path.suffixes)  # .keras, .weights.h5, .nii.gz: what the writers choose the format by
    tmp = path.with_name(f".{path.name[: len(path.name) - len(suffix)].lstrip('.')}{TMP_MARK}{os.getpid()}{suffix}")
    try:
        yield tmp
        _fsync_file(tmp)
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(tmp: Path, path: Path) -> None:
    """Rename the whole file ``tmp`` (written by the caller, e.g. a shard) over ``path``, durably."""
    _fsync_file(tmp)
    _publish(tmp, path)


def discard_dir(path: Path) -> None:
    """Remove the folder ``path`` as one step: renamed to a hidden leftover name first (atomic), then deleted.
    A process killed meanwhile leaves the whole folder or none of it at ``path``, never a part of it
    (``shutil.rmtree`` alone would leave a half-deleted folder that a reader takes for a damaged one); the
    leftover is removed by :func:`remove_leftovers` of the parent folder."""
    path = Path(path)
    trash = path.with_name(f".{path.name}.old{TMP_MARK}{os.getpid()}")
    shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(path, trash)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def publish_dir(staging: Path, path: Path) -> None:
    """Put the folder ``staging`` (a sibling of ``path``) in ``path``'s place: a reader sees the old folder or the
    whole new one (between the two renames, none). The old folder, if any, is removed afterwards."""
    for file in staging.rglob("*"):
        if file.is_file():
            _fsync_file(file)
    old = path.with_name(f".{path.name}.old{TMP_MARK}{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(staging, path)
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("no space left on device", "disk quota exceeded")


def free_bytes(folder: Path) -> int:
    """Free bytes for this user on the file system holding ``folder`` (or its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk or the quota is full (an ``OSError``, or TensorFlow's error with that text)."""
    if isinstance(err, OSError) and err.errno in _FULL:
        return True
    return type(err).__module__.startswith("tensorflow") and any(t in str(err).lower() for t in _FULL_TEXT)
