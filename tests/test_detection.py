"""Detection: OD API records, COCO reading and its box policy, box-aware augmentation, CenterNet
targets and decoding, COCO mAP equal to pycocotools', predictions.json, and the demo's quality."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import script

tf = pytest.importorskip("tensorflow")
pytest.importorskip("pycocotools")

from skelgen_runtime.errors import BadExampleError, DatasetError  # noqa: E402
from skelgen_runtime.sources import CocoSource, LabelMap  # noqa: E402

CLASSES = ("circle", "square", "triangle")

# The keys of the TF Object Detection API (research/object_detection/dataset_tools, github.com/tensorflow/models),
# written out here rather than taken from the library.
OD_API_SPEC = {
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string),
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
}


def _dense(parsed, key):
    return tf.sparse.to_dense(parsed[key]).numpy()


# ---------------------------------------------------------------- records from the built shapes dataset


@pytest.fixture(scope="module")
def det_project(built_projects) -> Path:
    """A detection project whose small shapes dataset (48/16/4 images of 64x64) is built. Read-only."""
    return built_projects("detection", "keras")


def test_records_parse_with_the_od_api_keys_and_match_the_json(det_project: Path) -> None:
    folder = det_project / "datasets/shapes/tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["schema"] == "detection"
    assert [(c["id"], c["name"]) for c in info["label_map"]] == [(1, "circle"), (2, "square"), (3, "triangle")]
    coco = json.loads((det_project / "datasets/shapes/annotations/instances_val.json").read_text())
    by_name = {im["file_name"]: im for im in coco["images"]}
    seen = 0
    for record in tf.data.TFRecordDataset([str(f) for f in sorted(folder.glob("shapes_val-*.tfrecord"))]):
        ex = tf.io.parse_single_example(record, OD_API_SPEC)
        name = Path(ex["image/filename"].numpy().decode()).name
        image = by_name[name]
        encoded = ex["image/encoded"].numpy()
        assert ex["image/format"].numpy() == b"jpeg"
        assert ex["image/key/sha256"].numpy().decode() == hashlib.sha256(encoded).hexdigest()
        assert int(ex["image/source_id"].numpy()) == image["id"]
        assert (ex["image/height"].numpy(), ex["image/width"].numpy()) == (64, 64)
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        expected = np.array([[y / 64, x / 64, (y + h) / 64, (x + w) / 64] for x, y, w, h in (a["bbox"] for a in anns)])
        got = np.stack([_dense(ex, f"image/object/bbox/{k}") for k in ("ymin", "xmin", "ymax", "xmax")], axis=-1)
        np.testing.assert_allclose(got, expected.reshape(-1, 4), atol=1e-6)
        labels = _dense(ex, "image/object/class/label")
        assert labels.tolist() == [a["category_id"] for a in anns] and (labels >= 1).all()
        assert [t.decode() for t in _dense(ex, "image/object/class/text")] == [CLASSES[i - 1] for i in labels]
        np.testing.assert_allclose(_dense(ex, "image/object/area"), [a["area"] for a in anns])
        assert (_dense(ex, "image/object/is_crowd") == 0).all()
        seen += 1
    assert seen == 16


def test_pred_records_carry_only_image_keys(det_project: Path) -> None:
    files = sorted((det_project / "datasets/shapes/tfrecords").glob("shapes_pred-*.tfrecord"))
    record = next(iter(tf.data.TFRecordDataset([str(f) for f in files]))).numpy()
    keys = set(tf.train.Example.FromString(record).features.feature)
    assert keys == {
        "image/height",
        "image/width",
        "image/filename",
        "image/source_id",
        "image/key/sha256",
        "image/encoded",
        "image/format",
    }


def test_schema_decode_outputs() -> None:
    from skelgen_runtime.schemas.detection import SCHEMA, encode_example

    buf = __import__("io").BytesIO()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(buf, format="PNG")
    example = encode_example(
        image_bytes=buf.getvalue(),
        image_format="png",
        filename="train/a.png",
        source_id="7",
        height=10,
        width=20,
        boxes=[[0.1, 0.2, 0.5, 0.6]],
        labels=[2],
        texts=["square"],
        is_crowd=[1],
        areas=[12.0],
    )
    out = SCHEMA.decode(tf.io.parse_single_example(example.SerializeToString(), SCHEMA.labelled_spec))
    assert out["image"].shape == (10, 20, 3) and out["image"].dtype == tf.uint8
    assert out["boxes"].dtype == tf.float32
    np.testing.assert_array_equal(out["boxes"].numpy(), np.array([[0.1, 0.2, 0.5, 0.6]], np.float32))
    assert out["classes"].numpy().tolist() == [2] and out["classes"].dtype == tf.int32
    assert out["is_crowd"].numpy().tolist() == [True] and out["difficult"].numpy().tolist() == [False]
    assert out["area"].numpy().tolist() == [12.0] and int(out["height"]) == 10 and int(out["width"]) == 20
    assert out["source_id"].numpy() == b"7"


# ---------------------------------------------------------------- CocoSource: layout, ids, box policy, errors


def _coco_dir(root: Path, annotations: list[dict], categories=None, size=(40, 30), files=("a.png",)) -> Path:
    (root / "data/train").mkdir(parents=True)
    (root / "annotations").mkdir()
    for f in files:
        Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(root / "data/train" / f)
    images = [{"id": 10 + i, "file_name": f, "width": size[0], "height": size[1]} for i, f in enumerate(files)]
    categories = categories or [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    anns = [{"id": i + 1, "image_id": 10, "iscrowd": 0, **a} for i, a in enumerate(annotations)]
    (root / "annotations/instances_train.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories})
    )
    return root


def _encode_first(source: CocoSource) -> dict:
    from skelgen_runtime.schemas.detection import SCHEMA

    item = source.items("train")[0]
    parsed = tf.io.parse_single_example(source.encode(item, "train"), SCHEMA.labelled_spec)
    return {k: v.numpy() for k, v in SCHEMA.decode(parsed).items() if k != "image"}


def _source(root: Path) -> CocoSource:
    return CocoSource(root, LabelMap(CLASSES, first_id=1))


def test_category_ids_map_by_name_and_source_ids_are_kept(tmp_path: Path) -> None:
    cats = [{"id": 7, "name": "triangle"}, {"id": 3, "name": "circle"}, {"id": 12, "name": "square"}]
    root = _coco_dir(
        tmp_path,
        [
            {"category_id": 7, "bbox": [1, 2, 10, 5], "area": 50.0},
            {"category_id": 3, "bbox": [0, 0, 4, 4], "area": 16.0},
        ],
        categories=cats,
    )
    source = _source(root)
    out = _encode_first(source)
    assert out["classes"].tolist() == [3, 1]  # triangle, circle in the label map's 1-based ids
    assert source.label_map.source_ids == (3, 12, 7)
    np.testing.assert_allclose(out["boxes"][0], [2 / 30, 1 / 40, 7 / 30, 11 / 40], atol=1e-6)


def test_degenerate_and_outside_boxes_are_dropped_with_a_warning(tmp_path: Path, capsys) -> None:
    root = _coco_dir(
        tmp_path,
        [
            {"category_id": 1, "bbox": [5, 5, 10, 10], "area": 100.0},  # kept
            {"category_id": 2, "bbox": [5, 5, 0, 10], "area": 0.0},  # zero width: dropped
            {"category_id": 2, "bbox": [5, 5, 8, -3], "area": 0.0},  # negative height: dropped
            {"category_id": 3, "bbox": [50, 40, 10, 10], "area": 100.0},  # wholly outside 40x30: dropped
            {"category_id": 3, "bbox": [30, 20, 20, 20], "area": 400.0},  # partly outside: clipped to 10x10
        ],
    )
    out = _encode_first(_source(root))
    warnings = capsys.readouterr().err
    image = str(root / "data/train/a.png")
    for ann_id in (2, 3, 4):
        assert f"warning: {image}: annotation {ann_id} " in warnings and "dropped" in warnings
    assert "annotation 1 " not in warnings and "annotation 5 " not in warnings
    assert out["classes"].tolist() == [1, 3]
    np.testing.assert_allclose(out["boxes"][1], [20 / 30, 30 / 40, 1.0, 1.0], atol=1e-6)
    assert out["area"].tolist() == [100.0, 400.0]  # the JSON's area is kept (COCO's mask area)


def test_unknown_category_is_a_bad_example_naming_the_files(tmp_path: Path) -> None:
    cats = [
        {"id": 1, "name": "circle"},
        {"id": 2, "name": "square"},
        {"id": 3, "name": "triangle"},
        {"id": 4, "name": "hexagon"},
    ]
    root = _coco_dir(tmp_path, [{"category_id": 4, "bbox": [1, 1, 5, 5], "area": 25.0}], categories=cats)
    with pytest.raises(BadExampleError) as err:
        _encode_first(_source(root))
    assert err.value.path == str(root / "data/train/a.png")
    for needle in ("instances_train.json", "annotation 1 ", "category 4", "CLASSES"):
        assert needle in err.value.reason


def test_category_id_missing_from_categories_is_a_bad_example(tmp_path: Path) -> None:
    root = _coco_dir(tmp_path, [{"category_id": 99, "bbox": [1, 1, 5, 5], "area": 25.0}])
    with pytest.raises(BadExampleError, match="annotation 1 .*category 99"):
        _encode_first(_source(root))


def test_missing_image_is_named(tmp_path: Path) -> None:
    root = _coco_dir(tmp_path, [], files=("a.png", "b.png"))
    (root / "data/train/b.png").unlink()
    source = _source(root)
    item = source.items("train")[1]
    with pytest.raises(BadExampleError) as err:
        source.encode(item, "train")
    assert err.value.path == str(root / "data/train/b.png") and "not found" in err.value.reason
    assert "instances_train.json" in err.value.reason


def test_image_size_must_match_the_json(tmp_path: Path) -> None:
    root = _coco_dir(tmp_path, [])
    Image.fromarray(np.zeros((31, 40, 3), np.uint8)).save(root / "data/train/a.png")
    with pytest.raises(BadExampleError, match="40x31 but .*40x30"):
        _encode_first(_source(root))


def test_missing_or_broken_annotation_file(tmp_path: Path) -> None:
    root = _coco_dir(tmp_path, [])
    path = root / "annotations/instances_train.json"
    path.write_text("{not json")
    with pytest.raises(DatasetError, match=str(path)):
        _source(root).items("train")
    path.unlink()
    with pytest.raises(DatasetError, match=f"{path} not found"):
        _source(root).items("train")


def test_build_script_stops_on_an_unknown_category_and_skip_bad_leaves_it_out(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("detection", "keras"), project, symlinks=True)
    path = project / "datasets/shapes/annotations/instances_train.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["category_id"] = 42
    path.write_text(json.dumps(coco))
    bad = project / "datasets/shapes/data/train/train_00000.jpg"
    proc = script(project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and str(bad) in last and "category 42" in last and "--skip-bad" in last
    proc = script(project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", "--skip-bad")
    assert "skipped 1 bad example:" in proc.stdout and str(bad) in proc.stdout


# ---------------------------------------------------------------- box-aware augmentation


def _scene(h=40, w=60):
    """A dark image with two bright rectangles and their normalised boxes."""
    image = np.full((h, w, 3), 10, np.uint8)
    rects = [(4, 6, 20, 30), (22, 40, 36, 56)]  # y0, x0, y1, x1 in pixels
    for y0, x0, y1, x1 in rects:
        image[y0:y1, x0:x1] = 230
    boxes = np.array([[y0 / h, x0 / w, y1 / h, x1 / w] for y0, x0, y1, x1 in rects], np.float32)
    return tf.constant(image, tf.float32), tf.constant(boxes)


def _bright_inside(image: np.ndarray, box: np.ndarray) -> float:
    h, w = image.shape[:2]
    y0, x0, y1, x1 = np.round(box * [h, w, h, w]).astype(int)
    return float((image[y0:y1, x0:x1, 0] > 120).mean())


def test_flip_moves_boxes_with_the_image() -> None:
    from skelgen_runtime.preprocessing import detection as ops

    image, boxes = _scene()
    flipped, fboxes = ops.flip_left_right(image, boxes)
    np.testing.assert_allclose(fboxes.numpy()[0], [4 / 40, 1 - 30 / 60, 20 / 40, 1 - 6 / 60], atol=1e-6)
    for box in fboxes.numpy():
        assert _bright_inside(flipped.numpy(), box) == 1.0
    np.testing.assert_allclose(ops.flip_left_right(flipped, fboxes)[1].numpy(), boxes.numpy(), atol=1e-6)


def test_crop_clips_boxes_and_drops_those_left_too_small() -> None:
    from skelgen_runtime.preprocessing import detection as ops

    boxes = tf.constant([[0.1, 0.1, 0.3, 0.3], [0.4, 0.4, 0.8, 0.8], [0.45, 0.0, 0.55, 0.52]])
    # window: the lower-right 50% x 50% of the image
    out, keep = ops.crop_boxes(boxes, tf.constant([0.5, 0.5, 1.0, 1.0]), min_visible=0.3)
    assert keep.numpy().tolist() == [False, True, False]  # outside; 9/16 visible; 2% visible
    np.testing.assert_allclose(out.numpy()[1], [0.0, 0.0, 0.6, 0.6], atol=1e-6)
    assert ((out.numpy() >= 0) & (out.numpy() <= 1)).all()
    example = {"boxes": boxes, "classes": tf.constant([1, 2, 3]), "image": tf.zeros([2, 2, 3])}
    assert ops.filter_objects(example, keep)["classes"].numpy().tolist() == [2]


def test_random_scale_crop_keeps_boxes_on_their_objects() -> None:
    from skelgen_runtime.preprocessing import detection as ops

    tf.random.set_seed(5)
    image, boxes = _scene()
    dropped = 0
    for _ in range(20):
        img, out, keep = ops.random_scale_crop(image, boxes, (40, 60), 0.5, 2.0, min_visible=0.5)
        assert img.shape == (40, 60, 3)
        dropped += int((~keep).numpy().sum())
        for box in out.numpy()[keep.numpy()]:
            assert _bright_inside(img.numpy(), box) > 0.85  # resampling blurs the edges slightly
    assert dropped > 0  # zooming in by up to 2x cuts some rectangles off


# ---------------------------------------------------------------- CenterNet targets, loss and decoding


def test_targets_decode_back_to_the_boxes() -> None:
    from skelgen_runtime.formats import centernet

    boxes = tf.constant([[0.1, 0.2, 0.4, 0.5], [0.55, 0.6, 0.95, 0.9], [0.05, 0.7, 0.25, 0.95]])
    classes = tf.constant([1, 3, 1])
    targets = centernet.encode_targets(boxes, classes, 3, (32, 32))
    assert targets.shape == (32, 32, 8)
    assert int(tf.reduce_sum(tf.cast(targets[..., :3] == 1.0, tf.int32))) == 3  # one peak per object
    assert float(tf.reduce_sum(targets[..., 7])) == 3
    heat = tf.clip_by_value(targets[..., :3], 1e-4, 1 - 1e-4)
    outputs = tf.concat([tf.math.log(heat / (1 - heat)), targets[..., 3:7]], axis=-1)[None]
    found = centernet.decode(outputs, 3, score_threshold=0.5)
    n = int(found["num_detections"][0])
    assert n == 3
    got = sorted(zip(found["classes"][0, :n].numpy().tolist(), found["boxes"][0, :n].numpy().round(5).tolist()))
    want = sorted(zip(classes.numpy().tolist(), boxes.numpy().round(5).tolist()))
    for (gc, gb), (wc, wb) in zip(got, want):
        assert gc == wc
        np.testing.assert_allclose(gb, wb, atol=1e-5)

    loss = centernet.make_loss(3)
    perfect = float(tf.reduce_mean(loss(targets[None], outputs)))
    worse = float(tf.reduce_mean(loss(targets[None], outputs * 0.0)))
    assert 0.0 <= perfect < worse / 10  # Gaussian-shaped logits still pay a little on the negatives
    assert float(tf.reduce_mean(loss(tf.zeros([1, 8, 8, 8]), tf.zeros([1, 8, 8, 7]) - 5.0))) < 0.1  # no objects: small


def test_targets_of_an_image_without_objects() -> None:
    from skelgen_runtime.formats import centernet

    targets = centernet.encode_targets(tf.zeros([0, 4]), tf.zeros([0], tf.int32), 3, (8, 8))
    assert targets.shape == (8, 8, 8) and float(tf.reduce_sum(targets)) == 0.0


def test_per_class_nms_keeps_what_combined_nms_keeps() -> None:
    from skelgen_runtime.formats.nms import per_class_nms

    rng = np.random.default_rng(1)
    batch, k, classes = 2, 60, 3
    for _ in range(50):
        centres = rng.uniform(0, 1, (batch, k, 2))
        centres[:, k // 2 :] = centres[:, : k // 2] + rng.normal(0, 0.03, (batch, k // 2, 2))  # overlapping pairs
        sizes = rng.uniform(0.05, 0.4, (batch, k, 2))
        sizes[:, ::7, 0] = 0.0  # zero-height boxes (an untrained detector's): IoU 0 with everything
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1).astype(np.float32)
        scores = -np.sort(-rng.uniform(0, 1, (batch, k)), axis=1).astype(np.float32)
        cls = rng.integers(0, classes, (batch, k)).astype(np.int32)
        want = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :],
            tf.one_hot(cls, classes) * scores[..., None],
            100,
            100,
            iou_threshold=0.5,
            score_threshold=0.05,
            clip_boxes=False,
        )
        got = per_class_nms(
            tf.constant(boxes),
            tf.constant(scores),
            tf.constant(cls),
            max_detections=100,
            iou_threshold=0.5,
            score_threshold=0.05,
        )
        np.testing.assert_array_equal(got["num_detections"], want.valid_detections)
        np.testing.assert_array_equal(got["classes"], want.nmsed_classes.numpy().astype(np.int32))
        np.testing.assert_allclose(got["scores"], want.nmsed_scores, atol=1e-7)
        np.testing.assert_allclose(got["boxes"], want.nmsed_boxes, atol=1e-6)


# ---------------------------------------------------------------- COCO mAP equals pycocotools'


def _random_detections(rng, gt_boxes_px, gt_classes, image_id, extra=3):
    dets = []
    for (x, y, w, h), c in zip(gt_boxes_px, gt_classes):
        if rng.random() < 0.85:
            jitter = rng.normal(0, 2.0, 4)
            dets.append(
                {
                    "image_id": image_id,
                    "category_id": int(c if rng.random() < 0.9 else rng.integers(1, 4)),
                    "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)],
                    "score": float(rng.random()),
                }
            )
    for _ in range(extra):
        x, y = rng.uniform(0, 90, 2)
        dets.append(
            {
                "image_id": image_id,
                "category_id": int(rng.integers(1, 4)),
                "bbox": [x, y, rng.uniform(5, 40), rng.uniform(5, 40)],
                "score": float(rng.random() * 0.5),
            }
        )
    return dets


def test_evaluator_ap_equals_pycocotools() -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from skelgen_runtime.metrics.detection import CocoAccumulator

    rng = np.random.default_rng(0)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    acc = CocoAccumulator(categories=categories)
    gt_json = {"images": [], "annotations": [], "categories": categories}
    all_dets = []
    for image_id in range(1, 13):
        height, width = int(rng.integers(80, 140)), int(rng.integers(80, 140))
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 50, (n, 2))
        wh = rng.uniform(6, 70, (n, 2))
        px = np.concatenate([xy, np.minimum(wh, [width, height] - xy)], axis=1)
        classes = rng.integers(1, 4, n)
        area = px[:, 2] * px[:, 3] * 0.8  # a mask area, smaller than the box
        crowd = rng.random(n) < 0.1
        dets = _random_detections(rng, px, classes, image_id)
        all_dets += dets
        gt_json["images"].append({"id": image_id, "height": height, "width": width})
        for k in range(n):
            gt_json["annotations"].append(
                {
                    "id": len(gt_json["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": int(classes[k]),
                    "bbox": px[k].tolist(),
                    "area": float(area[k]),
                    "iscrowd": int(crowd[k]),
                }
            )
        to_norm = lambda b: [b[1] / height, b[0] / width, (b[1] + b[3]) / height, (b[0] + b[2]) / width]  # noqa: E731
        acc.add(
            image_id=image_id,
            height=height,
            width=width,
            gt_boxes=np.array([to_norm(b) for b in px]).reshape(-1, 4),
            gt_classes=classes,
            gt_area=area,
            gt_is_crowd=crowd,
            boxes=np.array([to_norm(d["bbox"]) for d in dets]).reshape(-1, 4),
            classes=[d["category_id"] for d in dets],
            scores=[d["score"] for d in dets],
        )
    ours = acc.evaluate()

    gt = COCO()
    gt.dataset = gt_json
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(all_dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    names = ["ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"]
    for name, value in zip(names, ev.stats):
        assert ours[name] == pytest.approx(value if value >= 0 else None, abs=1e-9), name
    assert 0.2 < ours["ap"] < 0.95  # a non-trivial case
    assert set(ours["per_class"]) == set(CLASSES)


def test_evaluator_without_detections_scores_zero() -> None:
    from skelgen_runtime.metrics.detection import CocoAccumulator

    acc = CocoAccumulator(categories=[{"id": 1, "name": "circle"}])
    acc.add(
        image_id=1,
        height=50,
        width=50,
        gt_boxes=np.array([[0.1, 0.1, 0.5, 0.5]]),
        gt_classes=[1],
        gt_area=[400.0],
        gt_is_crowd=[False],
        boxes=np.zeros((0, 4)),
        classes=[],
        scores=[],
    )
    result = acc.evaluate()
    assert result["ap"] == 0.0 and result["ap50"] == 0.0 and result["ap_large"] is None
    assert result["num_detections"] == 0


# ---------------------------------------------------------------- predict(): predictions.json and pictures


def _tiny_detector(num_classes: int, size: int):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(num_classes + 4, 1)(x))


def test_predictions_json_loads_with_coco_loadres(det_project: Path, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from conftest import library_config
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.detection import SCHEMA
    from skelgen_runtime.tasks import detection

    tf.random.set_seed(0)
    info = load_info(det_project / "datasets/shapes/tfrecords")
    config = library_config("detection", "data.image_size=[64, 64]")
    items = [
        (Path(e["filename"].numpy().decode()).stem, e["image"].numpy())
        for e in read_split(info, SCHEMA, "val", training=False)
    ]
    summary = detection.predict(_tiny_detector(3, 64), items, config, info, tmp_path)
    assert "16 pictures" in summary
    assert len(list(tmp_path.glob("*_boxes.png"))) == 16
    results = json.loads((tmp_path / "predictions.json").read_text())
    assert results and {"image_id", "file_name", "category_id", "bbox", "score"} <= set(results[0])
    gt = COCO(str(det_project / "datasets/shapes/annotations/instances_val.json"))
    dt = gt.loadRes(str(tmp_path / "predictions.json"))  # image ids are the JSON's, category ids its own
    assert len(dt.getAnnIds()) == len(results)
    by_name = {Path(im["file_name"]).stem: im["id"] for im in gt.dataset["images"]}
    assert all(r["image_id"] == by_name[r["file_name"]] for r in results)


# ---------------------------------------------------------------- the generated project, end to end


def test_model_builds_from_the_config_saves_and_reloads(det_project: Path, tmp_path: Path) -> None:
    code = (
        "import keras, core\n"
        "from core.config import Config\n"
        "from skelgen_runtime.config import load_config\n"
        "cfg = load_config(__import__('pathlib').Path('configs/default.yaml'), schema=Config)\n"
        "m = core.build_model(cfg.model, num_classes=3, input_shape=(64, 64, 3))\n"
        "assert m.output_shape == (None, 16, 16, 7), m.output_shape\n"
        "assert any(l.name.startswith('head.heatmap.') for l in m.layers)\n"
        f"m.save({str(tmp_path / 'm.keras')!r})\n"
        f"r = keras.models.load_model({str(tmp_path / 'm.keras')!r}, compile=False)\n"
        "x = keras.random.normal((2, 64, 64, 3))\n"
        "assert float(keras.ops.max(keras.ops.abs(r(x) - m(x)))) < 1e-5\n"
        "print('ok')\n"
    )
    assert script(det_project, "-c", code).stdout.strip().endswith("ok")


# The detection project's own tests and its demo quality run with every task's in test_project_e2e.py.
