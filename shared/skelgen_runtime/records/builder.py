"""Building a dataset's TFRecords from a :class:`~skelgen_runtime.sources.base.Source`: the typed API.

:func:`build_dataset` lists the splits in this process, plans their shards
(:func:`~skelgen_runtime.records.writer.plan_shards`), has the shards written, then writes
``dataset_info.json``. The shards are written by this host's worker processes
(:func:`~skelgen_runtime.records.writer.write_shards`), or by an Apache Beam pipeline
(:mod:`skelgen_runtime.records.beam_build`) calling the same shard writer. The command line of the
generated build scripts is :func:`skelgen_runtime.records.build.main`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from skelgen_runtime._version import __version__
from skelgen_runtime.errors import DatasetError, MissingDependencyError, UserInputError
from skelgen_runtime.records.damage import forget_damaged
from skelgen_runtime.records.folder import Folder, build_lock, is_url, open_folder
from skelgen_runtime.records.image_stats import ImageStats
from skelgen_runtime.records.info import INFO_FILE
from skelgen_runtime.records.subset import Subset, choose_subset
from skelgen_runtime.records.tfds_metadata import remove_tfds_metadata, write_tfds_metadata
from skelgen_runtime.records.writer import (
    SIDECAR_SUFFIX,
    EncodeFn,
    ShardPlan,
    ShardResult,
    completed,
    plan_shards,
    remove_temporaries,
    write_shards,
)
from skelgen_runtime.sources.base import Source, SourceItem
from skelgen_runtime.space import space_for

__all__ = ["BuildReport", "build_dataset", "content_key", "require_beam", "BEAM_EXTRA"]


#: what ``--runner beam`` needs installed, as the error that asks for it says
BEAM_EXTRA = "skelgen-tf[beam]"


@dataclass
class BuildReport:
    """What a build wrote: examples per split, shards reused from an earlier run, skipped examples,
    how many local processes wrote (1: this one; 0: nothing was written, or a Beam runner wrote)
    and what wrote them (``"local"``, or the Beam runner, e.g. ``"FnApiRunner"``)."""

    counts: dict[str, int]
    reused_shards: int
    written_shards: int
    skipped: list[tuple[str, str]]
    info_path: Path | str
    processes: int = 1
    runner: str = "local"
    #: per split, how ``--max-examples`` cut it (empty without the option)
    subsets: dict[str, Subset] = dataclasses.field(default_factory=dict)
    #: why TensorFlow Datasets cannot read the build (:mod:`~skelgen_runtime.records.tfds_metadata`); None: it can
    tfds_unreadable: str | None = None
    #: with ``verify``: the finished shards checked, and those found damaged (name, what is wrong), written again
    verified: int = 0
    damaged: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def build_dataset(
    source: Source,
    out_dir: Path | str,
    *,
    schema: str,
    schema_version: int,
    feature_spec: dict,
    prefix: str,
    splits: Sequence[str] | None = None,
    workers: int | None = None,
    max_examples: int | None = None,
    skip_bad: bool = False,
    shard_size: int = 256,
    compression: str | None = None,
    progress: bool = True,
    beam_options: Sequence[str] | None = None,
    record_schema: Any = None,
    verify: bool = False,
) -> BuildReport:
    """Convert every split of ``source`` into shards in ``out_dir`` plus ``dataset_info.json``.

    Args:
        source: the dataset reader.
        out_dir: the ``tfrecords`` folder (created); with ``beam_options`` also a URL that
            ``tf.io.gfile`` writes (``gs://bucket/path``).
        schema, schema_version, feature_spec: recorded in ``dataset_info.json``.
        prefix: shard file prefix, normally the dataset name.
        splits: splits to build; default all splits found by ``source``.
        workers: at most this many worker processes; default all cores. Fewer are started when
            the work is too small to repay them (``writer.choose_workers``).
        max_examples: keep at most this many examples per split, every class the listing knows of
            (:mod:`skelgen_runtime.records.subset`; recorded as ``build_options.subsets``).
        skip_bad: leave out unusable examples and report them instead of stopping.
        shard_size: examples per shard (at most).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        progress: show a progress bar on stderr (local builds).
        beam_options: write the shards with an Apache Beam pipeline run with these pipeline
            options (``[]``: Beam's local runner; :mod:`skelgen_runtime.records.beam_build`);
            None: with this host's worker processes.
        record_schema: the :class:`~skelgen_runtime.schemas.base.RecordSchema` the source writes: the
            build then describes the shards for TensorFlow Datasets too (``tfds/``).
        verify: check every finished shard against the SHA-256 its build recorded before reusing it; the
            damaged ones (a bit flipped, a copy cut short) are named in the report and written again.

    Raises:
        DatasetError: a split is empty, or (without ``skip_bad``) an example is unusable.
        MissingDependencyError: ``beam_options`` without Apache Beam installed.
        UserInputError: ``out_dir`` is a URL without ``beam_options``, or the Beam options are invalid.
    """
    beam_build = require_beam() if beam_options is not None else None
    if beam_build is None and is_url(out_dir):
        raise UserInputError(
            f"--out {out_dir}: a local build writes a local folder; build with --runner beam to write to a URL"
        )
    folder = open_folder(out_dir)
    folder.makedirs()
    lock = build_lock(folder)
    try:
        folder.remove(INFO_FILE)  # the folder is not a complete dataset until we finish
        remove_tfds_metadata(folder)  # nor one TensorFlow Datasets may read (records.tfds_metadata)
        remove_temporaries(folder)
        subsets: dict[str, Subset] = {}
        listed = _list_splits(source, splits, max_examples, subsets)
        # after listing: a reader may complete its label map from the files it lists (COCO category ids)
        salt = content_key(source, schema=schema, schema_version=schema_version, compression=compression)
        # a URL's shards are written to local temporary files first (records.beam_build): plan them by name
        plan_dir = folder.local_path or Path()
        plans = {
            split: plan_shards(items, out_dir=plan_dir, prefix=prefix, split=split, shard_size=shard_size, salt=salt)
            for split, items in listed.items()
        }
        all_plans = [p for plan in plans.values() for p in plan]
        checked, damaged = forget_damaged(folder, all_plans, skip_bad, compression, progress) if verify else (0, [])
        if beam_build is None:
            room = space_for(
                folder.local_path or Path(),
                sum(p.input_bytes for p in all_plans if completed(p, skip_bad, folder) is None),
                f"building {prefix}",
                rerun="rerun the build (the shards it finished are kept)",
            )
            with room:
                flat, reused, processes = _write_locally(
                    all_plans,
                    source.encode,
                    workers=workers,
                    skip_bad=skip_bad,
                    compression=compression,
                    progress=progress,
                    desc=f"building {prefix}",
                )
            runner = "local"
        else:
            flat, reused, runner = beam_build.write_with_beam(
                all_plans,
                source.encode,
                folder=folder,
                skip_bad=skip_bad,
                compression=compression,
                options=beam_options,
            )
            processes = 0
        results = _results_by_split(source, plans, flat)
        _remove_stale(folder, keep={p.path.name for p in all_plans})
        options = {
            "max_examples": max_examples,
            "subsets": {split: subset.to_json() for split, subset in subsets.items() if split in results},
            "skip_bad": skip_bad,
            "shard_size": shard_size,
            "runner": "local" if beam_build is None else "beam",
            "beam_runner": None if beam_build is None else runner,
        }
        info = _dataset_info(
            source,
            results,
            schema=schema,
            schema_version=schema_version,
            feature_spec=feature_spec,
            compression=compression,
            build_options=options,
        )
        folder.write_text(INFO_FILE, json.dumps(info, indent=2))
        unreadable = write_tfds_metadata(str(out_dir), info, record_schema, prefix) if record_schema else None
        counts = {split: info["splits"][split]["count"] for split in results}
        info_path = folder.local_path / INFO_FILE if folder.local_path else f"{folder}/{INFO_FILE}"
        skipped = [(s["file"], s["reason"]) for s in info["skipped"]]
        return BuildReport(
            counts,
            reused,
            len(all_plans) - reused,
            skipped,
            info_path,
            processes,
            runner,
            subsets=subsets,
            tfds_unreadable=unreadable,
            verified=checked,
            damaged=damaged,
        )
    finally:
        if lock is not None:
            lock.release()


def _dataset_info(
    source: Source,
    results: dict[str, list[ShardResult]],
    *,
    schema: str,
    schema_version: int,
    feature_spec: dict,
    compression: str | None,
    build_options: dict,
) -> dict:
    """The content of ``dataset_info.json`` (:mod:`skelgen_runtime.records.info` lists its fields)."""
    skipped = [s for rs in results.values() for r in rs for s in r.skipped]
    return {
        "schema": schema,
        "schema_version": schema_version,
        "feature_spec": feature_spec,
        "num_classes": source.label_map.num_classes,
        "label_map": source.label_map.to_json(),
        "ignore_label": source.label_map.ignore_label,
        "compression": compression,
        "splits": {
            split: {
                "labelled": source.is_labelled(split),
                "count": sum(r.count for r in rs),
                "shards": [{"file": r.file, "count": r.count, "sha256": r.sha256} for r in rs],
                **_images(rs),
            }
            for split, rs in results.items()
        },
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "source": str(source.root),
        **({"source_info": source.describe()} if hasattr(source, "describe") else {}),  # e.g. the detected release
        "build_options": build_options,
        "skelgen_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _images(results: list[ShardResult]) -> dict:
    """``{"images": ...}`` of a split (:mod:`~skelgen_runtime.records.image_stats`), or nothing when a
    shard's stats are unknown or the records hold no images."""
    merged = ImageStats.merged(None if r.images is None else ImageStats.from_json(r.images) for r in results)
    described = merged.to_json() if merged is not None else None
    return {"images": described} if described else {}


def require_beam() -> ModuleType:
    """:mod:`skelgen_runtime.records.beam_build`, or :class:`MissingDependencyError` saying how to install Beam."""
    try:
        from skelgen_runtime.records import beam_build
    except ImportError as err:
        if not (err.name or "").startswith("apache_beam"):
            raise
        raise MissingDependencyError(
            f"--runner beam needs Apache Beam, which is not installed here; install it with: pip install '{BEAM_EXTRA}'"
        ) from None
    return beam_build


def _list_splits(
    source: Source, splits: Sequence[str] | None, max_examples: int | None, subsets: dict[str, Subset]
) -> dict[str, list[SourceItem]]:
    """Each split's examples (at most ``max_examples``, chosen by :func:`~skelgen_runtime.records.subset.
    choose_subset`, recorded in ``subsets``); an empty unlabelled split not asked for is left out."""
    requested = splits is not None
    splits = list(splits or source.splits())
    if not splits:
        raise DatasetError(f"no splits found under {source.root}")
    if not any(source.is_labelled(s) for s in splits):
        raise DatasetError(f"no labelled split (e.g. train) found under {source.root}")
    listed = {}
    for split in splits:
        items = source.items(split)
        if max_examples is not None:
            items, subset = choose_subset(items, max_examples)
            subsets[split] = subset
        if not items and not requested and not source.is_labelled(split):
            # an empty pred/ folder (as the scaffold creates it) just means nothing to predict yet
            print(f"split {split!r} of {source.root} holds no images: skipped", file=sys.stderr)
            continue
        if not items:
            raise DatasetError(f"split {split!r} of {source.root} is empty: no examples found")
        listed[split] = items
    return listed


def _write_locally(
    plans: list[ShardPlan],
    encode: EncodeFn,
    *,
    workers: int | None,
    skip_bad: bool,
    compression: str | None,
    progress: bool,
    desc: str,
) -> tuple[list[ShardResult], int, int]:
    """:func:`write_shards` with a progress bar.

    Returns:
        The results in plan order, how many shards were reused, how many processes wrote.
    """
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    total = sum(len(p.items) for p in plans)
    reused = 0
    bar = tqdm(total=total, unit="ex", desc=desc, disable=not progress, dynamic_ncols=True)

    def on_shard(result: ShardResult, was_reused: bool) -> None:
        nonlocal reused
        reused += was_reused
        bar.update(result.count + len(result.skipped))

    processes: list[int] = []
    try:
        flat = write_shards(
            plans,
            encode,
            workers=workers,
            skip_bad=skip_bad,
            compression=compression,
            on_shard=on_shard,
            on_start=processes.append,
        )
    finally:
        bar.close()
    return flat, reused, processes[0]


def _results_by_split(
    source: Source, plans: dict[str, list[ShardPlan]], flat: list[ShardResult]
) -> dict[str, list[ShardResult]]:
    """``flat`` (one result per plan, in plan order) per split; a split whose every example was skipped is an error."""
    results: dict[str, list[ShardResult]] = {}
    ordered = iter(flat)
    for split, plan in plans.items():
        results[split] = [next(ordered) for _ in plan]
        if sum(r.count for r in results[split]) == 0:
            raise DatasetError(f"split {split!r} of {source.root}: every example was skipped as bad")
    return results


def content_key(source: Source, *, schema: str, schema_version: int, compression: str | None) -> str:
    """Everything besides the source files themselves that shapes the records of ``source``, as JSON.

    The schema and its version, the compression, the label map (ids, names, colours, source ids,
    ignore label), the reader's class and options (its dataclass fields other than ``root`` and
    ``label_map``) and what it detected (``describe()``, e.g. the BraTS release). Every shard's
    fingerprint includes it. ``--skip-bad`` is not in it: a shard that skipped nothing is the same
    either way, and one that skipped an example is only reused by another ``--skip-bad`` build
    (:func:`~skelgen_runtime.records.writer.completed`).
    """
    options: dict[str, Any] = {}
    if dataclasses.is_dataclass(source):
        options = {
            f.name: getattr(source, f.name)
            for f in dataclasses.fields(source)
            if f.init and not f.name.startswith("_") and f.name not in ("root", "label_map")
        }
    return json.dumps(
        {
            "schema": schema,
            "schema_version": schema_version,
            "compression": compression,
            "label_map": source.label_map.to_json(),
            "ignore_label": source.label_map.ignore_label,
            "reader": f"{type(source).__module__}.{type(source).__qualname__}",
            "options": options,
            "detected": source.describe() if hasattr(source, "describe") else None,
        },
        sort_keys=True,
        default=str,
    )


def _remove_stale(folder: Folder, keep: set[str]) -> None:
    """Delete shards (and sidecars) of earlier builds with another plan, so readers never mix them."""
    for name in folder.names():
        shard = name[1 : -len(SIDECAR_SUFFIX)] if name.startswith(".") and name.endswith(SIDECAR_SUFFIX) else name
        if shard.endswith(".tfrecord") and shard not in keep:
            folder.remove(name)
