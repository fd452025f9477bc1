"""Peak memory of a BraTS build at two dataset sizes: it must be bounded by one case, not the dataset.

    python benchmarks/brats_build_memory.py [--sizes 4 16] [--workers 2 | --runner beam] [--keep DIR]

Writes the largest size's cases once, as BraTS 2021 publishes them (``BraTS2021_NNNNN/`` with four
int16 modalities and a uint8 ``seg`` of labels 0, 1, 2, 4, gzipped NIfTI of 240x240x155 at 1 mm),
then for each size builds the first N cases in a fresh process exactly as a generated
``build_brats_to_tfrecord.py`` does (``records.build.main`` with ``BratsSource``; shards of 8
cases, each volume deflated in its record, ``--workers`` worker processes; with ``--runner beam``, an Apache Beam pipeline on Beam's
local runner in the build process) and reports two peaks:

- ``max_process``: the largest resident set of any one process of the build (the build process or a
  worker), ``ru_maxrss`` of ``os.wait4`` on the build process, which covers the workers it waited for;
- ``tree_total``: the largest sum of the resident sets of the build process and its workers, sampled
  every 20 ms with psutil.

Neither the build process nor its workers import TensorFlow. The build passes when each peak
differs by less than 20% between the sizes. Nothing is downloaded; the data is written to a
temporary folder. ``benchmarks/run.py`` reports the same two peaks among its rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (240, 240, 155)
AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
MODALITIES = ("t1", "t1ce", "t2", "flair")

BUILD = """
import sys
from pathlib import Path
from skelgen_runtime.published_classes import BRATS_CLASSES
from skelgen_runtime.records.build import main
from skelgen_runtime.sources import BratsSource, LabelMap

if __name__ == "__main__":
    raw, out = Path(sys.argv[1]), Path(sys.argv[2])
    main(dataset="brats", default_source=raw, out_dir=out, schema_task="segmentation",
         make_source=lambda root: BratsSource(root, LabelMap(BRATS_CLASSES)),
         argv=sys.argv[3:])
"""


def write_cases(root: Path, count: int, shape: tuple[int, int, int] = SHAPE) -> None:
    """``count`` BraTS 2021 cases (realistic size by default) under ``root/BraTS2021_TrainingData``."""
    import nibabel as nib

    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij", sparse=True)
    centre = np.array(shape) / 2
    brain = ((i - centre[0]) / (0.29 * shape[0])) ** 2 + ((j - centre[1]) / (0.375 * shape[1])) ** 2 + (
        (k - centre[2]) / (0.42 * shape[2])
    ) ** 2 <= 1
    smooth = (np.sin(i / 9) + np.cos(j / 11) + np.sin(k / 7)) * 80
    for n in range(count):
        rng = np.random.default_rng(n)
        case = f"BraTS2021_{n:05d}"
        folder = root / "BraTS2021_TrainingData" / case
        folder.mkdir(parents=True, exist_ok=True)
        for m, name in enumerate(MODALITIES):
            values = 400 + 150 * m + smooth + rng.normal(0, 25, shape).astype(np.float32)
            data = np.where(brain, values, 0).astype(np.int16)
            nib.save(nib.Nifti1Image(data, AFFINE), str(folder / f"{case}_{name}.nii.gz"))
        tumour = rng.uniform(0.375, 0.625, 3) * np.array(shape)
        r2 = (i - tumour[0]) ** 2 + (j - tumour[1]) ** 2 + (k - min(tumour[2], 0.65 * shape[2])) ** 2
        seg = np.select([r2 <= 60, r2 <= 200, r2 <= 700], [1, 4, 2], 0).astype(np.uint8)
        nib.save(nib.Nifti1Image(seg, AFFINE), str(folder / f"{case}_seg.nii.gz"))
        print(f"  wrote {case}", file=sys.stderr, flush=True)


def link_cases(full: Path, dest: Path, count: int) -> Path:
    """``dest/BraTS2021_TrainingData`` holding the first ``count`` cases of ``full``, linked, not copied."""
    raw = dest / "BraTS2021_TrainingData"
    shutil.rmtree(dest, ignore_errors=True)
    raw.mkdir(parents=True)
    for n in range(count):
        (raw / f"BraTS2021_{n:05d}").symlink_to(full / "BraTS2021_TrainingData" / f"BraTS2021_{n:05d}")
    return dest


def _is_worker(process) -> bool:
    """A build worker, not multiprocessing's resource tracker."""
    import psutil

    try:
        return "resource_tracker" not in " ".join(process.cmdline())
    except psutil.Error:
        return False


def measure(raw: Path, out: Path, workers: int, runner: str = "local") -> dict:
    """Run one build in a fresh process (``runner`` ``"beam"``: ``--runner beam``, ``workers`` unused);
    return its peaks in MiB and its wall time."""
    import psutil

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    build_args = ["--workers", str(workers)] if runner == "local" else ["--runner", runner]
    start = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(raw), str(out), *build_args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    parent = psutil.Process(proc.pid)
    tree_peak = 0
    seen: set[int] = set()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        total = 0
        try:
            children = parent.children(recursive=True)
            seen.update(c.pid for c in children if _is_worker(c))
            for p in (parent, *children):
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        tree_peak = max(tree_peak, total)
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{output}")
    info = json.loads((out / "dataset_info.json").read_text())
    return {
        "cases": sum(s["count"] for s in info["splits"].values()),
        "shards": sum(len(s["shards"]) for s in info["splits"].values()),
        "max_process_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "tree_total_mib": round(tree_peak / 2**20, 1),
        "workers": len(seen),  # worker processes seen (0: the build process wrote every shard)
        "seconds": round(time.time() - start, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[4, 16], help="the two dataset sizes (cases)")
    parser.add_argument("--workers", type=int, default=2, help="build worker processes (default: 2)")
    parser.add_argument(
        "--runner",
        choices=["local", "beam"],
        default="local",
        help="beam: build with --runner beam (Beam's local runner; --workers unused)",
    )
    parser.add_argument("--keep", type=Path, help="write the data here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="brats-memory-"))
    try:
        full = work / "raw"
        if not (full / "BraTS2021_TrainingData" / f"BraTS2021_{max(args.sizes) - 1:05d}").is_dir():
            print(f"writing {max(args.sizes)} cases of {'x'.join(map(str, SHAPE))} to {full}", file=sys.stderr)
            write_cases(full, max(args.sizes))
        results = {}
        for size in args.sizes:
            raw = link_cases(full, work / f"raw{size}", size)
            out = work / f"records{size}"
            shutil.rmtree(out, ignore_errors=True)
            results[size] = measure(raw, out, args.workers, args.runner)
            print(f"{size:3d} cases: {json.dumps(results[size])}", flush=True)
        small, large = (results[s] for s in args.sizes)
        ok = True
        for key in ("max_process_mib", "tree_total_mib"):
            change = (large[key] - small[key]) / small[key]
            ok &= abs(change) < 0.20
            print(
                f"{key}: {small[key]} MiB at {args.sizes[0]} cases, {large[key]} MiB at {args.sizes[1]} cases "
                f"({change:+.1%})"
            )
        print("PASS: peak memory does not grow with the dataset" if ok else "FAIL: peak memory grows by 20% or more")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
