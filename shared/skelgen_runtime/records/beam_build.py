"""Builds as an Apache Beam pipeline (``--runner beam``): the local build's readers, shard plans,
encoders and shard writer, run by any Beam runner.

The launching process does what a local build does before and after writing the shards
(:func:`skelgen_runtime.records.builder.build_dataset`): it lists the splits with the reader, plans the
shards (:func:`~skelgen_runtime.records.writer.plan_shards`, the same names
``PREFIX_SPLIT-NNNNN-of-NNNNN.tfrecord``) and sets aside those an earlier run completed. The pipeline
is then::

    Create(shard plans) | Reshuffle() | Map(ShardWriter)

with one element per planned shard: its file name and its examples' keys and file paths, a few
hundred bytes. :class:`ShardWriter` calls :func:`~skelgen_runtime.records.writer.write_shard`, the
function a local build's worker processes call: the reader's ``encode`` turns one example at a time
into a record that goes straight into the shard's temporary file; then the sidecar (count, SHA-256,
fingerprint, skipped examples) is written and the shard renamed into place. No record passes through
the pipeline, so the runner never stores or shuffles them. When the pipeline is done, the launcher
reads every shard's sidecar (:func:`~skelgen_runtime.records.writer.completed`, as a resumed local
build does) and writes ``dataset_info.json`` from them.

**Memory** is bounded per worker thread by one example: a call of :class:`ShardWriter` holds the
example being encoded and its serialised record, nothing else (for BraTS one case: four modalities,
the label and the GZIP stream's buffer). A Beam worker holds one such call per thread that runs
it: one with the local runner's default in-memory mode; ``--direct_num_workers`` processes with
``--direct_running_mode=multi_processing``; on Dataflow, one per harness thread of each worker VM
(``--number_of_worker_harness_threads`` caps them; choose ``--machine_type`` for the cases' size).

**Output**: a local folder (the local runner; a runner on other machines needs a filesystem they all
mount at the same path), or a URL that ``tf.io.gfile`` writes (``gs://BUCKET/PATH``): then each
shard is written to a local temporary file by the same function and copied into place
(:meth:`~skelgen_runtime.records.folder.GfileFolder.publish`). The readers open the raw files with
their local paths: a runner on other machines needs ``--source`` on a shared filesystem (or a
bucket mounted at the same path on every worker, e.g. with Cloud Storage FUSE).

**Bad examples**: with ``--skip-bad`` they are left out and listed, as in local builds. Without it, a
shard that meets one is not written; the example is recorded beside it in a temporary file that
the next build removes, the other shards are written, and the launcher stops with the first bad
example in plan order, as a local build stops with the one it meets.

**Runners**: without ``--runner`` in the options (or with ``--runner=DirectRunner``), the pipeline
runs on Beam's ``FnApiRunner``, which Beam's ``DirectRunner`` runs batch pipelines on; it is chosen
directly because Beam's ``DirectRunner`` first tries its Prism runner, which it downloads from
GitHub. Any other runner (``DataflowRunner``, ``FlinkRunner``, ``SparkRunner``, ``PrismRunner``) is
Beam's, with its own options.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from skelgen_runtime.errors import BadExampleError, DatasetError, SkelgenError, UserInputError, did_you_mean
from skelgen_runtime.records.folder import TMP_MARK, Folder
from skelgen_runtime.records.writer import EncodeFn, ShardPlan, ShardResult, completed, sidecar_name, write_shard


class _NoBigQueryNotice(logging.Filter):
    """Drops the warning Beam's import logs when Google's BigQuery client is missing (a build uses no BigQuery)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


_notice = _NoBigQueryNotice()
logging.getLogger().addFilter(_notice)
try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.runner import PipelineState
finally:
    logging.getLogger().removeFilter(_notice)

__all__ = ["ShardWriter", "make_pipeline", "write_with_beam", "failure_name"]

#: runner names that mean Beam's local runner (``--runner=DirectRunner``, Beam's default)
_LOCAL_NAMES = ("direct", "directrunner")


def failure_name(shard: str) -> str:
    """Where a Beam worker records the bad example that kept shard ``shard`` from being written
    (a temporary name: the next build removes it)."""
    return f".{shard}{TMP_MARK}bad.json"


@dataclasses.dataclass(frozen=True)
class ShardWriter:
    """Writes one planned shard into ``folder``: the Beam pipeline's function, pickled to its workers.

    Returns the shard's file name. An unusable example (without ``skip_bad``) is recorded as
    :func:`failure_name` instead of raised, so that the launcher reports it as a local build does.
    """

    encode: EncodeFn
    folder: Folder
    skip_bad: bool
    compression: str | None

    def __call__(self, plan: ShardPlan) -> str:
        name = plan.path.name
        try:
            if self.folder.local_path is not None:  # plans of a local folder hold the shard's final path
                write_shard(plan, self.encode, self.skip_bad, self.compression)
            else:
                with tempfile.TemporaryDirectory(prefix="skelgen-shard-") as tmp:
                    staged = dataclasses.replace(plan, path=Path(tmp) / name)
                    write_shard(staged, self.encode, self.skip_bad, self.compression)
                    self.folder.publish(staged.sidecar, sidecar_name(name))  # the sidecar first, as locally
                    self.folder.publish(staged.path, name)
        except BadExampleError as err:
            self.folder.write_text(failure_name(name), json.dumps({"file": err.path, "reason": err.reason}))
        return name


def make_pipeline(options: Sequence[str]) -> beam.Pipeline:
    """A pipeline with these Beam pipeline options; Beam's ``FnApiRunner`` when they name no runner
    or the ``DirectRunner`` (module docstring).

    Raises:
        UserInputError: Beam refuses the options (e.g. an unknown runner), or one is unknown to Beam
            and its runner (Beam itself would drop it with a warning: a misspelt ``--runer`` would
            build on this machine).
    """
    parsed = PipelineOptions(list(options))
    name = parsed.view_as(StandardOptions).runner
    try:
        if name is None or name.lower() in _LOCAL_NAMES:
            from apache_beam.runners.portability.fn_api_runner import FnApiRunner

            pipeline = beam.Pipeline(runner=FnApiRunner(), options=parsed)
        else:
            pipeline = beam.Pipeline(options=parsed)  # imports the runner, which may add options of its own
    except ValueError as err:
        raise UserInputError(f"--beam-options {' '.join(options)!r}: {err}") from None
    known, unknown = _known_and_unknown(parsed)
    if unknown:
        _discard(pipeline)
        raise UserInputError(f"--beam-options: Beam has no option --{unknown[0]}{did_you_mean(unknown[0], known)}")
    return pipeline


def _discard(pipeline: beam.Pipeline) -> None:
    """Remove the temporary folder a pipeline makes when constructed (``run`` removes it; this is for
    one that is not run)."""
    shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)


def _known_and_unknown(parsed: PipelineOptions) -> tuple[list[str], list[str]]:
    """The names of the options Beam knows, and those of ``parsed`` that it does not."""
    logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = logger.level
    logger.setLevel(logging.ERROR)  # Beam warns about each unknown option; the error says it once
    try:
        known = parsed.get_all_options()
        given = parsed.get_all_options(retain_unknown_options=True)
    finally:
        logger.setLevel(level)
    return sorted(known), sorted(set(given) - set(known))


def write_with_beam(
    plans: list[ShardPlan],
    encode: EncodeFn,
    *,
    folder: Folder,
    skip_bad: bool,
    compression: str | None,
    options: Sequence[str],
) -> tuple[list[ShardResult], int, str]:
    """Write every shard of ``plans`` that an earlier run did not complete, with a Beam pipeline.

    Args:
        plans: from :func:`~skelgen_runtime.records.writer.plan_shards`: paths in ``folder`` when
            it is local, else bare file names.
        encode: ``(item, split) -> serialised tf.train.Example``; pickled to the workers.
        folder: where the shards go.
        skip_bad: leave out unusable examples and list them instead of stopping.
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        options: Beam pipeline options, e.g. ``["--runner=DataflowRunner", "--project=P", ...]``.

    Returns:
        One result per plan, in plan order; how many shards were reused; the runner's class name.

    Raises:
        BadExampleError: without ``skip_bad``, the first unusable example in plan order (the other
            shards are written).
        DatasetError: the pipeline failed, or a shard is missing after it (written where this
            process cannot read it).
        UserInputError: Beam refuses the options.
    """
    done = [completed(plan, skip_bad, folder) for plan in plans]
    todo = [plan for plan, result in zip(plans, done) if result is None]
    pipeline = make_pipeline(options)
    runner = type(pipeline.runner).__name__
    if todo:
        print(
            f"writing {len(todo)} shards with Apache Beam's {runner} ({len(plans) - len(todo)} reused)", file=sys.stderr
        )
        _ = (
            pipeline
            | "shard plans" >> beam.Create(todo)
            | "spread" >> beam.Reshuffle()
            | "write shards" >> beam.Map(ShardWriter(encode, folder, skip_bad, compression))
        )
        _run(pipeline)
    else:
        _discard(pipeline)
    results = [
        result or completed(plan, skip_bad, folder) or _missing(plan, folder) for plan, result in zip(plans, done)
    ]
    return results, len(plans) - len(todo), runner


def _run(pipeline: beam.Pipeline) -> None:
    """Run ``pipeline`` to its end; a failure becomes one :class:`DatasetError` line (Beam logs the details)."""
    try:
        state = pipeline.run().wait_until_finish()
    except SkelgenError:  # raised by a reader in a worker, re-raised here by the local runner
        raise
    except Exception as err:  # noqa: BLE001 - whatever the runner raises, the user gets one line
        first = (str(err).strip().splitlines() or [""])[0]
        raise DatasetError(f"the Beam pipeline failed: {type(err).__name__}: {first}") from None
    if state != PipelineState.DONE:
        raise DatasetError(f"the Beam pipeline ended {state}, not DONE; the runner's log says why")


def _missing(plan: ShardPlan, folder: Folder) -> ShardResult:
    """Raise what kept the shard of ``plan`` out of ``folder``: a bad example its worker recorded, or a
    folder the workers did not write."""
    name = plan.path.name
    failure = folder.read_text(failure_name(name))
    if failure:
        bad = json.loads(failure)
        raise BadExampleError(bad["file"], bad["reason"])
    raise DatasetError(
        f"the Beam pipeline finished but shard {name} is not in {folder}: with a runner on other machines, --out "
        "must be a location they all write and this machine reads (a URL such as gs://BUCKET/PATH, or a shared "
        "filesystem mounted at the same path)"
    )
