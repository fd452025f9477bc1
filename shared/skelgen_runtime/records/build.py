"""Build a dataset's TFRecords from a :class:`~skelgen_runtime.sources.base.Source`.

This is what every generated ``build_DATASET_to_tfrecord.py`` calls. :func:`build_dataset` is the
typed API; :func:`main` is the command line the generated scripts expose.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from skelgen_runtime._version import __version__
from skelgen_runtime.errors import BadExampleError, DatasetError, exit_on_error
from skelgen_runtime.records.info import INFO_FILE
from skelgen_runtime.records.writer import (
    SIDECAR_SUFFIX,
    ShardResult,
    atomic_write_text,
    plan_shards,
    remove_temporaries,
    write_shards,
)
from skelgen_runtime.sources.base import Source

__all__ = ["BuildReport", "build_dataset", "content_key", "main"]


@dataclass
class BuildReport:
    """What a build wrote: examples per split, shards reused from an earlier run, skipped examples,
    and how many processes wrote (1: this one; 0: nothing was written)."""

    counts: dict[str, int]
    reused_shards: int
    written_shards: int
    skipped: list[tuple[str, str]]
    info_path: Path
    processes: int = 1


def build_dataset(
    source: Source,
    out_dir: Path,
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
) -> BuildReport:
    """Convert every split of ``source`` into shards in ``out_dir`` plus ``dataset_info.json``.

    Args:
        source: the dataset reader.
        out_dir: the ``tfrecords`` folder (created).
        schema, schema_version, feature_spec: recorded in ``dataset_info.json``.
        prefix: shard file prefix, normally the dataset name.
        splits: splits to build; default all splits found by ``source``.
        workers: at most this many worker processes; default all cores. Fewer are started when
            the work is too small to repay them (``writer.choose_workers``).
        max_examples: keep at most this many examples per split (the first by key).
        skip_bad: leave out unusable examples and report them instead of stopping.
        shard_size: examples per shard (at most).
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: a split is empty, or (without ``skip_bad``) an example is unusable.
    """
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INFO_FILE).unlink(missing_ok=True)  # the folder is not a complete dataset until we finish
    remove_temporaries(out_dir)
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
            items = items[:max_examples]
        if not items and not requested and not source.is_labelled(split):
            # an empty pred/ folder (as the scaffold creates it) just means nothing to predict yet
            print(f"split {split!r} of {source.root} holds no images: skipped", file=sys.stderr)
            continue
        if not items:
            raise DatasetError(f"split {split!r} of {source.root} is empty: no examples found")
        listed[split] = items
    # after listing: a reader may complete its label map from the files it lists (COCO category ids)
    salt = content_key(source, schema=schema, schema_version=schema_version, compression=compression)
    plans = {split: plan_shards(items, out_dir=out_dir, prefix=prefix, split=split, shard_size=shard_size, salt=salt)
             for split, items in listed.items()}

    total = sum(len(p.items) for plan in plans.values() for p in plan)
    reused = written = 0
    bar = tqdm(total=total, unit="ex", desc=f"building {prefix}", disable=not progress, dynamic_ncols=True)

    def on_shard(result: ShardResult, was_reused: bool) -> None:
        nonlocal reused, written
        reused += was_reused
        written += not was_reused
        bar.update(result.count + len(result.skipped))

    results: dict[str, list[ShardResult]] = {}
    processes = []
    try:
        all_plans = [p for plan in plans.values() for p in plan]
        flat = write_shards(all_plans, source.encode, workers=min(workers, len(all_plans)), skip_bad=skip_bad,
                            compression=compression, on_shard=on_shard, on_start=processes.append)
    finally:
        bar.close()
    by_path = dict(zip((p.path for p in all_plans), flat))
    for split, plan in plans.items():
        results[split] = [by_path[p.path] for p in plan]
        if sum(r.count for r in results[split]) == 0:
            raise DatasetError(f"split {split!r} of {source.root}: every example was skipped as bad")

    _remove_stale(out_dir, keep={p.path.name for p in all_plans})
    skipped = [s for rs in results.values() for r in rs for s in r.skipped]
    info = {
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
            }
            for split, rs in results.items()
        },
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "source": str(source.root),
        **({"source_info": source.describe()} if hasattr(source, "describe") else {}),  # e.g. the detected release
        "build_options": {"max_examples": max_examples, "skip_bad": skip_bad, "shard_size": shard_size},
        "skelgen_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    info_path = out_dir / INFO_FILE
    atomic_write_text(info_path, json.dumps(info, indent=2))
    counts = {split: info["splits"][split]["count"] for split in results}
    return BuildReport(counts, reused, written, skipped, info_path, processes[0])


def content_key(source: Source, *, schema: str, schema_version: int, compression: str | None) -> str:
    """Everything besides the source files themselves that shapes the records of ``source``, as JSON.

    The schema and its version, the compression, the label map (ids, names, colours, source ids,
    ignore label), the reader's class and options (its dataclass fields other than ``root`` and
    ``label_map``) and what it detected (``describe()``, e.g. the BraTS release). Every shard's
    fingerprint includes it. ``--skip-bad`` is not in it: a shard that skipped nothing is the same
    either way, and one that skipped an example is only reused by another ``--skip-bad`` build
    (:func:`~skelgen_runtime.records.writer.completed`).
    """
    options = {}
    if dataclasses.is_dataclass(source):
        options = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)
                   if f.init and not f.name.startswith("_") and f.name not in ("root", "label_map")}
    return json.dumps({
        "schema": schema,
        "schema_version": schema_version,
        "compression": compression,
        "label_map": source.label_map.to_json(),
        "ignore_label": source.label_map.ignore_label,
        "reader": f"{type(source).__module__}.{type(source).__qualname__}",
        "options": options,
        "detected": source.describe() if hasattr(source, "describe") else None,
    }, sort_keys=True, default=str)


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Delete shards (and sidecars) of earlier builds with another plan, so readers never mix them."""
    for path in out_dir.glob("*.tfrecord"):
        if path.name not in keep:
            path.unlink()
    for sidecar in out_dir.glob(f".*{SIDECAR_SUFFIX}"):
        if sidecar.name[1 : -len(SIDECAR_SUFFIX)] not in keep:
            sidecar.unlink()


def main(
    *,
    dataset: str,
    default_source: Path,
    out_dir: Path,
    make_source: Callable[..., Source],
    schema_task: str,
    argv: Sequence[str] | None = None,
    extra_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> BuildReport:
    """Command line of a generated ``build_DATASET_to_tfrecord.py``.

    Args:
        extra_options: options of this dataset's reader, ``{"--release": add_argument keywords}``
            (e.g. ``BratsSource.build_options``); their values go to ``make_source`` as keywords
            (``--release`` -> ``release=``).
    """
    parser = argparse.ArgumentParser(
        prog=f"build_{dataset}_to_tfrecord.py",
        description=f"Convert the {dataset} dataset into sharded TFRecords plus {INFO_FILE}. "
        "Interrupted builds resume: finished shards are kept.",
    )
    parser.add_argument("--source", type=Path, default=default_source,
                        help=f"folder holding the raw dataset (default: {default_source}); nothing is copied")
    parser.add_argument("--out", type=Path, default=out_dir, help=f"output folder (default: {out_dir})")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="at most N worker processes (default: all cores; fewer for a small dataset)")
    parser.add_argument("--max-examples", type=int, default=None, help="at most N examples per split")
    parser.add_argument("--skip-bad", action="store_true", help="skip unusable examples and report them")
    parser.add_argument("--shard-size", type=int, default=None,
                        help="examples per shard (default: the reader's default_shard_size, else 256)")
    parser.add_argument("--splits", nargs="+", default=None, help="splits to build (default: all found)")
    parser.add_argument("--compression", choices=["GZIP", "ZLIB"], default=None,
                        help="compress the shards (default: the reader's default_compression, else none)")
    for flag, spec in (extra_options or {}).items():
        parser.add_argument(flag, **spec)
    args = parser.parse_args(argv)
    extra = {name: getattr(args, name) for name in (f.lstrip("-").replace("-", "_") for f in extra_options or {})}
    if extra:
        make_source = functools.partial(make_source, **extra)
    with exit_on_error():
        try:
            return _run(args, dataset=dataset, make_source=make_source, schema_task=schema_task)
        except BadExampleError as err:
            raise DatasetError(f"{err} (rerun with --skip-bad to leave such examples out)") from None


def _run(args: argparse.Namespace, *, dataset: str, make_source: Callable[[Path], Source], schema_task: str) -> BuildReport:
    from skelgen_runtime.schemas import get_schema
    from skelgen_runtime.schemas.base import spec_to_json

    for name, value in (("--workers", args.workers), ("--max-examples", args.max_examples),
                        ("--shard-size", args.shard_size)):
        if value is not None and value < 1:
            raise DatasetError(f"{name} must be at least 1, got {value}")
    if not args.source.is_dir():
        raise DatasetError(f"source folder {args.source} does not exist; pass --source RAW_DIR")
    source = make_source(args.source.resolve())
    # a reader may write another schema than the project's task, e.g. volumes (BraTS) in a segmentation project
    schema = get_schema(getattr(source, "record_schema", None) or schema_task)
    report = build_dataset(
        source,
        args.out,
        schema=schema.name,
        schema_version=schema.version,
        feature_spec=spec_to_json(schema.labelled_fields),
        prefix=dataset,
        splits=args.splits,
        workers=args.workers,
        max_examples=args.max_examples,
        skip_bad=args.skip_bad,
        shard_size=args.shard_size or getattr(source, "default_shard_size", 256),
        compression=args.compression or getattr(source, "default_compression", None),
    )
    counts = ", ".join(f"{k}={v}" for k, v in report.counts.items())
    by = "" if not report.written_shards else f" by {report.processes} process{'es' if report.processes > 1 else ''}"
    print(f"built {dataset}: {counts} ({report.written_shards} shards written{by}, {report.reused_shards} reused)")
    if report.skipped:
        print(f"skipped {len(report.skipped)} bad examples:")
        for path, why in report.skipped:
            print(f"  {path}: {why}")
    print(f"wrote {report.info_path}")
    return report
