"""Who is working on what: advisory locks that a killed process never leaves behind.

A :class:`ProcessLock` is a small file (``.build.lock`` in a dataset's records folder, ``train.lock`` in a
run's log folder) locked with ``flock``: the kernel releases the lock when the process ends, however it
ends (a ``kill -9`` included), so a lock is never stale; the file itself stays and only says who held it
last. The holder writes its pid, host, command line and start time into the file, which is how a refused
process names the one it waits for. ``flock`` locks are per open file: a forked child shares its
parent's lock, which is what build workers need.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from skelgen_runtime.errors import BusyError

__all__ = ["Holder", "ProcessLock", "holder_of", "process_alive", "waiting_lock"]


@dataclass(frozen=True)
class Holder:
    """The process that holds (or last held) a lock."""

    pid: int | None
    host: str
    command: str
    started: str

    def describe(self) -> str:
        """``process 1234 on HOST (python train.py ..., since 2026-12-06T04:00:00+00:00)``."""
        where = f" on {self.host}" if self.host and self.host != platform.node() else ""
        return f"process {self.pid}{where} ({self.command}, since {self.started})"

    @classmethod
    def current(cls) -> Holder:
        return cls(
            os.getpid(),
            platform.node(),
            shlex.join([Path(sys.executable).name, *sys.argv]),
            _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )

    @classmethod
    def read(cls, path: Path) -> Holder:
        try:
            data: Any = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        pid = data.get("pid")
        return cls(
            pid if isinstance(pid, int) else None,
            str(data.get("host", "")),
            str(data.get("command", "?")),
            str(data.get("started", "?")),
        )


@contextlib.contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its folder, if missing), waiting for another holder
    first: for the short steps that processes take in turn (a template store written, a study's trial asked for,
    a database's tables made), where :class:`ProcessLock` refuses instead of waiting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as file:  # write: lock
        fcntl.flock(file, fcntl.LOCK_EX)
        yield


class ProcessLock:
    """An exclusive lock on ``path`` for this process; :meth:`acquire` or raise :class:`BusyError`.

    Args:
        path: the lock file (created if missing; its folder must exist).
        busy: what the error says is going on, e.g. ``"datasets/shapes/tfrecords is being built"``.
        advice: what the user can do, e.g. ``"wait for it to finish, or stop it and build again"``.
    """

    def __init__(self, path: Path, *, busy: str, advice: str) -> None:
        self.path, self.busy, self.advice = Path(path), busy, advice
        self._file: IO[str] | None = None

    def acquire(self) -> ProcessLock:
        """Take the lock now, without waiting.

        Raises:
            BusyError: another process holds it (named in the message).
        """
        while True:
            file = open(self.path, "a+")  # write: lock
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                raise BusyError(f"{self.busy} by {Holder.read(self.path).describe()}; {self.advice}") from None
            try:  # the file we locked is still the one at the path (not removed by someone in between)
                same = os.fstat(file.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            file.close()
        file.seek(0)
        file.truncate()
        file.write(json.dumps(Holder.current().__dict__))
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        """Let go of the lock (ending the process does the same)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> ProcessLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_of(path: Path) -> Holder | None:
    """The process holding the lock at ``path`` now, or None when nobody does (also when the file is missing)."""
    try:
        file = open(path)
    except OSError:
        return None
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder.read(Path(path))
        fcntl.flock(file, fcntl.LOCK_UN)
        return None


def process_alive(pid: int) -> bool:
    """Whether a Python process ``pid`` runs on this host (a reused pid of another program is not it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"python" in cmdline.read_bytes()
        except OSError:
            return True
    return True
