"""A command's journal: what it created or changed, written to disk before each change, so that nothing a
killed command half-did outlives it.

``skelgen new`` and ``skelgen add-dataset`` change a workspace or a project in many steps (render the
template, generate sample images, rewrite the workspace index, append to the changelog, commit). Each
opens a :class:`Journal` in the folder it changes (``FOLDER/.skelgen-journal/``) and records every step
*before* taking it (write-ahead; one JSON line each, flushed and fsynced): a path it is about to create, a
file it is about to change (its content copied aside first), the paths it stages, the commit it makes.

- On an error (Ctrl-C included) the command undoes its steps, newest first, and the error goes on.
- Killed outright (``kill -9``, a closed terminal, a lost machine), it leaves the journal behind. The next
  command that writes there calls :func:`recover` first: the journal's lock is free (a lock ends with its
  process, see :mod:`skelgen_runtime.locks`), so the interrupted command is rolled back the same way, and
  the user is told so. A journal whose commit landed is rolled forward instead (the commit was the
  command's last step: it had finished).
- A journal whose command is still running is not touched: the second command is refused, naming it.

Undoing is idempotent (a path already gone stays gone), so a recovery that is itself killed is finished
by the next one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from skelgen.gitutil import git, head
from skelgen_runtime.files import TMP_MARK, atomic_write_bytes, discard_dir, fsync_dir
from skelgen_runtime.locks import Holder, ProcessLock

__all__ = ["JOURNAL", "Journal", "recover", "update_journal"]

#: the journal's folder in the workspace or project a command changes (both .gitignore files name it)
JOURNAL = ".skelgen-journal"
_ENTRIES, _LOCK = "entries.jsonl", "lock"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _empty(folder: Path) -> None:
    for path in folder.iterdir() if folder.is_dir() else []:
        _remove(path)


class Journal:
    """The steps of one command in ``folder`` (created with its missing parents, each recorded).

    Use as a context manager: a normal end forgets the journal; an exception undoes every recorded step,
    newest first, and goes on.

    Args:
        folder: the workspace or project the command changes; the journal lives in ``folder/.skelgen-journal``.
        command: what the user ran, for the message of a later recovery (default: this process's command line).
        home: another place for the journal (``skelgen update``: in ``.git``, where copier does not see it).
        undo_on_error: undo the steps when the block raises (False: the command handles its errors itself,
            e.g. an update that stops at a conflict leaves the markers for the user; only a kill is undone).
    """

    def __init__(
        self, folder: Path, command: str | None = None, *, home: Path | None = None, undo_on_error: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.home = Path(home) if home is not None else self.folder / JOURNAL
        self.undo_on_error = undo_on_error
        self.command = command or shlex.join(["skelgen", *sys.argv[1:]])
        self._lock: ProcessLock | None = None
        self._file: Any = None
        self._backups = 0

    # ------------------------------------------------------------------ recording
    def _record(self, **entry: Any) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def created(self, path: Path) -> Path:
        """Record that ``path`` (a file or a folder) is about to be created; undoing removes it."""
        self._record(op="created", path=str(path))
        return path

    def changing(self, path: Path) -> Path:
        """Record ``path``'s content before it changes (a copy in the journal), or its absence; undoing restores it."""
        if not path.exists():
            return self.created(path)
        self._backups += 1
        backup = self.home / f"backup-{self._backups}"
        atomic_write_bytes(backup, path.read_bytes())
        self._record(op="changed", path=str(path), backup=backup.name)
        return path

    def emptied(self, path: Path) -> Path:
        """Record that the empty folder ``path`` is about to be filled; undoing empties it again."""
        self._record(op="emptied", path=str(path))
        return path

    def mkdir(self, path: Path) -> Path:
        """Create ``path`` and its missing parents, recording each one created."""
        for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
            self.created(folder)
            folder.mkdir()
        return path

    def restoring(self, repo: Path, path: Path) -> None:
        """Record that ``path`` (a project in the git repository ``repo``, committed and clean) is about to be
        changed and committed in steps: undoing puts its tracked files back as the last commit has them and
        moves the files git does not know (made by the interrupted command, or by the user since) into
        ``.git/skelgen-rescued/`` instead of deleting them."""
        self._record(op="restore", repo=str(repo), path=str(path))

    def committing(self, repo: Path, paths: list[Path], message: str) -> None:
        """Record a commit of ``paths`` in ``repo`` about to be made: undoing unstages them unless the commit
        landed, in which case the command had finished and nothing is undone."""

        self._record(op="commit", repo=str(repo), head=head(repo), message=message, paths=[str(p) for p in paths])

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Journal":
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.home.mkdir(parents=True, exist_ok=True)
        self._lock = ProcessLock(
            self.home / _LOCK,
            busy=f"{self.folder} is being changed",
            advice="wait for that command to finish, then run this one again",
        ).acquire()
        # each line fsynced as written; a line cut short by a kill is ignored (its step was not taken)
        self._file = open(self.home / _ENTRIES, "a")  # write: journal
        self._record(op="start", command=self.command, started=time.time())
        for folder in reversed(missing):  # the folders made for the journal go with the rest
            self.created(folder)
        fsync_dir(self.home.parent)
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None and self.undo_on_error:
            self._file.close()
            rollback(self.home)
        self._close()

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        discard_dir(self.home)  # before the lock goes: a journal whose lock is free is one to undo
        if self._lock is not None:
            self._lock.release()


def _entries(home: Path) -> list[dict[str, Any]]:
    entries = []
    for line in (home / _ENTRIES).read_text().splitlines() if (home / _ENTRIES).is_file() else []:
        try:
            entries.append(json.loads(line))
        except ValueError:  # the line being written when the process was killed: its step was not taken
            break
    return entries


def rollback(home: Path) -> dict[str, Any]:
    """Undo the steps recorded in the journal ``home``, newest first (nothing when its commit landed); its start entry."""
    entries = _entries(home)
    start = entries[0] if entries and entries[0].get("op") == "start" else {}
    for entry in entries:
        if entry.get("op") == "commit":
            repo = Path(entry["repo"])
            now = head(repo) if repo.exists() else None
            if now is not None and now != entry["head"] and _subject(repo) == entry["message"]:
                # the commit, the last step, landed: the command had finished (its git maybe not: its locks go)
                _remove_git_locks(repo, float(start.get("started", 0)))
                return {**start, "finished": True, "message": entry["message"], "commit": now}
    undo: dict[str, Callable[[dict[str, Any]], None]] = {
        "created": lambda e: _remove(Path(e["path"])),
        "changed": lambda e: atomic_write_bytes(Path(e["path"]), (home / e["backup"]).read_bytes()),
        "emptied": lambda e: _empty(Path(e["path"])),
        "commit": lambda e: _unstage(Path(e["repo"]), e["paths"], float(start.get("started", 0))),
        "restore": lambda e: rescued.extend(_restore(Path(e["repo"]), Path(e["path"]), float(start.get("started", 0)))),
    }
    rescued: list[Path] = []
    for entry in reversed(entries):
        action = undo.get(entry.get("op", ""))
        if action is None:
            continue
        try:
            action(entry)
        except OSError:
            pass
    if any(entry.get("op") == "restore" for entry in entries):
        roots = {Path(*p.parts[: p.parts.index("skelgen-rescued") + 2]) for p in rescued}
        start["restored"] = (
            [f"{sorted(roots)[0]} ({len(rescued)} file{'s' if len(rescued) != 1 else ''})"] if roots else True
        )
    return start


def _subject(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%B", check=False).strip()


def _unstage(repo: Path, paths: list[str], started: float) -> None:
    """Unstage ``paths`` in ``repo``, first removing the index lock a git killed with the command left behind."""
    if not repo.exists():
        return
    _remove_git_locks(repo, started)
    git(repo, "reset", "-q", "--", *paths, check=False)


def _remove_git_locks(repo: Path, started: float) -> None:
    """Remove the lock files a git killed with the command left in ``repo``: the index's and, when the kill came
    while ``git commit`` moved the branch, the refs' (``HEAD.lock``, ``refs/heads/BRANCH.lock``); only those
    made since the command started (older ones are another process's, and stay)."""
    folder = _git_dir(repo)
    candidates = [folder / "index.lock", folder / "HEAD.lock", folder / "packed-refs.lock"]
    candidates += list((folder / "refs").rglob("*.lock")) if (folder / "refs").is_dir() else []
    for lock in candidates:
        try:
            if lock.stat().st_mtime >= started - 1:  # made by this command's git, which is gone
                lock.unlink(missing_ok=True)
        except OSError:
            continue


def _git_dir(repo: Path) -> Path:
    found = Path(git(repo, "rev-parse", "--git-dir", check=False).strip() or ".git")
    return found if found.is_absolute() else repo / found


def _restore(repo: Path, path: Path, started: float) -> list[Path]:
    """``path`` as the last commit has it: tracked files checked out, untracked ones (not ignored) moved to
    ``.git/skelgen-rescued/TIME/``; where each went."""
    if not path.exists():
        return []
    _unstage(repo, [str(path)], started)
    git(repo, "checkout", "-q", "HEAD", "--", str(path), check=False)
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "-z", "--", str(path), check=False)
    rescued, moved = _git_dir(repo) / "skelgen-rescued" / time.strftime("%Y%m%d-%H%M%S"), []
    for rel in filter(None, untracked.split("\0")):
        target = rescued / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(repo / rel, target)  # write: journal
        moved.append(target)
    return moved


def update_journal(repo: Path) -> Path:
    """Where ``skelgen update`` keeps its journal: in the git folder of ``repo`` (copier updates only a clean
    tree, which the journal must not make dirty)."""
    return _git_dir(repo) / "skelgen-update-journal"


def recover(
    folder: Path, say: Callable[[str], None] | None = None, *, home: Path | None = None
) -> dict[str, Any] | None:
    """Roll back (or forward) a command that was killed while it changed ``folder`` (its journal in ``home``,
    default ``folder/.skelgen-journal``).

    Returns:
        None if there was none; else its journal's start (``command``), with ``finished``, its commit
        ``message`` and the ``commit`` when it had finished (the caller may be rerunning that command).

    Raises:
        BusyError: the command is still running (named in the message).
    """
    home = Path(home) if home is not None else Path(folder) / JOURNAL
    for leftover in home.parent.glob(f".{home.name}.old{TMP_MARK}*"):  # a journal removed half-way: done with
        shutil.rmtree(leftover, ignore_errors=True)
    if not home.is_dir():
        return None
    lock = ProcessLock(
        home / _LOCK,
        busy=f"{folder} is being changed",
        advice="wait for that command to finish, then run this one again",
    )
    holder = Holder.read(home / _LOCK)  # before acquire() writes this process over it
    lock.acquire()  # BusyError while the command runs
    try:
        start = rollback(home)
        discard_dir(home)
    finally:
        lock.release()
    what = start.get("command", "a skelgen command")
    if start.get("finished"):
        done = "it had finished; its journal was removed"
    elif start.get("restored"):  # an update: each step committed whole, the step it was in undone
        done = "it is back at its last commit (what it had committed is kept)"
        if isinstance(start["restored"], list):
            done += f"; files git did not track there were moved to {start['restored'][0]}"
    else:
        done = "what it had done was undone"
    (say or (lambda line: print(line, file=sys.stderr)))(
        f"note: {what}{f' (process {holder.pid})' if holder.pid else ''} was interrupted while it changed {folder}; "
        f"{done}"
    )
    return start
