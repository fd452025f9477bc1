"""A full disk is one line and loses nothing: builds, training and export on a small tmpfs the test mounts
fail naming the folder, the free space and about what is needed; nothing a later step trusts is left
half-written; after the disk grows, the same command completes and equals an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_training_control import TINY

from conftest import copy_workspace, script

DISK_FULL = 74  # DiskFullError's exit status (EX_IOERR)


@pytest.fixture
def small_disk(tmp_path: Path):
    """``resize(bytes)``: a tmpfs of that size at ``tmp_path/disk`` (remounted to resize; unmounted after)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = False

    def resize(size: int) -> Path:
        nonlocal mounted
        size = -(-size // 4096) * 4096
        options = f"remount,size={size}" if mounted else f"size={size}"
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
        mounted = True
        return disk

    yield resize
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], check=False)


BUILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import ImageFolderSource, LabelMap

    main(dataset="shapes", default_source=Path(sys.argv[1]), out_dir=Path(sys.argv[2]), schema_task="classification",
         make_source=lambda root: ImageFolderSource(root, LabelMap(("circle", "square", "triangle"))),
         argv=["--workers", "1", "--shard-size", "6", "--out", sys.argv[2]])
    """
)


def _build(tmp_path: Path, raw: Path, out: Path) -> subprocess.CompletedProcess:
    (tmp_path / "build.py").write_text(BUILD)
    return subprocess.run(
        [sys.executable, str(tmp_path / "build.py"), str(raw), str(out)], capture_output=True, text=True, timeout=300
    )


def _shards(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.tfrecord"))}


def _whole(folder: Path) -> None:
    """Every shard present is whole: its sidecar's SHA-256 matches; no temporary file is left."""
    for shard in folder.glob("*.tfrecord"):
        sidecar = json.loads((folder / f".{shard.name}.meta.json").read_text())
        assert hashlib.sha256(shard.read_bytes()).hexdigest() == sidecar["sha256"], shard
    assert not [p for p in os.listdir(folder) if ".tmp-" in p]


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    from skelgen_runtime.samples.shapes import write_shapes

    write_shapes(tmp_path / "raw", task="classification", counts={"train": 48, "val": 12}, size=96)
    return tmp_path / "raw"


def _input_bytes(raw: Path) -> int:
    return sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())


def test_a_build_that_fills_the_disk_stops_in_one_line_and_completes_after(small_disk, raw, tmp_path) -> None:
    reference = _build(tmp_path, raw, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    disk = small_disk(int(_input_bytes(raw) * 1.02))  # passes the check before; the shards' pages fill it
    out = disk / "records"
    proc = _build(tmp_path, raw, out)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == DISK_FULL and last.startswith("error: no space left on the device of "), proc.stderr
    assert " free now; it needs about " in last and last.endswith("rerun the build (the shards it finished are kept)")
    assert "Traceback" not in proc.stderr
    assert not (out / "dataset_info.json").exists() and not (out / "tfds" / "dataset_info.json").exists()
    _whole(out)
    kept = set(_shards(out))
    small_disk(8 * _input_bytes(raw))
    again = _build(tmp_path, raw, out)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} reused" in again.stdout
    assert _shards(out) == _shards(tmp_path / "reference")  # the same records as an uninterrupted build
    mine, theirs = (json.loads((d / "dataset_info.json").read_text()) for d in (out, tmp_path / "reference"))
    assert mine["splits"] == theirs["splits"]


def test_a_build_the_disk_cannot_hold_is_refused_before_it_writes(small_disk, raw, tmp_path) -> None:
    disk = small_disk(_input_bytes(raw) // 3)
    proc = _build(tmp_path, raw, disk / "records")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == DISK_FULL, proc.stderr
    assert last.startswith("error: building shapes needs about ") and f" in {disk / 'records'}, which has " in last
    assert not list((disk / "records").glob("*.tfrecord"))


@pytest.mark.slow
def test_training_and_export_on_a_full_disk_say_so_and_resume(small_disk, built_projects, tmp_path: Path) -> None:
    project = copy_workspace(built_projects, tmp_path / "ws")
    disk = small_disk(64 * 1024)
    shutil.rmtree(project / "models", ignore_errors=True)
    (project / "models").symlink_to(disk, target_is_directory=True)  # the runs' weights go to the small disk
    proc = script(project, "train.py", *TINY, "--set", "train.epochs=2", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == DISK_FULL and " needs about " in last and ", which has " in last, proc.stderr
    run = next((project / "logs").glob("*/run.json")).parent.name
    assert last.endswith(f"resume it with python train.py --resume {run}")
    assert json.loads((project / "logs" / run / "run.json").read_text())["status"] == "failed"
    small_disk(256 * 2**20)
    script(project, "train.py", "--resume", run)
    assert json.loads((project / "logs" / run / "run.json").read_text())["status"] == "complete"

    out = tmp_path / "export-disk"
    out.mkdir()
    proc = script(project, "export.py", "--run", run, "--format", "tflite", "--out", str(disk / "x"), check=False)
    assert proc.returncode == 0, proc.stderr  # room enough: exported
    small_disk(sum(f.stat().st_size for f in disk.rglob("*") if f.is_file()) + 8192)  # now full to the brim
    proc = script(project, "export.py", "--run", run, "--format", "saved_model", "--out", str(disk / "y"), check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == DISK_FULL and last.startswith("error: exporting run "), proc.stderr
    assert not (disk / "y").exists()
