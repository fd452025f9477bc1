"""Nothing damaged is trusted: a truncated or bit-flipped shard stops reading with a message naming the
shard, the record and its byte; the build's ``--verify`` finds damaged shards by their SHA-256 and writes
them again; a damaged resume state falls back to the previous one with a warning (or says there is none);
a damaged ``run.json`` is warned about while the other runs are listed."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from test_training_control import TINY

from conftest import copy_workspace, epochs_logged, script, skelgen, train_and_kill

tf = pytest.importorskip("tensorflow")

SHAPES = ("circle", "square", "triangle")


def _build(raw: Path, out: Path, *args: str):
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import ImageFolderSource, LabelMap

    return main(
        dataset="shapes",
        default_source=raw,
        out_dir=out,
        schema_task="classification",
        make_source=lambda root: ImageFolderSource(root, LabelMap(SHAPES)),
        argv=["--workers", "1", "--shard-size", "8", "--out", str(out), *args],
    )


@pytest.fixture
def records(tmp_path: Path) -> Path:
    from skelgen_runtime.samples.shapes import write_shapes

    write_shapes(tmp_path / "raw", task="classification", counts={"train": 24, "val": 8}, size=24)
    _build(tmp_path / "raw", tmp_path / "records")
    return tmp_path / "records"


def _frames(path: Path) -> list[tuple[int, int]]:
    """(start byte, length of the data) of each record of an uncompressed TFRecord file."""
    data, out, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        out.append((offset, length))
        offset += 12 + length + 4
    return out


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x40
    path.write_bytes(bytes(data))


def _read_all(records: Path, split: str = "train") -> int:
    from skelgen_runtime.records.damage import explain_damaged_shards
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.classification import SCHEMA

    info = load_info(records)
    with explain_damaged_shards(info, [split]):
        return sum(1 for _ in read_split(info, SCHEMA, split, training=False))


def test_a_bit_flipped_shard_is_named_with_its_record_and_byte(records: Path) -> None:
    from skelgen_runtime.errors import DatasetError

    shard = records / "shapes_train-00001-of-00003.tfrecord"
    start, length = _frames(shard)[3]  # the 4th record: flip a byte in the middle of its data
    _flip(shard, start + 12 + length // 2)
    with pytest.raises(tf.errors.DataLossError):  # what TensorFlow alone says: no file, no dataset
        list(tf.data.TFRecordDataset([str(shard)]))
    with pytest.raises(DatasetError) as caught:
        _read_all(records)
    assert str(caught.value) == (
        f"shard {shard} is damaged: record 4 (byte {start}): its data does not match its CRC; find and rewrite "
        "the damaged shards with the dataset's build script and --verify"
    )


def test_a_truncated_shard_is_named_and_so_are_the_others_damaged(records: Path) -> None:
    from skelgen_runtime.errors import DatasetError

    first, last = records / "shapes_train-00000-of-00003.tfrecord", records / "shapes_train-00002-of-00003.tfrecord"
    start, length = _frames(first)[5]
    with open(first, "r+b") as f:  # a copy cut short inside record 6
        f.truncate(start + 12 + length // 3)
    _flip(last, _frames(last)[0][0] + 2)  # and a length that no longer matches its CRC
    with pytest.raises(DatasetError) as caught:
        _read_all(records)
    message = str(caught.value)
    assert message.startswith(
        f"shard {first} is damaged: record 6 (byte {start}) is cut short: the file ends inside its data; "
        f"1 more damaged ({last.name})"
    ), message


def test_verify_finds_damaged_shards_by_checksum_and_writes_them_again(records: Path, capsys) -> None:
    info = json.loads((records / "dataset_info.json").read_text())
    sums = {s["file"]: s["sha256"] for split in info["splits"].values() for s in split["shards"]}
    shard = records / "shapes_val-00000-of-00001.tfrecord"
    _flip(shard, _frames(shard)[2][0] + 40)  # same size: a plain rebuild reuses it
    capsys.readouterr()
    report = _build(records.parent / "raw", records)
    assert report.reused_shards == len(sums) and not report.damaged
    report = _build(records.parent / "raw", records, "--verify")
    out = capsys.readouterr().out
    assert report.verified == len(sums) and [name for name, _ in report.damaged] == [shard.name]
    assert report.written_shards == 1 and report.reused_shards == len(sums) - 1
    assert f"verified {len(sums)} finished shards: 1 damaged shard, written again ({shard.name}: record 3" in out
    info = json.loads((records / "dataset_info.json").read_text())
    assert {s["file"]: s["sha256"] for split in info["splits"].values() for s in split["shards"]} == sums
    assert _read_all(records, "val") == 8
    assert "all whole" in (_build(records.parent / "raw", records, "--verify") and capsys.readouterr().out)


def test_a_damaged_run_json_is_warned_about_and_the_other_runs_are_listed(built_projects, tmp_path: Path) -> None:
    project = copy_workspace(built_projects, tmp_path / "ws")
    for name, text in {
        "20261206-010000-good": json.dumps({"status": "complete", "started": "2026-12-06T01:00:00+00:00"}),
        "20261206-020000-bad": '{"status": "comp',  # cut short by a full disk
    }.items():
        (project / "logs" / name).mkdir(parents=True)
        (project / "logs" / name / "run.json").write_text(text)
    proc = skelgen("runs", cwd=project)
    assert "20261206-010000-good" in proc.stdout and "20261206-020000-bad" in proc.stdout
    (warning,) = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: run 20261206-020000-bad: ") and "is not valid JSON" in warning


@pytest.mark.slow
def test_jobs_name_a_damaged_shard_and_verify_repairs_it(built_projects, tmp_path: Path) -> None:
    project = copy_workspace(built_projects, tmp_path / "ws")
    script(project, "datasets/build_shapes_to_tfrecord.py")  # the copy's shards, fingerprinted where they are now
    script(project, "train.py", *TINY, "--set", "train.epochs=1")
    records = project / "datasets" / "shapes" / "tfrecords"
    val = sorted(records.glob("shapes_val-*.tfrecord"))[0]
    pristine = val.read_bytes()
    _flip(val, _frames(val)[1][0] + 100)
    for command in (["evaluate.py", "--run", "latest"], ["train.py", *TINY, "--set", "train.epochs=1"]):
        proc = script(project, *command, check=False)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and last.startswith(f"error: shard {val} is damaged: record 2 (byte "), last
        assert last.endswith("python datasets/build_shapes_to_tfrecord.py --verify") and "Traceback" not in proc.stderr
    out = script(project, "datasets/build_shapes_to_tfrecord.py", "--verify").stdout
    assert "1 damaged shard, written again" in out and val.read_bytes() == pristine
    script(project, "evaluate.py", "--run", "latest")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_a_damaged_resume_state_falls_back_to_the_previous_one(built_projects, tmp_path: Path, framework) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", framework), project, symlinks=True)
    epochs = 5
    run_dir, proc = train_and_kill(project, [*TINY, "--set", f"train.epochs={epochs}"], after_epochs=3)
    backup = project / "models" / run_dir.name / "backup"
    if framework == "keras":  # BackupAndRestore keeps epoch-NNNN folders: the newest two
        states = sorted(backup.glob("epoch-*"))
        assert len(states) == 2, states
        newest, older = states[-1] / "model.weights.h5", states[-2] / "model.weights.h5"
    else:  # tf.train.CheckpointManager keeps ckpt-N and ckpt-(N-1), named in its index file oldest first; a kill
        # during the save of ckpt-(N+1) may leave its data file without the index naming it: not a resume state
        named = re.findall(r'all_model_checkpoint_paths: "([^"]+)"', (backup / "checkpoint").read_text())
        newest, older = (next(backup.glob(f"{Path(name).name}.data-*")) for name in (named[-1], named[-2]))
    saved = {p: p.read_bytes() for p in (newest, older)}
    newest.write_bytes(saved[newest][: len(saved[newest]) // 2])  # cut short, as a crash mid-write leaves it
    done = script(project, "train.py", "--resume", run_dir.name)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert any(
        line.startswith(f"warning: run {run_dir.name}: resume state ") and "resumed from the one before it" in line
        for line in warnings
    ), done.stderr
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))  # each epoch once, the redone one included
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"

    # both states damaged: said, nothing trained from scratch
    run_dir, proc = train_and_kill(project, [*TINY, "--set", f"train.epochs={epochs}"], after_epochs=3)
    backup = project / "models" / run_dir.name / "backup"
    for path in [*backup.glob("epoch-*/model.weights.h5"), *backup.glob("ckpt-*.data-*")]:
        path.write_bytes(path.read_bytes()[:100])
    logged = epochs_logged(run_dir)
    failed = subprocess.run(
        [sys.executable, "train.py", "--resume", run_dir.name], cwd=project, capture_output=True, text=True
    )
    last = failed.stderr.strip().splitlines()[-1]
    assert failed.returncode == 1 and last.startswith(f"error: run {run_dir.name} cannot be resumed: every resume"), (
        failed.stderr
    )
    assert epochs_logged(run_dir) == logged


@pytest.mark.slow
def test_a_kill_while_a_finished_training_winds_up_is_finished_by_the_rerun(built_projects, tmp_path: Path) -> None:
    """The last steps of a training (the resume state removed, final.keras written, the run marked complete)
    killed between any two of them: the rerun completes the run without training it again."""
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    args = [*TINY, "--set", "train.epochs=2"]
    script(project, "train.py", *args)
    run_dir = next((project / "logs").glob("*/run.json")).parent
    model_dir = project / "models" / run_dir.name
    record = json.loads((run_dir / "run.json").read_text())
    final = (model_dir / "final.keras").read_bytes()
    # killed mid-way through removing the resume state (a renamed leftover, half deleted), before final.keras,
    # then killed after final.keras was written but before the run was marked complete
    for leftover, has_final in ((True, False), (False, True)):
        unfinished = {**record, "status": "running"}
        unfinished.pop("finished", None)
        (run_dir / "run.json").write_text(json.dumps(unfinished))
        (model_dir / "final.keras").unlink(missing_ok=True)
        if has_final:
            (model_dir / "final.keras").write_bytes(final)
        if leftover:
            trash = model_dir / ".backup.old.tmp-1234" / "epoch-0002"
            trash.mkdir(parents=True)
            (trash / "training_metadata.json").write_text('{"epoch": 2')
        done = script(project, "train.py", *args, "--resume", "auto")
        assert "Epoch 1/" not in done.stdout and f"run {run_dir.name} had trained all 2 epochs" in done.stdout
        assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
        assert epochs_logged(run_dir) == [1, 2] and (model_dir / "final.keras").is_file()
        assert not list(model_dir.glob(".*")), list(model_dir.iterdir())  # the leftover removed
        if has_final:
            assert (model_dir / "final.keras").read_bytes() == final
