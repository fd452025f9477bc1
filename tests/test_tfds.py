"""TensorFlow Datasets reads every skelgen dataset: ``tfds.builder_from_directory(RECORDS/tfds)`` over the
shards the build wrote (images, boxes, label maps, volumes deflated inside their records), yielding the
examples the project's reader yields; TFDS's metadata files live in ``tfds/``, beside skelgen's own
``dataset_info.json``, which keeps its name and content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_brats import build as build_brats
from test_brats import make_brats2021
from test_brats import records as brats_records

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

SHAPES = ("circle", "square", "triangle")


def _build_shapes(task: str, raw: Path, out: Path, *args: str) -> None:
    from skelgen_runtime.records.build import main
    from skelgen_runtime.samples.shapes import write_shapes
    from skelgen_runtime.sources import CocoSource, ImageFolderSource, ImagesMasksSource, LabelMap

    write_shapes(raw, task=task, counts={"train": 7, "val": 3, "pred": 2}, size=24)
    reader = {
        "classification": lambda root: ImageFolderSource(root, LabelMap(SHAPES)),
        "detection": lambda root: CocoSource(root, LabelMap(SHAPES, first_id=1)),
        "segmentation": lambda root: ImagesMasksSource(root, LabelMap(("background", *SHAPES))),
    }[task]
    main(
        dataset="shapes",
        default_source=raw,
        out_dir=out,
        schema_task=task,
        make_source=reader,
        argv=["--workers", "1", "--shard-size", "4", "--out", str(out), *args],
    )


def _tfds(folder: Path, split: str) -> list[dict]:
    builder = tfds.builder_from_directory(str(folder))
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def _ours(out: Path, split: str) -> list[dict]:
    """The project's reader: parsed and decoded records, in shard order (no resize, no shuffle)."""
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.tasks import get_schema

    info = load_info(out)
    schema = get_schema(info.schema)
    files = [str(f) for f in info.split_files(split)]
    spec = schema.spec(info.is_labelled(split))
    found = []
    for raw in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(raw, spec)
        dense = {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v for k, v in parsed.items()}
        found.append({"parsed": {k: v.numpy() for k, v in dense.items()}, "decoded": schema.decode(parsed)})
    return found


def _at(example: dict, key: str):
    for part in key.split("/"):
        example = example[part]
    return example


@pytest.mark.parametrize("task", ["classification", "detection", "segmentation"])
def test_tfds_reads_image_datasets_as_the_project_does(task: str, tmp_path: Path) -> None:
    out = tmp_path / "records"
    _build_shapes(task, tmp_path / "raw", out)
    ours_info = json.loads((out / "dataset_info.json").read_text())
    assert ours_info["schema"] == task and "splits" in ours_info  # skelgen's file keeps its name and content
    for split in ("train", "val", "pred"):
        folder = out / "tfds" / ("unlabelled" if split == "pred" else "")
        theirs, ours = _tfds(folder, split), _ours(out, split)
        assert len(theirs) == len(ours) == ours_info["splits"][split]["count"]
        for their, our in zip(theirs, ours):
            for key, value in our["parsed"].items():
                if key == "image/encoded":  # TFDS decodes the image: the pixels our decoder gives
                    np.testing.assert_array_equal(_at(their, key), our["decoded"]["image"].numpy().astype(np.uint8))
                elif key == "image/segmentation/class/encoded":
                    np.testing.assert_array_equal(_at(their, key), our["decoded"]["label"].numpy())
                else:
                    np.testing.assert_array_equal(_at(their, key), value, err_msg=key)
    assert not (out / "tfds" / "unlabelled" / "unlabelled").exists()


def test_tfds_reads_volumes_deflated_inside_their_records(tmp_path: Path) -> None:
    replica = make_brats2021(tmp_path / "raw")
    out = tmp_path / "records"
    build_brats(tmp_path / "raw", out)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["compression"] is None and info["schema_version"] == 2
    ours = brats_records(out)
    seen = set()
    for split, entry in info["splits"].items():
        folder = out / "tfds" / ("" if entry["labelled"] else "unlabelled")
        for their in _tfds(folder, split):
            volume = their["volume"]
            case = volume["case_id"].decode()
            shape = tuple(volume["shape"])
            array = np.frombuffer(volume["encoded"].tobytes(), volume["dtype"].decode()).reshape(shape)
            np.testing.assert_array_equal(array.astype(np.float32), ours[case]["image"])
            if entry["labelled"]:
                label = np.frombuffer(volume["label"]["encoded"].tobytes(), np.uint8).reshape(shape[:3] + (1,))
                np.testing.assert_array_equal(label, ours[case]["label"])
            np.testing.assert_allclose(volume["spacing"], ours[case]["spacing"])
            seen.add(case)
    assert seen == set(ours) == set(replica) | {"BraTS2021_00001"}


def test_volumes_of_schema_version_1_are_still_read(tmp_path: Path) -> None:
    """Shards an older build wrote (raw arrays in GZIP shards, no volume/format key) decode as before."""
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas import volume

    rng = np.random.default_rng(0)
    image = rng.integers(0, 900, size=(3, 4, 5, 2)).astype(np.int16)
    label = rng.integers(0, 4, size=(3, 4, 5)).astype(np.uint8)
    feature = {
        "volume/encoded": image.astype("<i2").tobytes(),
        "volume/dtype": b"int16",
        "volume/shape": list(image.shape),
        "volume/spacing": [1.0, 1.0, 1.0],
        "volume/affine": list(np.eye(4).reshape(16)),
        "volume/nifti_header": b"",
        "volume/case_id": b"old",
        "volume/modalities": b"t1,t2",
        "volume/release": b"brats2021",
        "volume/label/encoded": label.tobytes(),
        "volume/label/format": b"raw",
    }
    out = tmp_path / "records"
    out.mkdir()
    with tf.io.TFRecordWriter(str(out / "brats_train-00000-of-00001.tfrecord"), "GZIP") as writer:
        writer.write(volume.SCHEMA.example(feature).SerializeToString())
    spec = {k: {"kind": f.kind, "dtype": f.dtype} for k, f in volume.SCHEMA.labelled_fields.items()}
    shards = [{"file": "brats_train-00000-of-00001.tfrecord", "count": 1, "sha256": ""}]
    (out / "dataset_info.json").write_text(
        json.dumps(
            {
                "schema": "volume_segmentation",
                "schema_version": 1,
                "feature_spec": spec,
                "num_classes": 4,
                "label_map": [{"id": i, "name": f"c{i}", "color": [0, 0, 0]} for i in range(4)],
                "ignore_label": 255,
                "compression": "GZIP",
                "splits": {"train": {"labelled": True, "count": 1, "shards": shards}},
            }
        )
    )
    (example,) = list(read_split(load_info(out), volume.SCHEMA, "train", training=False))
    np.testing.assert_array_equal(example["image"].numpy(), image.astype(np.float32))
    np.testing.assert_array_equal(example["label"].numpy()[..., 0], label)


def test_what_tfds_cannot_open_is_not_described_and_the_build_says_why(tmp_path: Path, capsys) -> None:
    out = tmp_path / "records"
    _build_shapes("classification", tmp_path / "raw", out, "--compression", "GZIP")
    assert not (out / "tfds").exists() or not any((out / "tfds").rglob("*.json"))
    assert "TensorFlow Datasets cannot read this build" in capsys.readouterr().err
    _build_shapes("classification", tmp_path / "raw", out)  # rebuilt plain: described again
    assert (out / "tfds" / "dataset_info.json").is_file()
    assert len(_tfds(out / "tfds", "train")) == 7
