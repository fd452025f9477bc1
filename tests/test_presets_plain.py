"""The plain layouts users collect themselves: ``imagefolder`` and ``custom``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_project, script, skelgen

tf = pytest.importorskip("tensorflow")


def _image(path: Path, value: int, size=(20, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def _labels(folder: Path, split: str) -> list[tuple[str, int, str]]:
    spec = {
        k: tf.io.FixedLenFeature((), t)
        for k, t in (("image/filename", tf.string), ("image/class/label", tf.int64), ("image/class/text", tf.string))
    }
    files = sorted(str(p) for p in folder.glob(f"*_{split}-*.tfrecord"))
    out = []
    for record in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(record, spec)
        out.append(
            (
                ex["image/filename"].numpy().decode(),
                int(ex["image/class/label"]),
                ex["image/class/text"].numpy().decode(),
            )
        )
    return out


def test_imagefolder_reads_classes_from_the_train_folders(tmp_path: Path) -> None:
    raw = tmp_path / "photos"
    for split, n in (("train", 3), ("val", 1)):
        for k, cls in enumerate(["zebra", "ant", "moth"]):
            for i in range(n):
                _image(raw / "data" / split / cls / f"{cls}{i}.jpg", 40 * k)
    _image(raw / "data" / "pred" / "unknown.png", 200)
    project = make_project(tmp_path / "ws", "cls", "classification")
    skelgen("add-dataset", "photos", "--preset", "imagefolder", "--source", str(raw), "--project", str(project))
    source = (project / "datasets/photos/source.py").read_text()
    assert "CLASSES = []" in source and "discover_classes" in source
    script(project, "datasets/build_photos_to_tfrecord.py", "--workers", "1")
    folder = project / "datasets/photos/tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert [c["name"] for c in info["label_map"]] == ["ant", "moth", "zebra"]  # sorted folder names
    assert {s: info["splits"][s]["count"] for s in info["splits"]} == {"pred": 1, "train": 9, "val": 3}
    for filename, label, text in _labels(folder, "train"):
        assert filename.startswith(f"train/{text}/") and ["ant", "moth", "zebra"][label] == text


def test_imagefolder_is_refused_by_a_segmentation_project(tmp_path: Path) -> None:
    project = make_project(tmp_path, "seg", "segmentation")
    proc = skelgen(
        "add-dataset",
        "photos",
        "--preset",
        "imagefolder",
        "--source",
        str(tmp_path),
        "--project",
        str(project),
        check=False,
    )
    assert proc.returncode == 2 and "is for classification; project seg is a segmentation project" in proc.stderr


def test_custom_segmentation_works_as_generated(tmp_path: Path) -> None:
    project = make_project(tmp_path / "ws", "seg", "segmentation")
    skelgen("add-dataset", "mine", "--preset", "custom", "--project", str(project))
    data = project / "datasets/mine"
    for split in ("train", "val"):
        for i in range(2):
            _image(data / "data" / split / f"{i}.jpg", 100)
            mask = np.zeros((16, 20), np.uint8)
            mask[4:10, 5:12] = 1
            mask[0] = 255
            (data / "annotations" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(data / "annotations" / split / f"{i}.png")
    proc = script(project, "datasets/build_mine_to_tfrecord.py", "--workers", "1")
    assert "skipped" in proc.stderr  # the scaffold's empty pred/ folder: nothing to predict yet
    info = json.loads((data / "tfrecords/dataset_info.json").read_text())
    assert [c["name"] for c in info["label_map"]] == ["background", "foreground"]
    assert sorted(info["splits"]) == ["train", "val"]


def _voc_xml(
    path: Path, filename: str, size: tuple[int, int], objects: list[tuple[str, int, tuple[int, int, int, int]]]
) -> None:
    parts = [
        f"<annotation><folder>VOC2012</folder><filename>{filename}</filename>",
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size><segmented>0</segmented>",
    ]
    for name, difficult, (x0, y0, x1, y1) in objects:
        parts.append(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts) + "</annotation>")


def test_pascal_voc_detection_replica(tmp_path: Path) -> None:
    voc = tmp_path / "raw" / "VOCdevkit" / "VOC2012"
    layout = {
        "train": {
            "2008_000001": [("dog", 0, (2, 3, 30, 20)), ("person", 1, (10, 5, 18, 24))],
            "2008_000002": [("tvmonitor", 0, (0, 0, 40, 25))],
        },
        "val": {"2008_000003": [("cat", 0, (5, 5, 15, 15)), ("cat", 0, (35, 20, 60, 40))]},  # second: half outside
    }
    for split, images in layout.items():
        (voc / "ImageSets/Main").mkdir(parents=True, exist_ok=True)
        (voc / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
        for image_id, objects in images.items():
            _image(voc / "JPEGImages" / f"{image_id}.jpg", 90, size=(40, 25))
            _voc_xml(voc / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", (40, 25), objects)
    project = make_project(tmp_path / "ws", "det", "detection")
    out = skelgen("add-dataset", "pascal-voc", "--source", str(tmp_path / "raw"), "--project", str(project)).stdout
    assert "added dataset pascal_voc" in out and "python datasets/build_pascal_voc_to_tfrecord.py" in out
    proc = script(project, "datasets/build_pascal_voc_to_tfrecord.py", "--workers", "1")
    info = json.loads((project / "datasets/pascal_voc/tfrecords/dataset_info.json").read_text())
    assert info["label_map"][0] == {"id": 1, "name": "aeroplane", "color": info["label_map"][0]["color"]}
    assert len(info["label_map"]) == 20 and {info["splits"][s]["count"] for s in ("train", "val")} == {2, 1}
    spec = {
        "image/source_id": tf.io.FixedLenFeature((), tf.string),
        "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
        "image/object/class/label": tf.io.VarLenFeature(tf.int64),
        "image/object/class/text": tf.io.VarLenFeature(tf.string),
        "image/object/difficult": tf.io.VarLenFeature(tf.int64),
    }
    files = sorted(str(p) for p in (project / "datasets/pascal_voc/tfrecords").glob("pascal_voc_train-*.tfrecord"))
    records = {}
    for record in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(record, spec)
        records[ex["image/source_id"].numpy().decode()] = {
            k: tf.sparse.to_dense(v).numpy() for k, v in ex.items() if isinstance(v, tf.SparseTensor)
        }
    first = records["2008_000001"]
    assert first["image/object/class/label"].tolist() == [12, 15]  # dog, person (1-based VOC order)
    assert [t.decode() for t in first["image/object/class/text"]] == ["dog", "person"]
    assert first["image/object/difficult"].tolist() == [0, 1]
    np.testing.assert_allclose(first["image/object/bbox/xmin"], [2 / 40, 10 / 40], rtol=1e-6)
    np.testing.assert_allclose(first["image/object/bbox/ymax"], [20 / 25, 24 / 25], rtol=1e-6)
    # the val box that leaves the image is clipped, not dropped; nothing is reported for it
    assert "warning" not in proc.stderr


def test_pascal_voc_bad_boxes_and_classes_name_the_file(tmp_path: Path) -> None:
    voc = tmp_path / "raw" / "VOC2012"
    (voc / "ImageSets/Main").mkdir(parents=True)
    for split in ("train", "val"):
        (voc / "ImageSets/Main" / f"{split}.txt").write_text(f"{split}1\n{split}2\n")
        for i in (1, 2):
            _image(voc / "JPEGImages" / f"{split}{i}.jpg", 90, size=(40, 25))
            _voc_xml(voc / "Annotations" / f"{split}{i}.xml", f"{split}{i}.jpg", (40, 25), [("cat", 0, (1, 1, 9, 9))])
    _voc_xml(
        voc / "Annotations/train1.xml", "train1.jpg", (40, 25), [("dog", 0, (50, 30, 70, 40)), ("cat", 0, (1, 1, 9, 9))]
    )
    _voc_xml(voc / "Annotations/val1.xml", "val1.jpg", (40, 25), [("unicorn", 0, (1, 1, 9, 9))])
    project = make_project(tmp_path / "ws", "det", "detection")
    skelgen(
        "add-dataset", "voc", "--preset", "pascal-voc", "--source", str(tmp_path / "raw"), "--project", str(project)
    )
    proc = script(project, "datasets/build_voc_to_tfrecord.py", "--workers", "1", check=False)
    assert proc.returncode == 1
    assert str(voc / "Annotations/val1.xml") in proc.stderr and "'unicorn'" in proc.stderr
    assert (
        str(voc / "Annotations/train1.xml") in proc.stderr and "no area inside the 40x25 image; dropped" in proc.stderr
    )
    assert not (project / "datasets/voc/tfrecords/dataset_info.json").exists()
    proc = script(project, "datasets/build_voc_to_tfrecord.py", "--workers", "1", "--skip-bad")
    assert "skipped 1 bad example:" in proc.stdout


def _coco(
    path: Path, images: list[tuple[int, str]], annotations: list[dict], categories: list[tuple[int, str]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "images": [{"id": i, "file_name": f, "width": 40, "height": 30} for i, f in images],
                "annotations": [{"iscrowd": 0, "area": a["bbox"][2] * a["bbox"][3], **a} for a in annotations],
                "categories": [{"id": i, "name": n, "supercategory": "x"} for i, n in categories],
            }
        )
    )


DET_SPEC = {
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
}


def _det_records(folder: Path, prefix: str) -> dict[str, dict]:
    out = {}
    for record in tf.data.TFRecordDataset(sorted(str(p) for p in folder.glob(f"{prefix}-*.tfrecord"))):
        ex = tf.io.parse_single_example(record, DET_SPEC)
        out[ex["image/source_id"].numpy().decode()] = {
            k: tf.sparse.to_dense(v).numpy().tolist() for k, v in ex.items() if isinstance(v, tf.SparseTensor)
        }
    return out


def test_coco_replica_keeps_original_category_ids(tmp_path: Path) -> None:
    raw = tmp_path / "coco"
    categories = [(1, "person"), (3, "car"), (18, "dog")]  # COCO's ids are not contiguous
    for split, ids in (("train", (11, 12)), ("val", (21,))):
        images = [(i, f"{i:012d}.jpg") for i in ids]
        for _, f in images:
            _image(raw / f"{split}2017" / f, 70, size=(40, 30))
        anns = [
            {"id": 100 * i + k, "image_id": i, "category_id": c, "bbox": [2 + k, 3, 10, 8]}
            for i in ids
            for k, c in enumerate((18, 1))
        ]
        anns[0]["iscrowd"] = 1
        _coco(raw / "annotations" / f"instances_{split}2017.json", images, anns, categories)
    _image(raw / "test2017" / "000000000031.jpg", 70, size=(40, 30))
    project = make_project(tmp_path / "ws", "det", "detection")
    skelgen("add-dataset", "coco", "--source", str(raw), "--project", str(project))
    script(project, "datasets/build_coco_to_tfrecord.py", "--workers", "1")
    folder = project / "datasets/coco/tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert [(c["id"], c["name"], c["source_id"]) for c in info["label_map"]] == [
        (1, "person", 1),
        (2, "car", 3),
        (3, "dog", 18),
    ]
    assert {s: info["splits"][s]["count"] for s in info["splits"]} == {"train": 2, "val": 1, "test": 1}
    records = _det_records(folder, "coco_train")
    assert records["11"]["image/object/class/label"] == [3, 1]  # dog, person as contiguous ids
    assert [t.decode() for t in records["11"]["image/object/class/text"]] == ["dog", "person"]
    assert records["11"]["image/object/is_crowd"] == [1, 0] and records["12"]["image/object/is_crowd"] == [0, 0]
    assert records["12"]["image/object/area"] == [80.0, 80.0]


def test_coco_missing_image_and_unknown_category_are_named(tmp_path: Path) -> None:
    raw = tmp_path / "coco"
    categories = [(1, "person"), (3, "car")]
    for split in ("train", "val"):
        images = [(1, "a.jpg"), (2, "b.jpg"), (3, "c.jpg")]
        for _, f in images[:2]:
            _image(raw / f"{split}2017" / f, 70, size=(40, 30))  # c.jpg is listed but missing
        anns = [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 2, "category_id": 7 if split == "val" else 3, "bbox": [1, 1, 5, 5]},
        ]
        _coco(raw / "annotations" / f"instances_{split}2017.json", images, anns, categories)
    project = make_project(tmp_path / "ws", "det", "detection")
    skelgen("add-dataset", "coco", "--source", str(raw), "--project", str(project))
    proc = script(project, "datasets/build_coco_to_tfrecord.py", "--workers", "1", check=False)
    assert proc.returncode == 1 and str(raw / "train2017/c.jpg") in proc.stderr and "not found" in proc.stderr
    proc = script(project, "datasets/build_coco_to_tfrecord.py", "--workers", "1", "--skip-bad")
    assert str(raw / "val2017/b.jpg") in proc.stdout and "category 7" in proc.stdout
    assert "skipped 3 bad examples" in proc.stdout  # c.jpg twice, b.jpg of val once


def test_custom_detection_reads_classes_from_the_coco_json(tmp_path: Path) -> None:
    project = make_project(tmp_path / "ws", "det", "detection")
    skelgen("add-dataset", "parts", "--preset", "custom", "--project", str(project))
    data = project / "datasets/parts"
    for split in ("train", "val"):
        _image(data / "data" / split / "x.jpg", 50, size=(40, 30))
        _coco(
            data / "annotations" / f"instances_{split}.json",
            [(1, "x.jpg")],
            [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [3, 3, 9, 9]}],
            [(9, "bolt"), (4, "nut")],
        )
    script(project, "datasets/build_parts_to_tfrecord.py", "--workers", "1")
    info = json.loads((data / "tfrecords/dataset_info.json").read_text())
    assert [(c["id"], c["name"], c["source_id"]) for c in info["label_map"]] == [(1, "nut", 4), (2, "bolt", 9)]
