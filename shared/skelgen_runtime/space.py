"""Room on the disk: a command checks the free space before it writes much, and a full disk is one line.

:func:`space_for` wraps the writing part of a command (a build, a training, an export): before it, the
free space of the folder written to is compared with an estimate of what the command will write (a build:
the size of the source files still to convert; a training: its checkpoints; an export: the model), and a
disk that cannot hold it is refused at once instead of hours later. While it runs, "No space left on
device" (``ENOSPC``, a full quota ``EDQUOT``, or TensorFlow's error carrying that text) becomes one
:class:`~skelgen_runtime.errors.DiskFullError` line naming the folder, the free space now and about how much
the command needs. Every file a later step trusts is written whole (:mod:`skelgen_runtime.files`), so a
full disk leaves finished files and no partial ones, and the same command completes once there is room.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from skelgen_runtime._text import human_bytes
from skelgen_runtime.errors import DiskFullError
from skelgen_runtime.files import free_bytes, is_disk_full

__all__ = ["space_for", "check_room"]


def check_room(folder: Path, needed: int, what: str, *, rerun: str = "rerun the same command") -> None:
    """Raise :class:`DiskFullError` when ``folder``'s disk has less than ``needed`` bytes free (see :func:`space_for`)."""
    free = free_bytes(folder)
    if needed > free:
        raise DiskFullError(
            f"{what} needs about {human_bytes(needed)} in {folder}, which has {human_bytes(free)} free: free "
            f"{human_bytes(needed - free)} or more there, then {rerun}"
        )


@contextlib.contextmanager
def space_for(
    folder: Path, needed: int, what: str, *, rerun: str = "rerun the same command", check: bool = True
) -> Iterator[None]:
    """Write into ``folder`` inside this block: refused before it when the disk has less than ``needed`` bytes
    free, and a full disk during it reported as one line.

    Args:
        folder: where the command writes (the check uses its file system).
        needed: about how many bytes the command will write.
        what: the command, for the message, e.g. ``"building shapes"``.
        rerun: what to do once there is room (e.g. ``"rerun the build: finished shards are kept"``).
        check: compare the free space with ``needed`` before the block (False: the caller did).

    Raises:
        DiskFullError: too little room before, or the disk filled during the block.
    """
    if check:
        check_room(folder, needed, what, rerun=rerun)
    try:
        yield
    except Exception as err:
        if not is_disk_full(err):
            raise
        where = getattr(err, "filename", None) or folder
        raise DiskFullError(
            f"no space left on the device of {where} while {what} ({human_bytes(free_bytes(folder))} free now; it "
            f"needs about {human_bytes(needed)} in all): free {human_bytes(needed)} or more there, then {rerun}"
        ) from None
