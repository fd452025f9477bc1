"""skelgen's benchmark suite: one command, a markdown table, a JSON file.

    python benchmarks/run.py [--quick] [--groups cli build brats train pipeline models] [--json PATH] [--work DIR]

Each row is a ratio of ours to a baseline measured side by side in this run (repetitions
interleaved, medians), oriented so that higher is better; ``target`` is what issue 11 asks for.
Groups:

- ``cli``: ``skelgen --help``, ``new``, ``add-dataset`` against a bare click app and ``copier.run_copy``;
- ``build``: the generated shapes build (1 worker, all workers) against a minimal serial writer;
- ``brats``: the BraTS build against reading its NIfTI files with nibabel, and peak memory at two sizes;
- ``train``: ``train.py`` against a bare ``model.fit`` and a bare ``GradientTape`` loop;
- ``pipeline``: the library's image pipeline in a generated project (train and eval, cache on and off, two sizes)
  against a hand-tuned and a naive tf.data pipeline;
- ``models``: transfer from the project's own pretraining against training from scratch (a
  difference of mIoU, not a ratio); onnxruntime against TensorFlow, milliseconds per image for
  every task and backbone (the generated README's model table; also in ``WORK/model-table.json``).

``--quick`` runs every group on tiny data once (a smoke test, not a measurement). The full suite
takes about 12 minutes on 2 cores. Everything is written under ``--work`` (default: a temporary
folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, Settings  # noqa: E402

GROUPS = ("cli", "build", "brats", "train", "pipeline", "models")


def run_groups(settings: Settings, groups: list[str]) -> list[Row]:
    """Run the chosen groups in the order of :data:`GROUPS` (the pipeline imports TensorFlow here)."""
    import bench_build
    import bench_cli
    import bench_models
    import bench_pipeline
    import bench_train

    rows: list[Row] = []
    project = None
    for group in (g for g in GROUPS if g in groups):
        start = time.perf_counter()
        print(f"[{group}] running", file=sys.stderr, flush=True)
        if group in ("train", "pipeline") and project is None:
            project = bench_pipeline.pipeline_project(settings)
        if group == "cli":
            rows += bench_cli.cli_rows(settings)
        elif group == "build":
            rows += bench_build.build_rows(settings)
        elif group == "brats":
            rows += bench_build.brats_rows(settings)
        elif group == "train":
            rows += bench_train.train_rows(settings, project)
        elif group == "models":
            rows += bench_models.transfer_rows(settings) + bench_models.latency_rows(settings)
        else:
            rows += bench_pipeline.pipeline_rows(settings, project)
        print(f"[{group}] {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return rows


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def markdown(rows: list[Row]) -> str:
    """The table: what, ours, baseline, ratio (higher is better), target and whether it is met."""
    lines = [
        "| group | comparison | ours | baseline | unit | ratio | target | met |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        sign = "+" if r.compare == "difference" else ""
        target = "" if r.target is None else f">= {sign}{r.target:.2f}"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.group} | {r.name} | {_fmt(r.ours)} | {_fmt(r.baseline)} | {r.unit} | {r.ratio:{sign}.2f} | "
            f"{target} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny data, one repetition: checks the suite runs")
    parser.add_argument(
        "--groups", nargs="+", choices=GROUPS, default=list(GROUPS), help="groups to run (default: all)"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions per side (default: 3; --quick: 1)")
    parser.add_argument("--json", type=Path, default=Path("benchmark-results.json"), help="where to write the rows")
    parser.add_argument(
        "--work", type=Path, default=None, help="keep data and projects here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="skelgen-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(quick=args.quick, reps=args.reps or (1 if args.quick else 3), work=work.resolve())
    started = time.perf_counter()
    try:
        rows = run_groups(settings, args.groups)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    when = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    print(
        f"skelgen benchmarks, {when}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end, "
        f"{seconds / 60:.1f} min{' (--quick: not a measurement)' if args.quick else ''}\n"
    )
    print(markdown(rows))
    args.json.write_text(
        json.dumps(
            {
                "date": when,
                "quick": args.quick,
                "reps": settings.reps,
                "seconds": round(seconds, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "rows": [r.to_json() for r in rows],
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
