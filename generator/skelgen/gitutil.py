"""The few git operations skelgen needs, with errors a user can act on.

skelgen commits what it generates (so that ``copier update`` has a clean tree to work on) and reads
a project's state before updating it. Every call runs ``git`` with ``-C``; nothing here changes the
user's git configuration. When no identity is configured (a fresh machine), skelgen's own commits
are made as "skelgen <skelgen@localhost>" rather than failing.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from skelgen_runtime.errors import ProjectError

__all__ = ["git", "toplevel", "dirty_paths", "tree_changes", "TreeChanges", "commit_paths", "head", "FALLBACK_IDENTITY"]

FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "skelgen",
    "GIT_AUTHOR_EMAIL": "skelgen@localhost",
    "GIT_COMMITTER_NAME": "skelgen",
    "GIT_COMMITTER_EMAIL": "skelgen@localhost",
}


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run ``git -C cwd ARGS``; return stdout. Raise :class:`ProjectError` with git's message on failure."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
    except OSError as err:
        raise ProjectError(f"git is needed but could not be run ({err}); install git") from None
    if check and proc.returncode != 0:
        raise ProjectError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree holding ``path``, or None outside any."""
    try:
        proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    except OSError:
        return None
    return Path(proc.stdout.strip()).resolve() if proc.returncode == 0 else None


def head(repo: Path) -> str | None:
    """The commit checked out in ``repo`` (None in a repository without commits)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


def dirty_paths(repo: Path, pathspec: Path) -> list[str]:
    """``git status --porcelain`` lines of changes (tracked or not, not ignored) under ``pathspec``."""
    return [
        line
        for line in git(repo, "status", "--porcelain", "--untracked-files=all", "--", str(pathspec)).splitlines()
        if line.strip()
    ]


#: untracked files of these kinds are code or configuration (to commit); any other untracked entry is taken for
#: data or output (to git-ignore, never to commit)
SOURCE_SUFFIXES = {".py", ".pyi", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".md", ".txt", ".rst", ".sh", ".jinja"}


@dataclass(frozen=True)
class TreeChanges:
    """What is uncommitted under a folder, relative to it: changed tracked files, new code, untracked data."""

    tracked: list[str]
    code: list[str]
    data: list[str]

    def __bool__(self) -> bool:
        return bool(self.tracked or self.code or self.data)


def tree_changes(top: Path, root: Path) -> TreeChanges:
    """Uncommitted changes under ``root`` (in the work tree ``top``), sorted into what to commit and what to ignore.

    Wholly untracked folders are listed once each (git's own grouping) and count as data.
    """
    rel = root.relative_to(top).as_posix()
    prefix = "" if rel == "." else rel + "/"

    def entries(untracked: str) -> list[tuple[str, str]]:
        lines = git(top, "status", "--porcelain", f"--untracked-files={untracked}", "--", str(root)).splitlines()
        return [(line[:2], line[3:].strip().strip('"').removeprefix(prefix)) for line in lines if line.strip()]

    tracked = [path for code, path in entries("no")]
    untracked = [path for code, path in entries("normal") if code == "??"]
    new_code = [e for e in untracked if not e.endswith("/") and Path(e).suffix in SOURCE_SUFFIXES]
    return TreeChanges(tracked, new_code, [e for e in untracked if e not in new_code])


def _identity(repo: Path) -> dict[str, str]:
    """The fallback identity, for the variables git has no configured value for."""
    missing = {}
    for key, var in (("user.name", "NAME"), ("user.email", "EMAIL")):
        configured = subprocess.run(
            ["git", "-C", str(repo), "config", key], capture_output=True, text=True
        ).stdout.strip()
        if not configured:
            for role in ("AUTHOR", "COMMITTER"):
                name = f"GIT_{role}_{var}"
                if not os.environ.get(name):
                    missing[name] = FALLBACK_IDENTITY[name]
    return missing


def commit_paths(repo: Path, paths: Sequence[Path], message: str) -> str | None:
    """Commit exactly ``paths`` (added, changed or deleted) in ``repo``, whatever else is staged.

    Returns:
        The new commit, or None when the paths held no change.
    """
    rel = [str(p) for p in paths]
    git(repo, "add", "-A", "--", *rel)
    if not git(repo, "diff", "--cached", "--name-only", "--", *rel).strip():
        return None
    git(repo, "commit", "-q", "--no-verify", "-m", message, "--", *rel, env=_identity(repo))
    return head(repo)
