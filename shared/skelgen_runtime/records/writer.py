"""Sharded TFRecord writer: all cores, atomic shards, resumable.

A split's examples (sorted by key) are cut into contiguous shards of equal size (within one
example). Each shard is written by one worker process to a temporary name, described by a small
sidecar JSON (count, SHA-256, size, a fingerprint of the examples it holds and the examples left
out as bad), and only then renamed to its final name ``PREFIX_SPLIT-NNNNN-of-NNNNN.tfrecord``. A
file with a final name is therefore always complete.

On a rerun, a shard whose final file and matching sidecar exist is kept as it is, unless it left
out bad examples and this build does not allow that (``--skip-bad``); everything else is
(re)written. Worker processes die with their parent (Linux), so a killed build leaves only
temporary files, which the next run removes.

Neither the workers nor the writer import TensorFlow (:mod:`skelgen_runtime.records.tfrecord`
frames the records); a worker process starts in a fraction of a second, and a build starts only
as many as its work repays (:func:`choose_workers`).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from skelgen_runtime.errors import BadExampleError
from skelgen_runtime.files import publish, remove_leftovers
from skelgen_runtime.records.folder import TMP_MARK, Folder, LocalFolder, atomic_write_text, temporary_name
from skelgen_runtime.records.image_stats import ImageStats
from skelgen_runtime.records.tfrecord import TFRecordFileWriter
from skelgen_runtime.sources.base import SourceItem

__all__ = [
    "EncodeFn",
    "ShardPlan",
    "ShardResult",
    "plan_shards",
    "choose_workers",
    "completed",
    "write_shard",
    "write_shards",
    "atomic_write_text",
    "temporary_name",
    "shard_name",
    "sidecar_name",
    "remove_temporaries",
    "MIN_BYTES_PER_WORKER",
]

SIDECAR_SUFFIX = ".meta.json"
#: source bytes a worker process must have to encode before starting it pays: a worker costs about
#: 0.3 s of CPU to start (Python, NumPy, Pillow, the reader), and one process encodes 25-40 MB/s of
#: JPEG + PNG (the shapes rows of benchmarks/run.py: 52 MB in 1.5-2.3 s), so 32 MiB is about a
#: second of work, several times a worker's start
MIN_BYTES_PER_WORKER = 32 << 20

EncodeFn = Callable[[SourceItem, str], bytes]


def shard_name(prefix: str, split: str, index: int, total: int) -> str:
    """``PREFIX_SPLIT-NNNNN-of-NNNNN.tfrecord``: the name of shard ``index`` of ``total`` of a split."""
    return f"{prefix}_{split}-{index:05d}-of-{total:05d}.tfrecord"


def sidecar_name(shard: str) -> str:
    """The name of the sidecar JSON that describes the shard file named ``shard``."""
    return f".{shard}{SIDECAR_SUFFIX}"


@dataclass(frozen=True)
class ShardPlan:
    """One shard to write: its final path, its examples, their fingerprint and their size on disk."""

    path: Path
    split: str
    items: tuple[SourceItem, ...]
    fingerprint: str
    input_bytes: int = 0

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(sidecar_name(self.path.name))


@dataclass
class ShardResult:
    """What a finished shard holds. ``skipped`` lists ``(file, reason)`` of examples left out."""

    file: str
    count: int
    sha256: str
    size: int
    fingerprint: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: :class:`~skelgen_runtime.records.image_stats.ImageStats` as JSON (``{"count": 0}``: records without
    #: images); None: not known (the sidecar of an older build)
    images: dict | None = None


def _stamp(path: Path) -> tuple[str, int]:
    """``("size:mtime", size)`` of ``path``, or ``("missing", 0)``."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing", 0
    return f"{st.st_size}:{st.st_mtime_ns}", st.st_size


def plan_shards(
    items: list[SourceItem], *, out_dir: Path, prefix: str, split: str, shard_size: int, salt: str
) -> list[ShardPlan]:
    """Cut ``items`` into ``ceil(len/shard_size)`` contiguous shards of equal size, with deterministic names.

    Shard sizes differ by at most one example (10 examples in shards of at most 3: 3, 3, 2, 2).
    ``salt`` (everything besides the files that shapes record content: schema, label map, reader
    options, compression) and each source file's size and modification time enter every shard's
    fingerprint, so a rebuild with other options or after a file was edited rewrites the shards
    concerned instead of keeping stale ones.
    """
    num = max(1, math.ceil(len(items) / shard_size))
    base, extra = divmod(len(items), num)
    plans, start = [], 0
    for i in range(num):
        chunk = tuple(items[start : start + base + (i < extra)])
        start += len(chunk)
        digest = hashlib.sha256(salt.encode())
        size = 0
        for item in chunk:
            digest.update(item.key.encode() + b"\0")
            for name, path in sorted(item.files.items()):
                stamp, nbytes = _stamp(path)
                size += nbytes
                digest.update(f"{name}={path}:{stamp}\0".encode())
        name = shard_name(prefix, split, i, num)
        plans.append(ShardPlan(out_dir / name, split, chunk, digest.hexdigest(), size))
    return plans


def choose_workers(plans: list[ShardPlan], requested: int) -> int:
    """How many processes to write ``plans`` with: at most ``requested`` and one per shard, and
    only as many as get :data:`MIN_BYTES_PER_WORKER` of source files each (at least one)."""
    total = sum(p.input_bytes for p in plans)
    return max(1, min(requested, len(plans), total // MIN_BYTES_PER_WORKER))


def completed(plan: ShardPlan, skip_bad: bool, folder: Folder | None = None) -> ShardResult | None:
    """The recorded result of ``plan`` if a run finished its shard as this build would, else ``None``.

    A shard that left out bad examples is what only a ``skip_bad`` build writes: a build without
    it must meet (and stop at) those examples itself. A shard whose sidecar does not describe its images
    (an older build's) is written again, so that ``dataset_info.json`` can.

    Args:
        folder: where the shard and its sidecar are (default: the folder of ``plan.path``).
    """
    folder = folder or LocalFolder(plan.path.parent)
    try:
        meta = json.loads(folder.read_text(sidecar_name(plan.path.name)) or "")
        result = ShardResult(**{**meta, "skipped": [tuple(s) for s in meta.get("skipped", [])]})
    except (ValueError, TypeError, AttributeError):
        return None
    if result.fingerprint != plan.fingerprint:
        return None
    if result.images is None:  # written before builds described their images: rewrite it once to learn them
        return None
    if result.skipped and not skip_bad:
        return None
    if folder.size(plan.path.name) != result.size:
        return None
    return result


def _die_with_parent() -> None:
    """Worker initializer: ask Linux to SIGTERM this worker when the build process dies."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def write_shard(plan: ShardPlan, encode: EncodeFn, skip_bad: bool, compression: str | None) -> ShardResult:
    """Encode the examples of ``plan`` one at a time into a temporary file, write its sidecar, then
    rename the shard into place.

    Raises:
        BadExampleError: an unusable example, unless ``skip_bad`` (then it is left out and listed).
    """
    tmp = temporary_name(plan.path)
    skipped: list[tuple[str, str]] = []
    count = 0
    images = ImageStats()
    try:
        with TFRecordFileWriter(tmp, compression) as writer:
            for item in plan.items:
                try:
                    record = encode(item, plan.split)
                except BadExampleError as err:
                    if not skip_bad:
                        raise
                    skipped.append((err.path, err.reason))
                    continue
                writer.write(record)
                images.add(record)
                count += 1
        result = ShardResult(
            file=plan.path.name,
            count=count,
            sha256=writer.sha256,
            size=writer.size,
            fingerprint=plan.fingerprint,
            skipped=skipped,
            images=images.to_json() or {"count": 0},
        )
        atomic_write_text(plan.sidecar, json.dumps(result.__dict__))
        publish(tmp, plan.path)  # the shard becomes visible only now, complete
        return result
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(folder: Folder | Path) -> None:
    """Delete what interrupted builds left half-written in ``folder`` (a local path, or any :class:`Folder`)."""
    if isinstance(folder, (str, Path)):
        folder = LocalFolder(folder)
    if folder.local_path is not None:  # a local folder: the one helper for it
        remove_leftovers(folder.local_path)
        return
    for name in folder.names():
        if name.startswith(".") and TMP_MARK in name[1:]:
            folder.remove(name)


def write_shards(
    plans: list[ShardPlan],
    encode: EncodeFn,
    *,
    workers: int,
    skip_bad: bool,
    compression: str | None = None,
    on_shard: Callable[[ShardResult, bool], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[ShardResult]:
    """Write every shard of ``plans`` that is not already complete, ``workers`` at a time.

    Args:
        plans: from :func:`plan_shards`.
        encode: ``(item, split) -> serialised tf.train.Example``; must be picklable.
        workers: at most this many worker processes (see :func:`choose_workers`; 1 writes in this process).
        skip_bad: leave out examples whose ``encode`` raises :class:`BadExampleError` instead of stopping.
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        on_shard: called with each result and whether it was reused from an earlier run.
        on_start: called once with the number of processes that write (0: every shard was reused).

    Returns:
        One result per plan, in plan order.

    Raises:
        BadExampleError: the first bad example, unless ``skip_bad``. Shards finished before it stay.
    """
    results: dict[Path, ShardResult] = {}
    todo = []
    for plan in plans:
        done = completed(plan, skip_bad)
        if done is not None:
            results[plan.path] = done
            if on_shard:
                on_shard(done, True)
        else:
            todo.append(plan)
    todo.sort(key=lambda p: -p.input_bytes)  # largest first, so that the workers finish together
    workers = choose_workers(todo, workers)
    if on_start:
        on_start(workers if todo else 0)
    if todo and workers <= 1:
        for plan in todo:
            results[plan.path] = write_shard(plan, encode, skip_bad, compression)
            if on_shard:
                on_shard(results[plan.path], False)
    elif todo:
        # spawn, not fork: the parent may already hold TensorFlow's threads
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent) as pool:
            pending = {pool.submit(write_shard, p, encode, skip_bad, compression): p for p in todo}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        plan = pending.pop(future)
                        results[plan.path] = future.result()
                        if on_shard:
                            on_shard(results[plan.path], False)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    return [results[p.path] for p in plans]
