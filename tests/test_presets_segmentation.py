"""Presets of published segmentation datasets: VOC 2012, Cityscapes, ADE20K.

Each test builds a miniature replica of the layout the publisher ships (the real folder and file
names, palette PNGs for VOC, labelIds PNGs for Cityscapes, uint8 annotations for ADE20K) and runs
the real flow: ``skelgen new``, ``skelgen add-dataset NAME --source REPLICA``, the generated build
script and viewer. Expected labels are computed here from tables written out in this file, not
taken from the library.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_project, script, skelgen

tf = pytest.importorskip("tensorflow")

H, W = 16, 24  # tiny images: the flow, not the pixels, is under test

VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
# labelId -> trainId of cityscapesscripts/helpers/labels.py; every other labelId is void (255)
CITYSCAPES_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
CITYSCAPES_CLASSES = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
]

LABEL_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string, default_value=b""),
}


# ---------------------------------------------------------------------------------------- replicas


def _voc_palette() -> list[int]:
    """The VOC colour map, computed the way the devkit's VOClabelcolormap.m does."""
    flat = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        flat += [r, g, b]
    return flat


def _image(path: Path, seed: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def _label(seed: int, values: list[int]) -> np.ndarray:
    """``(H, W)`` uint8 drawn from ``values``, with each value present at least once."""
    ids = np.random.default_rng(seed).choice(np.array(values, dtype=np.uint8), size=(H, W))
    ids.flat[W + 1 : W + 1 + len(values)] = values  # inside the VOC borders
    return ids


def make_voc(root: Path, train: list[str], val: list[str]) -> dict[str, np.ndarray]:
    """``root/VOCdevkit/VOC2012`` as VOCtrainval_11-May-2012.tar extracts; returns id -> label indices."""
    voc = root / "VOCdevkit" / "VOC2012"
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (voc / "SegmentationClass").mkdir()
    (voc / "ImageSets" / "Main").mkdir()
    (voc / "Annotations").mkdir()
    labels = {}
    for n, key in enumerate(train + val):
        _image(voc / "JPEGImages" / f"{key}.jpg", n)
        ids = _label(100 + n, list(range(21)))
        ids[0, :], ids[:, 0] = 255, 255  # VOC's 255 borders
        img = Image.fromarray(ids, mode="P")
        img.putpalette(_voc_palette())
        img.save(voc / "SegmentationClass" / f"{key}.png")
        labels[key] = ids
    _image(voc / "JPEGImages" / "2008_009999.jpg", 99)  # a detection-only image: in no segmentation list
    (lists / "train.txt").write_text("".join(f"{k}\n" for k in train))
    (lists / "val.txt").write_text("".join(f"{k}\n" for k in val))
    (lists / "trainval.txt").write_text("".join(f"{k}\n" for k in sorted(train + val)))
    return labels


def make_cityscapes(root: Path) -> dict[str, np.ndarray]:
    """leftImg8bit/ + gtFine/ as the two trainvaltest zips extract; returns key -> labelIds."""
    cities = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"]}
    every_id = list(range(34))
    labels, n = {}, 0
    for split, names in cities.items():
        for city in names:
            for frame in (19, 20):
                key = f"{city}_000000_{frame:06d}"
                _image(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", n)
                gt = root / "gtFine" / split / city
                gt.mkdir(parents=True, exist_ok=True)
                ids = np.zeros((H, W), np.uint8) if split == "test" else _label(200 + n, every_id)
                Image.fromarray(ids).save(gt / f"{key}_gtFine_labelIds.png")
                # the other files of the zip, which must not be taken for labels
                Image.fromarray(np.full((H, W, 3), 7, np.uint8)).save(gt / f"{key}_gtFine_color.png")
                Image.fromarray(ids.astype(np.uint16) * 1000).save(gt / f"{key}_gtFine_instanceIds.png")
                (gt / f"{key}_gtFine_polygons.json").write_text("{}")
                labels[key] = ids
                n += 1
    (root / "license.txt").write_text("replica")
    return labels


def make_ade(root: Path) -> dict[str, np.ndarray]:
    """``root/ADEChallengeData2016`` as ADEChallengeData2016.zip extracts; returns stem -> annotation."""
    ade = root / "ADEChallengeData2016"
    labels, n = {}, 0
    for folder, prefix, count in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        for i in range(1, count + 1):
            stem = f"{prefix}_{i:08d}"
            _image(ade / "images" / folder / f"{stem}.jpg", n)
            ids = _label(300 + n, [0, 1, 2, 13, 75, 149, 150])
            (ade / "annotations" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids).save(ade / "annotations" / folder / f"{stem}.png")
            labels[stem] = ids
            n += 1
    (ade / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n")
    (ade / "sceneCategories.txt").write_text("ADE_train_00000001 airport_terminal\n")
    return labels


# ------------------------------------------------------------------------------------------- flow


def _add_and_build(tmp_path: Path, name: str, source: Path) -> tuple[Path, dict, dict[str, dict]]:
    """skelgen new + add-dataset NAME --source + the build script; returns project, info, records by filename."""
    project = make_project(tmp_path / "ws")
    proc = skelgen("add-dataset", name, "--source", str(source), cwd=project)
    assert proc.returncode == 0
    script(project, f"datasets/build_{name}_to_tfrecord.py", "--workers", "1")
    folder = project / "datasets" / name / "tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    records = {}
    for path in sorted(folder.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)):
            ex = tf.io.parse_single_example(raw, LABEL_SPEC)
            label = None
            if ex["image/segmentation/class/encoded"].numpy():
                label = tf.io.decode_png(ex["image/segmentation/class/encoded"], channels=1).numpy()[..., 0]
            image = tf.io.decode_image(ex["image/encoded"], channels=3).numpy()
            assert image.shape == (ex["image/height"].numpy(), ex["image/width"].numpy(), 3) == (H, W, 3)
            records[ex["image/filename"].numpy().decode()] = {"label": label}
    return project, info, records


def _check_viewer(project: Path, name: str, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    script(project, f"datasets/tfrecord2image_{name}_format.py", "--split", "val", "--num", "2", "--out", str(out))
    assert (out / "grid.png").is_file() and len(list(out.glob("*.png"))) == 3


def _splits(info: dict) -> dict[str, tuple[int, bool]]:
    return {s: (v["count"], v["labelled"]) for s, v in info["splits"].items()}


def test_voc2012_records_keep_palette_indices_and_borders(tmp_path: Path) -> None:
    train, val = ["2007_000032", "2007_000039", "2008_000002"], ["2007_000033", "2007_000042"]
    raw = tmp_path / "raw"
    labels = make_voc(raw, train, val)
    project, info, records = _add_and_build(tmp_path, "voc2012", raw)

    assert _splits(info) == {"train": (3, True), "val": (2, True)}
    assert info["num_classes"] == 21 and info["ignore_label"] == 255
    assert [e["name"] for e in info["label_map"]] == VOC_CLASSES
    assert [e["id"] for e in info["label_map"]] == list(range(21))
    assert all("source_id" not in e for e in info["label_map"])  # palette indices are the class ids
    palette = _voc_palette()
    assert [e["color"] for e in info["label_map"]][:3] == [palette[0:3], palette[3:6], palette[6:9]]
    assert sorted(records) == sorted([f"train/{k}.jpg" for k in train] + [f"val/{k}.jpg" for k in val])
    for key, ids in labels.items():
        split = "train" if key in train else "val"
        got = records[f"{split}/{key}.jpg"]["label"]
        np.testing.assert_array_equal(got, ids)  # indices, not luminance of the palette colours
        assert got[0, 0] == 255 and set(np.unique(got)) == set(range(21)) | {255}
    _check_viewer(project, "voc2012", tmp_path)


def test_cityscapes_records_hold_train_ids_and_void(tmp_path: Path) -> None:
    raw = tmp_path / "cityscapes"
    labels = make_cityscapes(raw)
    project, info, records = _add_and_build(tmp_path, "cityscapes", raw)

    assert _splits(info) == {"train": (4, True), "val": (2, True), "test": (2, False)}
    assert info["num_classes"] == 19
    assert [e["name"] for e in info["label_map"]] == CITYSCAPES_CLASSES
    assert [e["source_id"] for e in info["label_map"]] == list(CITYSCAPES_TRAIN_IDS)
    assert info["label_map"][0]["color"] == [128, 64, 128]  # the official colour of road
    lut = np.full(256, 255, np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    for key, ids in labels.items():
        split = {"aachen": "train", "bochum": "train", "frankfurt": "val", "berlin": "test"}[key.split("_")[0]]
        record = records[f"{split}/{key}_leftImg8bit.png"]
        if split == "test":
            assert record["label"] is None
            continue
        got = record["label"]
        np.testing.assert_array_equal(got, lut[ids])
        assert set(np.unique(got)) == set(range(19)) | {255}
        for void_id in (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30):
            assert (got[ids == void_id] == 255).all()
    _check_viewer(project, "cityscapes", tmp_path)


def test_ade20k_records_shift_classes_and_ignore_other(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    labels = make_ade(raw)
    # --source may name ADEChallengeData2016 itself
    project, info, records = _add_and_build(tmp_path, "ade20k", raw / "ADEChallengeData2016")

    assert _splits(info) == {"train": (3, True), "val": (2, True)}
    assert info["num_classes"] == 150 and info["ignore_label"] == 255
    names = [e["name"] for e in info["label_map"]]
    assert names[:3] == ["wall", "building", "sky"] and names[-1] == "flag" and names[89] == "television receiver"
    assert [e["source_id"] for e in info["label_map"]] == list(range(1, 151))
    for stem, ids in labels.items():
        split = "train" if stem.startswith("ADE_train") else "val"
        got = records[f"{split}/{stem}.jpg"]["label"]
        expected = np.where(ids == 0, 255, ids.astype(np.int32) - 1).astype(np.uint8)
        np.testing.assert_array_equal(got, expected)
        assert set(np.unique(got)) == {0, 1, 12, 74, 148, 149, 255}
    _check_viewer(project, "ade20k", tmp_path)


# ----------------------------------------------------------------------------- wiring and refusals


def test_presets_are_listed_in_copier_and_not_builtin() -> None:
    import yaml

    from skelgen_runtime.presets import get_preset

    choices = yaml.safe_load((Path(__file__).resolve().parents[1] / "copier.yml").read_text())["preset"]["choices"]
    for name, reader, count in (
        ("voc2012", "Voc2012Source", 21),
        ("cityscapes", "CityscapesSource", 19),
        ("ade20k", "Ade20kSource", 150),
    ):
        preset = get_preset(name)
        assert name in choices.values()
        assert preset.readers == {"segmentation": reader} and not preset.builtin
        assert len(preset.classes["segmentation"]) == count


def test_presets_are_refused_in_a_classification_project(tmp_path: Path) -> None:
    try:
        project = make_project(tmp_path / "ws", "clf", task="classification")
    except Exception as err:  # noqa: BLE001 - only the availability of the task is probed here
        pytest.skip(f"classification projects cannot be generated in this tree yet ({err})")
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("voc2012", "cityscapes", "ade20k"):
        proc = skelgen("add-dataset", name, "--source", str(raw), cwd=project, check=False)
        assert proc.returncode != 0
        assert f"preset {name!r} is for segmentation" in proc.stderr and "classification project" in proc.stderr
        assert not (project / "datasets" / f"build_{name}_to_tfrecord.py").exists()


# ------------------------------------------------------------------------------------- bad inputs


@pytest.fixture
def voc_project(tmp_path: Path) -> tuple[Path, Path]:
    raw = tmp_path / "raw"
    make_voc(raw, ["2007_000032", "2007_000039"], ["2007_000033"])
    project = make_project(tmp_path / "ws")
    skelgen("add-dataset", "voc2012", "--source", str(raw), cwd=project)
    return project, raw / "VOCdevkit" / "VOC2012"


def _last_error(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error:"), proc.stderr
    return lines[-1]


def test_voc_missing_split_list_is_named(voc_project) -> None:
    project, voc = voc_project
    (voc / "ImageSets/Segmentation/train.txt").unlink()
    proc = script(project, "datasets/build_voc2012_to_tfrecord.py", "--workers", "1", check=False)
    error = _last_error(proc)
    assert str(voc / "ImageSets/Segmentation/train.txt") in error and "not found" in error


def test_voc_missing_label_of_a_listed_id_is_named_and_skippable(voc_project) -> None:
    project, voc = voc_project
    missing = voc / "SegmentationClass/2007_000039.png"
    missing.unlink()
    build = ["datasets/build_voc2012_to_tfrecord.py", "--workers", "1"]
    error = _last_error(script(project, *build, check=False))
    assert str(missing) in error and "label file" in error and "train.txt" in error and "--skip-bad" in error
    proc = script(project, *build, "--skip-bad")
    assert "skipped 1 bad example:" in proc.stdout
    info = json.loads((project / "datasets/voc2012/tfrecords/dataset_info.json").read_text())
    assert info["splits"]["train"]["count"] == 1 and info["skipped"][0]["file"] == str(missing)


def _voc_source(root: Path):
    from skelgen_runtime.sources import LabelMap, Voc2012Source

    return Voc2012Source(root, LabelMap(tuple(VOC_CLASSES)))


def test_voc_root_may_be_the_extract_folder_vocdevkit_or_voc2012(tmp_path: Path) -> None:
    from skelgen_runtime.errors import DatasetError

    make_voc(tmp_path, ["a"], ["b"])
    for root in (tmp_path, tmp_path / "VOCdevkit", tmp_path / "VOCdevkit/VOC2012"):
        source = _voc_source(root)
        assert source.splits() == ["train", "val"] and [i.key for i in source.items("val")] == ["b"]
    with pytest.raises(DatasetError, match="ImageSets/Segmentation/ not found under .*is --source"):
        _voc_source(tmp_path / "VOCdevkit/VOC2012/JPEGImages").splits()


def test_voc_missing_image_and_stray_label_values(tmp_path: Path) -> None:
    from skelgen_runtime.errors import BadExampleError

    make_voc(tmp_path, ["a", "b"], ["c"])
    voc = tmp_path / "VOCdevkit/VOC2012"
    source = _voc_source(tmp_path)
    (voc / "JPEGImages/a.jpg").unlink()
    with pytest.raises(BadExampleError, match=r"JPEGImages/a\.jpg: image file is missing \(listed in .*train\.txt\)"):
        source.encode(source.items("train")[0], "train")
    ids = np.array(Image.open(voc / "SegmentationClass/b.png"))
    ids[3, 3] = 21  # not a VOC class index
    img = Image.fromarray(ids, mode="P")
    img.putpalette(_voc_palette())
    img.save(voc / "SegmentationClass/b.png")
    with pytest.raises(BadExampleError, match=r"b\.png: label values \[21\] are not VOC 2012 class indices"):
        source.encode(source.items("train")[1], "train")


def test_voc_test_list_and_pred_folder_are_unlabelled_splits(tmp_path: Path) -> None:
    make_voc(tmp_path, ["a"], ["b"])
    voc = tmp_path / "VOCdevkit/VOC2012"
    _image(voc / "JPEGImages/2008_000001.jpg", 5)
    (voc / "ImageSets/Segmentation/test.txt").write_text("2008_000001\n")
    _image(tmp_path / "pred" / "mine.png", 6)
    source = _voc_source(tmp_path)
    assert source.splits() == ["train", "val", "test", "pred"]
    assert not source.is_labelled("test") and not source.is_labelled("pred") and source.is_labelled("val")
    record = tf.io.parse_single_example(source.encode(source.items("test")[0], "test"), LABEL_SPEC)
    assert record["image/segmentation/class/encoded"].numpy() == b""
    assert [i.key for i in source.items("pred")] == ["mine"]


def _cityscapes_source(root: Path):
    from skelgen_runtime.sources import CityscapesSource, LabelMap

    return CityscapesSource(root, LabelMap(tuple(CITYSCAPES_CLASSES)))


def test_cityscapes_bad_inputs_are_named(tmp_path: Path) -> None:
    from skelgen_runtime.errors import BadExampleError, DatasetError

    make_cityscapes(tmp_path)
    source = _cityscapes_source(tmp_path)
    item = source.items("train")[0]
    ids = np.array(Image.open(item.files["label"]))
    ids[2, 2] = 40  # not a labelId of the official table
    Image.fromarray(ids).save(item.files["label"])
    with pytest.raises(BadExampleError, match=r"labelIds\.png: label values \[40\] are not Cityscapes labelIds"):
        source.encode(item, "train")
    item.files["label"].unlink()
    with pytest.raises(BadExampleError, match=f"{item.files['label']}: label file of image .* is missing"):
        source.encode(item, "train")
    shutil.rmtree(tmp_path / "gtFine/val")
    with pytest.raises(DatasetError, match=r"gtFine/val not found.*gtFine_trainvaltest\.zip"):
        source.items("val")
    assert len(source.items("test")) == 2  # test needs no gtFine
    with pytest.raises(DatasetError, match=r"leftImg8bit not found: is --source"):
        _cityscapes_source(tmp_path / "gtFine").splits()


def test_cityscapes_lookup_matches_the_official_table_for_every_byte() -> None:
    source = _cityscapes_source(Path("unused"))
    table = source.lookup.table
    for value in range(256):
        if value in CITYSCAPES_TRAIN_IDS:
            assert table[value] == CITYSCAPES_TRAIN_IDS[value]
        elif value <= 33 or value == 255:
            assert table[value] == 255, value
        else:
            assert table[value] == -1, value  # 34..254 are not labelIds: the example is bad


def test_ade20k_bad_inputs_and_other_kept_as_a_class(tmp_path: Path) -> None:
    from skelgen_runtime.errors import BadExampleError, DatasetError
    from skelgen_runtime.presets import get_preset
    from skelgen_runtime.sources import Ade20kSource, LabelMap

    labels = make_ade(tmp_path)
    names = get_preset("ade20k").classes["segmentation"]
    source = Ade20kSource(tmp_path, LabelMap(names))
    assert source.splits() == ["train", "val"]
    item = source.items("val")[1]
    ids = labels[item.key].copy()
    ids[1, 1] = 151
    Image.fromarray(ids).save(item.files["label"])
    with pytest.raises(BadExampleError, match=r"ADE_val_00000002\.png: label values \[151\] are not ADE20K"):
        source.encode(item, "val")
    item.files["label"].unlink()
    with pytest.raises(BadExampleError, match=r"ADE_val_00000002\.png: label file .* is missing"):
        source.encode(item, "val")
    with pytest.raises(DatasetError, match="images/ and annotations/ not found .*ADEChallengeData2016"):
        Ade20kSource(tmp_path / "elsewhere", LabelMap(names)).splits()
    with pytest.raises(DatasetError, match="has 150 classes but the label map .* lists 3"):
        Ade20kSource(tmp_path, LabelMap(("a", "b", "c")))

    kept = Ade20kSource(tmp_path, LabelMap(("other", *names)))  # 151 names: 0 is a class, nothing shifted
    assert kept.label_map.source_ids == tuple(range(151))
    record = tf.io.parse_single_example(kept.encode(kept.items("train")[0], "train"), LABEL_SPEC)
    got = tf.io.decode_png(record["image/segmentation/class/encoded"]).numpy()[..., 0]
    np.testing.assert_array_equal(got, labels["ADE_train_00000001"])


def test_readers_pickle_for_worker_processes(tmp_path: Path) -> None:
    import skelgen_runtime.sources as sources
    from skelgen_runtime.presets import get_preset
    from skelgen_runtime.sources import LabelMap

    for name in ("voc2012", "cityscapes", "ade20k"):
        preset = get_preset(name)
        reader = getattr(sources, preset.readers["segmentation"])(tmp_path, LabelMap(preset.classes["segmentation"]))
        clone = pickle.loads(pickle.dumps(reader))
        assert clone.label_map == reader.label_map and clone.root == reader.root
        np.testing.assert_array_equal(clone.lookup.table, reader.lookup.table)
