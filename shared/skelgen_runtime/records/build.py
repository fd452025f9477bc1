"""The command line of every generated ``build_DATASET_to_tfrecord.py``: :func:`main`.

It parses the options, makes the reader and calls :func:`~skelgen_runtime.records.builder.build_dataset`
(the typed API, re-exported here), then prints what was built.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from skelgen_runtime._text import count
from skelgen_runtime.errors import BadExampleError, DatasetError, UserInputError, exit_on_error
from skelgen_runtime.records.builder import BEAM_EXTRA, BuildReport, build_dataset, content_key, require_beam
from skelgen_runtime.records.folder import is_url
from skelgen_runtime.records.info import INFO_FILE
from skelgen_runtime.sources.base import Source

__all__ = ["BuildReport", "build_dataset", "content_key", "main"]


def main(
    *,
    dataset: str,
    default_source: Path,
    out_dir: Path | str,
    make_source: Callable[..., Source],
    schema_task: str,
    argv: Sequence[str] | None = None,
    extra_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> BuildReport:
    """Command line of a generated ``build_DATASET_to_tfrecord.py``.

    ``--runner beam [--beam-options "..."]`` builds with an Apache Beam pipeline
    (:mod:`skelgen_runtime.records.beam_build`); ``--out`` may then also be a URL (``gs://...``).

    Args:
        extra_options: options of this dataset's reader, ``{"--release": add_argument keywords}``
            (e.g. ``BratsSource.build_options``); their values go to ``make_source`` as keywords
            (``--release`` -> ``release=``).
    """
    parser = argparse.ArgumentParser(
        prog=f"build_{dataset}_to_tfrecord.py",
        description=f"Convert the {dataset} dataset into sharded TFRecords plus {INFO_FILE}. "
        "Interrupted builds resume: finished shards are kept. --runner beam runs the same build as an "
        "Apache Beam pipeline, on Beam's local runner or, with --beam-options, on Dataflow, Flink or Spark.",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=default_source,
        help=f"folder holding the raw dataset (default: {default_source}); nothing is copied",
    )
    parser.add_argument(
        "--out",
        default=out_dir,
        help=f"output folder (default: {out_dir}); with --runner beam also a URL such as gs://BUCKET/PATH",
    )
    parser.add_argument(
        "--runner",
        choices=["local", "beam"],
        default="local",
        help="local: this host's worker processes (default); beam: an Apache Beam pipeline "
        f"(pip install '{BEAM_EXTRA}')",
    )
    parser.add_argument(
        "--beam-options",
        default=None,
        metavar="OPTIONS",
        help="with --runner beam: Beam pipeline options as one string (default: Beam's local runner), "
        'e.g. "--runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp"',
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local builds: at most N worker processes (default: all cores; fewer for a small dataset)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help="at most N examples per split, a seeded sample that keeps every class the listing knows "
        "(image folders, COCO); recorded in dataset_info.json",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip unusable examples and report them")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check every finished shard against the SHA-256 dataset_info.json records before reusing it; "
        "damaged shards (a bit flipped, a copy cut short) are named and written again",
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="examples per shard (default: the reader's default_shard_size, else 256)",
    )
    parser.add_argument("--splits", nargs="+", default=None, help="splits to build (default: all found)")
    parser.add_argument(
        "--compression",
        choices=["GZIP", "ZLIB"],
        default=None,
        help="compress the shards (default: the reader's default_compression, else none)",
    )
    for flag, spec in (extra_options or {}).items():
        parser.add_argument(flag, **spec)
    args = parser.parse_args(_attach_beam_options(sys.argv[1:] if argv is None else argv))
    extra = {name: getattr(args, name) for name in (f.lstrip("-").replace("-", "_") for f in extra_options or {})}
    if extra:
        make_source = functools.partial(make_source, **extra)
    with exit_on_error():
        try:
            return _run(args, dataset=dataset, make_source=make_source, schema_task=schema_task)
        except BadExampleError as err:
            raise DatasetError(f"{err} (rerun with --skip-bad to leave such examples out)") from None


def _run(
    args: argparse.Namespace, *, dataset: str, make_source: Callable[[Path], Source], schema_task: str
) -> BuildReport:
    from skelgen_runtime.schemas import get_schema
    from skelgen_runtime.schemas.base import spec_to_json

    for name, value in (
        ("--workers", args.workers),
        ("--max-examples", args.max_examples),
        ("--shard-size", args.shard_size),
    ):
        if value is not None and value < 1:
            raise DatasetError(f"{name} must be at least 1, got {value}")
    beam_options = _beam_options(args)
    if not args.source.is_dir():
        raise DatasetError(f"source folder {args.source} does not exist; pass --source RAW_DIR")
    source = make_source(args.source.resolve())
    # a reader may write another schema than the project's task, e.g. volumes (BraTS) in a segmentation project
    schema = get_schema(getattr(source, "record_schema", None) or schema_task)
    report = build_dataset(
        source,
        args.out if is_url(args.out) else Path(args.out),
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
        beam_options=beam_options,
        record_schema=schema,
        verify=args.verify,
    )
    counts = ", ".join(f"{k}={v}" for k, v in report.counts.items())
    by = "" if not report.written_shards else f" by {count(report.processes, 'process', 'processes')}"
    if report.written_shards and report.runner != "local":
        by = f" with Apache Beam's {report.runner}"
    for split, subset in report.subsets.items():
        print(subset.describe(split), file=sys.stderr if subset.missing_classes else sys.stdout)
    print(
        f"built {dataset}: {counts} ({count(report.written_shards, 'shard')} written{by}, {report.reused_shards} reused)"
    )
    if report.skipped:
        print(f"skipped {count(len(report.skipped), 'bad example')}:")
        for path, why in report.skipped:
            print(f"  {path}: {why}")
    print(f"wrote {report.info_path}")
    if args.verify:
        damaged = "; ".join(f"{name}: {why}" for name, why in report.damaged)
        print(
            f"verified {count(report.verified, 'finished shard')}: "
            + (f"{count(len(report.damaged), 'damaged shard')}, written again ({damaged})" if damaged else "all whole")
        )
    if report.tfds_unreadable:
        print(f"note: TensorFlow Datasets cannot read this build: {report.tfds_unreadable}", file=sys.stderr)
    return report


def _attach_beam_options(argv: Sequence[str]) -> list[str]:
    """``--beam-options VALUE`` as ``--beam-options=VALUE`` (argparse takes a lone ``--runner=X`` for an option)."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        out.append(arg if arg != "--beam-options" else f"--beam-options={next(args, '')}")
    return out


def _beam_options(args: argparse.Namespace) -> list[str] | None:
    """The Beam pipeline options of ``--runner beam`` (checked for Beam first), None for a local build."""
    if args.runner != "beam":
        if args.beam_options is not None:
            raise UserInputError("--beam-options applies to Beam builds: add --runner beam")
        return None
    if args.workers is not None:
        raise UserInputError(
            "--workers applies to local builds; a Beam runner sets its own parallelism, e.g. "
            '--beam-options "--direct_num_workers=2 --direct_running_mode=multi_processing" on '
            "Beam's local runner"
        )
    require_beam()  # before reading the source: say at once what to install
    try:
        return shlex.split(args.beam_options or "")
    except ValueError as err:
        raise UserInputError(f"--beam-options {args.beam_options!r}: {err}") from None
