"""Build rows: the generated build script against a minimal serial writer; BraTS against nibabel reads.

Every side runs as its own process, end to end (interpreter start, imports, listing, writing), on
files already in the page cache, into an emptied output folder (nothing reused).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import brats_build_memory as brats_memory

import common
from common import Row, Settings, interleave, make_project, median, python, run_phased, run_timed, write_shapes_split

__all__ = ["build_rows", "brats_rows"]

#: the minimal serial writer: the same keys, the image size from the header, no other validation
MINIMAL_WRITER = r"""
import sys
import time
from pathlib import Path
import tensorflow as tf
from PIL import Image

start = time.perf_counter()
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
b = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
i = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
for split in ("train", "val"):
    with tf.io.TFRecordWriter(str(out / f"{split}.tfrecord")) as writer:
        for image in sorted((src / "data" / split).glob("*.jpg")):
            width, height = Image.open(image).size
            label = src / "annotations" / split / f"{image.stem}.png"
            feature = {"image/encoded": b(image.read_bytes()), "image/filename": b(f"{split}/{image.name}".encode()),
                       "image/format": b(b"jpeg"), "image/height": i(height), "image/width": i(width),
                       "image/channels": i(3), "image/segmentation/class/encoded": b(label.read_bytes()),
                       "image/segmentation/class/format": b(b"png")}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
print(f"phase_seconds={time.perf_counter() - start}")
"""

#: runs a generated build script as ``python SCRIPT ARGS`` would, timing it after its imports
TIMED_BUILD = r"""
import runpy
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    script = Path(sys.argv[1]).resolve()
    sys.argv = [str(script), *sys.argv[2:]]
    sys.path.insert(0, str(script.parent))
    import build_data, skelgen_runtime.records.build, skelgen_runtime.sources  # what the script imports
    start = time.perf_counter()
    runpy.run_path(str(script), run_name="__main__")
    print(f"phase_seconds={time.perf_counter() - start}")
"""

NIBABEL_READ = r"""
import sys
from pathlib import Path
import nibabel as nib
import numpy as np

for case in sorted((Path(sys.argv[1]) / "BraTS2021_TrainingData").iterdir())[: int(sys.argv[2])]:
    for f in sorted(case.glob("*.nii.gz")):
        np.asanyarray(nib.load(str(f)).dataobj)
"""


def _replicate(src: Path, dst: Path, times: int) -> Path:
    """``src``'s images and labels ``times`` over under new names (hard links: no disk, no writing time)."""
    if (dst / ".complete").exists():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    for folder in ("data", "annotations"):
        for split_dir in sorted((src / folder).iterdir()):
            target = dst / folder / split_dir.name
            target.mkdir(parents=True)
            for f in split_dir.iterdir():
                for k in range(times):
                    os.link(f, target / f"{f.stem}_{k}{f.suffix}")
    (dst / ".complete").touch()
    return dst


def build_rows(settings: Settings) -> list[Row]:
    """Shapes builds at several sizes: ours (1 worker, all workers) against the minimal writer."""
    work = settings.work
    project = make_project(work, "build")
    size = settings.pick(256, 64)
    base_counts = settings.pick({"train": 2000, "val": 400}, {"train": 40, "val": 8})
    base = write_shapes_split(work / f"shapes{sum(base_counts.values())}", base_counts, size)
    datasets = {sum(base_counts.values()): base}
    if not settings.quick:
        small = {"train": 160, "val": 40}
        datasets[200] = write_shapes_split(work / "shapes200", small, size)
        datasets[12000] = _replicate(base, work / "shapes12000", 5)
    writer, timed_build = work / "minimal_writer.py", work / "timed_build.py"
    writer.write_text(MINIMAL_WRITER)
    timed_build.write_text(TIMED_BUILD)
    cores = os.cpu_count() or 1
    rows = []
    for count, source in sorted(datasets.items()):
        out = work / "out"
        phases: dict[str, list[float]] = {"minimal": [], "one": [], "all": []}
        cpu: dict[str, list[float]] = {"one": [], "all": []}
        processes: set[str] = set()

        def ours(workers: int, source=source, phases=phases, cpu=cpu, processes=processes) -> float:
            shutil.rmtree(out, ignore_errors=True)
            wall, phase = run_phased(
                python(
                    timed_build,
                    "datasets/build_shapes_to_tfrecord.py",
                    "--source",
                    source,
                    "--out",
                    out,
                    "--workers",
                    workers,
                ),
                cwd=project,
            )
            phases["one" if workers == 1 else "all"].append(phase)
            cpu["one" if workers == 1 else "all"].append(common.last_cpu_seconds)
            if workers > 1:
                processes.update(re.findall(r"by (\d+) process", common.last_stdout))
            return wall

        def minimal(source=source, phases=phases) -> float:
            shutil.rmtree(out, ignore_errors=True)
            wall, phase = run_phased(python(writer, source, out))
            phases["minimal"].append(phase)
            return wall

        minimal()  # warm the page cache
        phases["minimal"].clear()
        times = interleave({"minimal": minimal, "one": lambda: ours(1), "all": lambda: ours(cores)}, settings.reps)
        what = f"shapes {count:,} images {size}px"
        rows += [
            Row(
                "build",
                f"{what}: build, 1 worker vs minimal serial writer",
                median(times["one"]),
                median(times["minimal"]),
                "s",
                False,
                0.8 if count >= 2000 else None,
                {"ours": times["one"], "baseline": times["minimal"]},
                "end to end, one process each",
            ),
            Row(
                "build",
                f"{what}: build, --workers {cores} vs minimal serial writer",
                median(times["all"]),
                median(times["minimal"]),
                "s",
                False,
                0.8 if count >= 2000 else None,
                {"ours": times["all"], "baseline": times["minimal"]},
            ),
            Row(
                "build",
                f"{what}: --workers {cores} vs --workers 1",
                median(times["all"]),
                median(times["one"]),
                "s",
                False,
                1.6 if count >= 10000 else 0.95,
                {"ours": times["all"], "baseline": times["one"]},
                f"--workers {cores} started {' or '.join(sorted(processes))} process(es); target 1.6x at 10,000+ "
                f"images, else never slower (0.95: run-to-run noise); load average {os.getloadavg()[0]:.1f} after "
                "the row (a second process needs a free core)",
            ),
            Row(
                "build",
                f"{what}: CPU time, --workers {cores} vs --workers 1",
                median(cpu["all"]),
                median(cpu["one"]),
                "CPU s",
                False,
                None,
                {"ours": cpu["all"], "baseline": cpu["one"]},
                "what starting workers costs in CPU (1.0: nothing)",
            ),
            Row(
                "build",
                f"{what}: build phase only, 1 worker vs minimal writer's loop",
                median(phases["one"]),
                median(phases["minimal"]),
                "s",
                False,
                None,
                {"ours": phases["one"], "baseline": phases["minimal"]},
                "imports excluded on both sides (the minimal writer's TensorFlow import is most of its time)",
            ),
        ]
    return rows


def _compression_row(settings: Settings, raw: Path) -> Row:
    """Deflating one BraTS volume inside its record as the build does (``records.tfrecord.deflate``: ISA-L
    level 1) against zlib's default level 6 (what ``zlib.compress`` and TFDS's ``Tensor(encoding="zlib")`` use)."""
    import time
    import zlib

    from skelgen_runtime.published_classes import BRATS_CLASSES
    from skelgen_runtime.records.example import read_features
    from skelgen_runtime.records.tfrecord import COMPRESSION_LEVEL, deflate
    from skelgen_runtime.sources import BratsSource, LabelMap

    source = BratsSource(raw, LabelMap(BRATS_CLASSES))
    record = source.encode(source.items("train")[0], "train")
    volume = zlib.decompress(bytes(read_features(record, ["volume/encoded"])["volume/encoded"][0]))
    sizes: dict[str, int] = {}

    def timed(name: str, compress) -> float:
        start = time.process_time()
        sizes[name] = len(compress(volume))
        return time.process_time() - start

    times = interleave(
        {"ours": lambda: timed("ours", deflate), "zlib6": lambda: timed("zlib6", lambda data: zlib.compress(data, 6))},
        settings.reps,
    )
    mib = {k: v / 2**20 for k, v in sizes.items()}
    return Row(
        "brats",
        f"deflate one BraTS volume ({len(volume) / 2**20:.0f} MiB raw) in its record: the build's vs zlib level 6",
        median(times["ours"]),
        median(times["zlib6"]),
        "CPU s",
        False,
        None,
        {"ours": times["ours"], "baseline": times["zlib6"]},
        f"{deflate.__module__}.deflate level {COMPRESSION_LEVEL}: {mib['ours']:.1f} MiB; zlib 6: {mib['zlib6']:.1f} MiB",
    )


def brats_rows(settings: Settings) -> list[Row]:
    """BraTS builds against reading the same NIfTI files with nibabel; peak memory at two sizes."""
    work = settings.work / "brats"
    sizes = settings.pick((4, 16), (1, 4))
    shape = settings.pick(brats_memory.SHAPE, (48, 40, 32))
    raw = work / "raw"
    if not (raw / ".complete").exists():
        brats_memory.write_cases(raw, max(sizes), shape=shape)
        (raw / ".complete").touch()
    few = work / f"raw{sizes[0]}"
    brats_memory.link_cases(raw, few, sizes[0])
    reader = work / "nibabel_read.py"
    reader.write_text(NIBABEL_READ)
    script = work / "build_brats.py"
    script.write_text(brats_memory.BUILD)
    out = work / "out"
    cores = os.cpu_count() or 1

    def ours(workers: int) -> float:
        shutil.rmtree(out, ignore_errors=True)
        return run_timed(python(script, few, out, "--workers", workers))

    def nibabel() -> float:
        return run_timed(python(reader, few, sizes[0]))

    nibabel()  # warm the page cache
    times = interleave({"nibabel": nibabel, "one": lambda: ours(1), "all": lambda: ours(cores)}, settings.reps)
    n = sizes[0]
    per_case = {k: [t / n for t in v] for k, v in times.items()}
    what = f"BraTS {n} cases {'x'.join(map(str, shape))}"
    rows = [
        Row(
            "brats",
            f"{what}: build, 1 worker vs nibabel read, per case",
            median(per_case["one"]),
            median(per_case["nibabel"]),
            "s/case",
            False,
            0.5,
            {"ours": per_case["one"], "baseline": per_case["nibabel"]},
            "the build also transposes, checks, maps labels, frames and GZIP-compresses",
        ),
        Row(
            "brats",
            f"{what}: build, all {cores} workers vs nibabel read, per case",
            median(per_case["all"]),
            median(per_case["nibabel"]),
            "s/case",
            False,
            0.5,
            {"ours": per_case["all"], "baseline": per_case["nibabel"]},
        ),
    ]
    rows.append(_compression_row(settings, few))
    peaks: dict[tuple[int, int], dict] = {}
    for size in sizes:
        cases = work / f"raw{size}"
        brats_memory.link_cases(raw, cases, size)
        for workers in (1, cores):
            shutil.rmtree(out, ignore_errors=True)
            peaks[size, workers] = brats_memory.measure(cases, out, workers)
    small, large = sizes
    flat = "target: at most 1.2x the memory at 4x the cases (ratio >= 0.83)"
    for workers, key, label, target, note in (
        (1, "max_process_mib", "1 worker, the build process", 1 / 1.2, flat),
        (cores, "max_process_mib", f"{cores} workers, largest process", 1 / 1.2, flat),
        (
            cores,
            "tree_total_mib",
            f"{cores} workers, build and workers together",
            None,
            "grows with the workers started, which follow the work: "
            f"{peaks[small, cores]['workers']} at {small} cases, {peaks[large, cores]['workers']} at {large}",
        ),
    ):
        a, b = peaks[small, workers][key], peaks[large, workers][key]
        rows.append(
            Row(
                "brats",
                f"BraTS peak memory, {label}: {large} vs {small} cases",
                b,
                a,
                "MiB",
                False,
                target,
                {"ours": [b], "baseline": [a]},
                note,
            )
        )
    return rows
