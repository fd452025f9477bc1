"""Where a run came from: the fields :func:`skelgen_runtime.runs.new_run` writes into ``run.json``.

Each function returns a flat dict of ``run.json`` fields and never raises for a missing tool or
file: what cannot be known is recorded as ``null`` (and, for git, the reason in ``git_error``).

- :func:`git_state`: ``git_commit`` (the checked-out commit, null outside a repository or before
  the first commit), ``git_dirty``, ``git_patch`` (``uncommitted.patch`` beside ``run.json``: the
  project's uncommitted changes, tracked and untracked files git does not ignore, made with a
  temporary index so the user's staging area is untouched), ``git_prefix`` (the project's folder
  inside the repository). ``git apply PATCH`` at the top of a clean checkout of ``git_commit``
  reproduces the project as it was trained.
- :func:`library_versions`: skelgen, Python, TensorFlow, Keras, NumPy, CUDA and cuDNN (the versions
  TensorFlow was built with; null on a CPU build).
- :func:`template_version`: ``_commit`` of the project's ``.copier-answers.yml``.
- :func:`dataset_fingerprint`: the dataset's name, schema, split counts and a SHA-256 over its
  shards' checksums, from ``dataset_info.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from skelgen_runtime.files import atomic_write_bytes
from skelgen_runtime.layout import ProjectLayout

__all__ = ["PATCH_FILE", "PATCH_LIMIT", "git_state", "library_versions", "template_version", "dataset_fingerprint"]

#: the file, beside ``run.json``, holding the uncommitted changes of the project
PATCH_FILE = "uncommitted.patch"
#: a patch larger than this (bytes) is not saved: large untracked files belong in .gitignore
PATCH_LIMIT = 20 * 2**20
#: run outputs: never part of the patch, even where a .gitignore does not exclude them
_EXCLUDED = (":(exclude,glob)logs/*/**", ":(exclude,glob)models/*/**")
_GIT_TIMEOUT = 60


class _GitFailed(Exception):
    """A git command exited non-zero (its stderr is the message)."""


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> bytes:
    """stdout of ``git ARGS`` in ``cwd``; raise :class:`_GitFailed` on a non-zero exit status."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, env={**os.environ, **(env or {})}
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise _GitFailed(f"git {args[0]}: {err}") from None
    if proc.returncode != 0:
        raise _GitFailed(f"git {args[0]}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _untracked_size(root: Path) -> int:
    """Bytes in the untracked, not ignored files under ``root`` (checked before git copies them)."""
    names = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--", ".", *_EXCLUDED).split(b"\0")
    paths = [root / os.fsdecode(name) for name in names if name]
    return sum(path.stat().st_size for path in paths if path.is_file() and not path.is_symlink())


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _untracked_dirs(root: Path) -> list[str]:
    """The untracked, not ignored entries under ``root`` as git shows them (a wholly untracked folder once)."""
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()  # porcelain paths are from the top
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=normal", "--", ".", *_EXCLUDED)
    return [os.fsdecode(entry[3:]).removeprefix(prefix) for entry in out.split(b"\0") if entry.startswith(b"?? ")]


def _uncommitted_diff(root: Path, base: str) -> bytes:
    """The binary diff from ``base`` to the working tree under ``root`` (untracked files included).

    The files are staged into a copy of the index, so neither the user's index nor their working
    tree changes (git only gains the blob objects of untracked files).
    """
    real_index = root / _git(root, "rev-parse", "--git-path", "index").decode().strip()
    with tempfile.TemporaryDirectory(prefix="skelgen-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if real_index.is_file():
            # write: private
            shutil.copyfile(real_index, env["GIT_INDEX_FILE"])  # keeps git's stat cache: no rehashing
        _git(root, "add", "--all", "--", ".", *_EXCLUDED, env=env)
        return _git(
            root,
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
            "--",
            ".",
            *_EXCLUDED,
            env=env,
        )


def git_state(root: Path, log_dir: Path) -> dict[str, Any]:
    """The git fields of a run of the project at ``root``; writes ``log_dir/uncommitted.patch`` if dirty.

    Returns:
        ``git_commit`` (str or None), ``git_dirty`` (bool, None outside git), ``git_patch`` (the
        patch's file name or None), ``git_prefix`` (the project folder relative to the repository
        top, ``""`` when it is the top) and, only when something failed, ``git_error``.
    """
    state: dict[str, Any] = {"git_commit": None, "git_dirty": None, "git_patch": None, "git_prefix": None}
    try:
        state["git_prefix"] = _git(root, "rev-parse", "--show-prefix").decode().strip()
    except _GitFailed:
        return state  # not a repository (or no git): nothing to record
    try:
        state["git_commit"] = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}").decode().strip()
    except _GitFailed:
        pass  # a repository without commits: the patch then holds every file
    try:
        base = state["git_commit"] or _git(root, "hash-object", "-t", "tree", os.devnull).decode().strip()
        untracked = _untracked_size(root)
        patch = _uncommitted_diff(root, base) if untracked <= PATCH_LIMIT else b""
    except (_GitFailed, OSError) as err:
        state["git_error"] = str(err)
        return state
    state["git_dirty"] = bool(patch) or untracked > PATCH_LIMIT
    if max(untracked, len(patch)) > PATCH_LIMIT:
        state["git_error"] = (
            f"the uncommitted changes are over {_size(PATCH_LIMIT)}, so no {PATCH_FILE} is saved and this "
            f"run's code is not recorded; commit your code and list data or outputs in {root / '.gitignore'}"
            + (f" (untracked: {', '.join(_untracked_dirs(root)[:4])})" if untracked > PATCH_LIMIT else "")
        )
    elif patch:
        atomic_write_bytes(log_dir / PATCH_FILE, patch)
        state["git_patch"] = PATCH_FILE
    return state


def library_versions() -> dict[str, str | None]:
    """``skelgen_version``, ``python``, ``tensorflow_version``, ``keras_version``, ``numpy_version``,
    ``cuda_version`` and ``cudnn_version`` (the last two from ``tf.sysconfig.get_build_info()``)."""
    from skelgen_runtime._version import __version__

    versions: dict[str, str | None] = {"skelgen_version": __version__, "python": platform.python_version()}
    try:
        import keras
        import numpy
        import tensorflow as tf
    except ImportError:  # pragma: no cover - the runtime always has TensorFlow
        return {
            **versions,
            "tensorflow_version": None,
            "keras_version": None,
            "numpy_version": None,
            "cuda_version": None,
            "cudnn_version": None,
        }
    build = tf.sysconfig.get_build_info() if hasattr(tf.sysconfig, "get_build_info") else {}
    return {
        **versions,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "numpy_version": numpy.__version__,
        "cuda_version": build.get("cuda_version") or None,
        "cudnn_version": build.get("cudnn_version") or None,
    }


def template_version(root: Path) -> str | None:
    """The template version the project was rendered or last updated from (``_commit``), or None."""
    import yaml

    try:
        answers = yaml.safe_load(ProjectLayout(root).answers.read_text())
    except (OSError, yaml.YAMLError):
        return None
    commit = answers.get("_commit") if isinstance(answers, dict) else None
    return str(commit) if commit is not None else None


def dataset_fingerprint(info_file: Path, *, root: Path | None = None) -> dict[str, Any] | None:
    """What identifies the records a run trains on; None if ``info_file`` cannot be read.

    Returns:
        ``name`` (the dataset folder: ``datasets/NAME/tfrecords/dataset_info.json``), ``schema``,
        ``schema_version``, ``splits`` (``{split: count}``), ``fingerprint`` (``sha256:HEX`` over
        the name, schema, label map and every shard's file name, count and SHA-256) and ``info``
        (the file, relative to ``root`` when inside it).
    """
    try:
        data = json.loads(Path(info_file).read_text())
    except (OSError, ValueError):
        return None
    info_file = Path(info_file)
    name = ProjectLayout.dataset_name_of(info_file.parent)
    splits = data.get("splits") or {}
    identity = {
        "name": name,
        "schema": data.get("schema"),
        "schema_version": data.get("schema_version"),
        "label_map": data.get("label_map"),
        "shards": {
            split: [[s.get("file"), s.get("count"), s.get("sha256")] for s in info.get("shards", [])]
            for split, info in sorted(splits.items())
        },
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    try:
        shown = info_file.resolve().relative_to(Path(root).resolve()) if root is not None else info_file
    except ValueError:
        shown = info_file
    return {
        "name": name,
        "schema": data.get("schema"),
        "schema_version": data.get("schema_version"),
        "splits": {split: info.get("count") for split, info in sorted(splits.items())},
        "fingerprint": f"sha256:{digest}",
        "info": str(shown),
    }
