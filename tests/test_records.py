"""Records: DeepLab keys, labels equal to the source PNGs, atomic and resumable builds, bad examples."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_project, script

tf = pytest.importorskip("tensorflow")

# The keys of DeepLab's datasets/build_data.py (github.com/tensorflow/models, research/deeplab), written out
# here rather than taken from the library.
DEEPLAB_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/channels": tf.io.FixedLenFeature((), tf.int64),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string),
}


def _records(files: list[Path]):
    return [r.numpy() for r in tf.data.TFRecordDataset([str(f) for f in files])]


def test_records_parse_with_the_deeplab_keys_and_keep_labels(built_project: Path) -> None:
    folder = built_project / "datasets/shapes/tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["schema"] == "segmentation" and info["ignore_label"] == 255
    assert [c["name"] for c in info["label_map"]] == ["background", "circle", "square", "triangle"]
    assert {s: info["splits"][s]["count"] for s in ("train", "val", "pred")} == {"train": 48, "val": 16, "pred": 4}
    files = sorted(folder.glob("shapes_val-*.tfrecord"))
    assert [f.name for f in files] == ["shapes_val-00000-of-00001.tfrecord"]
    seen = 0
    for record in _records(files):
        ex = tf.io.parse_single_example(record, DEEPLAB_SPEC)
        name = ex["image/filename"].numpy().decode()
        assert ex["image/format"].numpy() == b"jpeg" and ex["image/segmentation/class/format"].numpy() == b"png"
        label = tf.io.decode_png(ex["image/segmentation/class/encoded"], channels=1).numpy()[..., 0]
        source = np.array(Image.open(built_project / "datasets/shapes/annotations" / Path(name).with_suffix(".png")))
        np.testing.assert_array_equal(label, source)
        image = tf.io.decode_jpeg(ex["image/encoded"]).numpy()
        assert image.shape == (ex["image/height"].numpy(), ex["image/width"].numpy(), ex["image/channels"].numpy())
        seen += 1
    assert seen == 16
    for shard in info["splits"]["train"]["shards"]:
        import hashlib

        assert hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]


def test_palette_label_pngs_keep_their_indices(tmp_path: Path) -> None:
    """A VOC-style "P" mode label must be stored as class ids, not palette luminance (what ``tf.io.decode_png`` would give)."""
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    (tmp_path / "data/train").mkdir(parents=True)
    (tmp_path / "annotations/train").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "data/train/a.png")
    ids = np.array([[0, 1, 2, 255] * 2] * 8, dtype=np.uint8)
    label = Image.fromarray(ids, mode="P")
    label.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192])
    label.save(tmp_path / "annotations/train/a.png")
    source = ImagesMasksSource(tmp_path, LabelMap(("bg", "a", "b")))
    record = source.encode(source.items("train")[0], "train")
    ex = tf.io.parse_single_example(record, DEEPLAB_SPEC)
    np.testing.assert_array_equal(tf.io.decode_png(ex["image/segmentation/class/encoded"]).numpy()[..., 0], ids)


def _fresh_dataset(tmp_path_factory, counts: dict[str, int], size: int = 32) -> Path:
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    project = make_project(tmp_path_factory.mktemp("ws"))
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
    write_shapes(project / "datasets/shapes", counts=counts, size=size)
    return project


def test_killed_build_leaves_no_complete_looking_shard_and_resumes(tmp_path_factory) -> None:
    project = _fresh_dataset(tmp_path_factory, {"train": 600, "val": 10}, size=48)
    out = project / "datasets/shapes/tfrecords"
    cmd = [sys.executable, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", "--shard-size", "10"]
    proc = subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("shapes_train-*.tfrecord"))) < 3:
        assert proc.poll() is None, "the build finished before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert not (out / "dataset_info.json").exists()
    finished = sorted(out.glob("*.tfrecord"))
    assert 3 <= len(finished) < 61
    for shard in finished:  # every file with a final name is whole: it parses and has its recorded count
        meta = json.loads((out / f".{shard.name}.meta.json").read_text())
        assert len(_records([shard])) == meta["count"] == 10
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished}

    result = script(project, *cmd[1:])
    assert f"{len(finished)} reused" in result.stdout
    for name, stamp in stamps.items():
        p = out / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{name} was rewritten"
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["splits"]["train"]["count"] == 600 and len(info["splits"]["train"]["shards"]) == 60
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_rebuild_with_other_options_replaces_stale_shards(built_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "copy"
    shutil.copytree(built_project, project, symlinks=True)
    out = project / "datasets/shapes/tfrecords"
    script(
        project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", "--shard-size", "16", "--max-examples", "5"
    )
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["splits"]["train"]["count"] == 5
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "shapes_pred-00000-of-00001.tfrecord",
        "shapes_train-00000-of-00001.tfrecord",
        "shapes_val-00000-of-00001.tfrecord",
    ]
    assert len(_records([out / "shapes_train-00000-of-00001.tfrecord"])) == 5


@pytest.fixture
def small_project(tmp_path_factory) -> Path:
    return _fresh_dataset(tmp_path_factory, {"train": 6, "val": 3, "pred": 2})


def _build(project: Path, *extra: str):
    return script(project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", *extra, check=False)


def _assert_failed_cleanly(proc, project: Path, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error:"), proc.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert not (project / "datasets/shapes/tfrecords/dataset_info.json").exists()


def test_corrupt_image_is_named_and_skippable(small_project: Path) -> None:
    bad = small_project / "datasets/shapes/data/train/train_00002.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    _assert_failed_cleanly(_build(small_project), small_project, str(bad), "cannot read image", "--skip-bad")
    proc = _build(small_project, "--skip-bad")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 bad example:" in proc.stdout and str(bad) in proc.stdout
    info = json.loads((small_project / "datasets/shapes/tfrecords/dataset_info.json").read_text())
    assert info["splits"]["train"]["count"] == 5 and info["skipped"][0]["file"] == str(bad)


def test_truncated_image_is_refused(small_project: Path) -> None:
    path = small_project / "datasets/shapes/data/val/val_00001.jpg"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    _assert_failed_cleanly(_build(small_project), small_project, str(path))


def test_mask_size_mismatch_is_named(small_project: Path) -> None:
    mask = small_project / "datasets/shapes/annotations/train/train_00001.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(mask)
    _assert_failed_cleanly(_build(small_project), small_project, str(mask), "30x20", "32x32")


def test_label_out_of_range_is_refused_or_skipped(small_project: Path) -> None:
    for i in (0, 3):
        mask = small_project / f"datasets/shapes/annotations/train/train_0000{i}.png"
        ids = np.array(Image.open(mask))
        ids[0, 0], ids[0, 1] = 7, 255  # 7 >= num_classes (4); 255 is the ignore label and is fine
        Image.fromarray(ids).save(mask)
    _assert_failed_cleanly(_build(small_project), small_project, "train_00000.png", "label ids [7]")
    proc = _build(small_project, "--skip-bad")
    assert proc.returncode == 0 and "skipped 2 bad examples" in proc.stdout


def test_missing_mask_is_named(small_project: Path) -> None:
    mask = small_project / "datasets/shapes/annotations/val/val_00002.png"
    mask.unlink()
    _assert_failed_cleanly(_build(small_project), small_project, "val_00002.jpg", "has no label file")


def test_empty_split_is_refused(small_project: Path) -> None:
    for f in (small_project / "datasets/shapes/data/val").glob("*.jpg"):
        f.unlink()
    _assert_failed_cleanly(_build(small_project), small_project, "split 'val'", "is empty")


def test_missing_source_folder(small_project: Path, tmp_path: Path) -> None:
    proc = _build(small_project, "--source", str(tmp_path / "nowhere"))
    _assert_failed_cleanly(proc, small_project, "nowhere", "does not exist")


def test_source_elsewhere_is_read_in_place(small_project: Path, tmp_path: Path) -> None:
    raw = tmp_path / "otherdisk"
    shutil.move(small_project / "datasets/shapes/data", raw / "data")
    shutil.move(small_project / "datasets/shapes/annotations", raw / "annotations")
    proc = _build(small_project, "--source", str(raw))
    assert proc.returncode == 0, proc.stderr
    info = json.loads((small_project / "datasets/shapes/tfrecords/dataset_info.json").read_text())
    assert info["source"] == str(raw) and info["splits"]["train"]["count"] == 6
    assert not (small_project / "datasets/shapes/data").exists()


def test_reader_refuses_records_of_another_schema(built_project: Path, tmp_path: Path) -> None:
    from skelgen_runtime.errors import DatasetError
    from skelgen_runtime.records.reader import open_dataset
    from skelgen_runtime.schemas import get_schema

    folder = tmp_path / "tfrecords"
    shutil.copytree(built_project / "datasets/shapes/tfrecords", folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    info["schema"] = "detection"
    (folder / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="describes detection records"):
        open_dataset(folder, get_schema("segmentation"))
    (folder / "dataset_info.json").unlink()
    with pytest.raises(DatasetError, match="has not been built"):
        open_dataset(folder, get_schema("segmentation"))


def test_an_edited_source_file_rewrites_its_shard(small_project: Path) -> None:
    out = small_project / "datasets/shapes/tfrecords"
    assert _build(small_project, "--shard-size", "3").returncode == 0
    mask = small_project / "datasets/shapes/annotations/train/train_00004.png"
    ids = np.array(Image.open(mask))
    ids[:] = 2
    Image.fromarray(ids).save(mask)
    proc = _build(small_project, "--shard-size", "3")
    assert "1 shard written" in proc.stdout, proc.stdout  # only the shard holding the edited mask
    spec = {
        "image/filename": tf.io.FixedLenFeature((), tf.string),
        "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    }
    for record in _records(sorted(out.glob("shapes_train-*.tfrecord"))):
        ex = tf.io.parse_single_example(record, spec)
        if ex["image/filename"].numpy().endswith(b"train_00004.jpg"):
            assert (tf.io.decode_png(ex["image/segmentation/class/encoded"]).numpy() == 2).all()
