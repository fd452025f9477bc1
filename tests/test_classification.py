"""Classification: TF-slim record keys, the image-folder layout, loss options, metrics, scripts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import script

tf = pytest.importorskip("tensorflow")

# The keys of TF-slim's datasets/dataset_utils.py (github.com/tensorflow/models, research/slim), written out
# here rather than taken from the library
SLIM_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64),
    "image/class/text": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
}
CLASSES = ["circle", "square", "triangle"]


def test_records_parse_with_the_slim_keys(built_projects) -> None:
    project = built_projects("classification", "keras")
    folder = project / "datasets/shapes/tfrecords"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["schema"] == "classification" and [c["name"] for c in info["label_map"]] == CLASSES
    records = tf.data.TFRecordDataset([str(p) for p in sorted(folder.glob("shapes_val-*.tfrecord"))])
    seen = 0
    for record in records:
        ex = tf.io.parse_single_example(record, SLIM_SPEC)
        text = ex["image/class/text"].numpy().decode()
        assert CLASSES[int(ex["image/class/label"])] == text
        image = tf.io.decode_jpeg(ex["image/encoded"]).numpy()
        assert image.shape[:2] == (ex["image/height"].numpy(), ex["image/width"].numpy()) == (64, 64)
        filename = tf.io.parse_single_example(record, {"image/filename": tf.io.FixedLenFeature((), tf.string)})
        assert filename["image/filename"].numpy().decode().startswith(f"val/{text}/")  # it came from that folder
        seen += 1
    assert seen == info["splits"]["val"]["count"] == 16


@pytest.fixture
def folder_project(built_projects, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(built_projects("classification", "keras"), copy, symlinks=True)
    return copy


def _build(project: Path, *extra: str):
    return script(project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", *extra, check=False)


def _last_error(proc) -> str:
    assert proc.returncode != 0
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error:"), proc.stderr
    return line


def test_empty_class_folder_is_named(folder_project: Path) -> None:
    empty = folder_project / "datasets/shapes/data/train/square"
    for f in empty.iterdir():
        f.unlink()
    line = _last_error(_build(folder_project))
    assert str(empty) in line and "holds no images" in line


def test_unknown_class_folder_is_named(folder_project: Path) -> None:
    train = folder_project / "datasets/shapes/data/train"
    (train / "circle").rename(train / "circel")
    line = _last_error(_build(folder_project))
    assert str(train / "circel") in line and "not a class of the label map" in line


def test_class_count_in_config_must_match_the_label_map(folder_project: Path) -> None:
    proc = script(
        folder_project, "train.py", "--config", "configs/demo.yaml", "--set", "model.num_classes=5", check=False
    )
    line = _last_error(proc)
    assert "model.num_classes is 5" in line and "has 3 classes" in line and "dataset_info.json" in line


def test_scores_by_hand() -> None:
    from skelgen_runtime.metrics.classification import classification_scores

    labels = np.array([0, 0, 1, 2, 2, 2])
    scores = np.array(
        [[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]]
    )
    s = classification_scores(labels, scores, CLASSES, top_k=2)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["top2_accuracy"] == pytest.approx(6 / 6)
    assert s["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert s["per_class"]["circle"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert s["per_class"]["square"]["precision"] == pytest.approx(0.5)
    assert s["per_class"]["triangle"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "support": 3}


def test_loss_applies_label_smoothing_and_class_weights() -> None:
    from types import SimpleNamespace

    from skelgen_runtime.losses import categorical_cross_entropy, class_weights

    def loss(config, info):  # the project's "ce" (core/losses.py), from the library's pieces
        return categorical_cross_entropy(config.train.label_smoothing, class_weights(config, info))

    info = SimpleNamespace(num_classes=3)
    logits = tf.constant([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    onehot = tf.constant([[1.0, 0, 0], [0, 1.0, 0]])
    logp = tf.nn.log_softmax(logits).numpy()

    def config(smoothing, weights):
        return SimpleNamespace(train=SimpleNamespace(label_smoothing=smoothing, class_weights=weights))

    plain = -np.array([logp[0, 0], logp[1, 1]])
    assert float(tf.reduce_mean(loss(config(0.0, None), info)(onehot, logits))) == pytest.approx(plain.mean(), rel=1e-5)
    smooth = onehot.numpy() * 0.7 + 0.1
    expected = -(smooth * logp).sum(axis=1)
    assert float(tf.reduce_mean(loss(config(0.3, None), info)(onehot, logits))) == pytest.approx(
        expected.mean(), rel=1e-5
    )
    weighted = (plain * np.array([1.0, 4.0])).mean()
    per_example = loss(config(0.0, [1.0, 4.0, 2.0]), info)(onehot, logits)
    assert per_example.shape == (2,) and float(tf.reduce_mean(per_example)) == pytest.approx(weighted, rel=1e-5)


def test_balanced_class_weights_come_from_the_train_split(built_projects) -> None:
    from types import SimpleNamespace

    from skelgen_runtime.losses import class_weights
    from skelgen_runtime.records.info import load_info

    info = load_info(built_projects("classification", "keras") / "datasets/shapes/tfrecords")
    counts = np.zeros(3)
    for p in (built_projects("classification", "keras") / "datasets/shapes/data/train").glob("[!.]*"):
        counts[CLASSES.index(p.name)] = len(list(p.iterdir()))
    weights = class_weights(SimpleNamespace(train=SimpleNamespace(class_weights="balanced")), info)
    np.testing.assert_allclose(weights, counts.sum() / (3 * counts))


@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_train_evaluate_predict(built_projects, framework: str, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", framework), project, symlinks=True)
    out = script(
        project,
        "train.py",
        "--config",
        "configs/demo.yaml",
        "--set",
        "train.epochs=2",
        "--set",
        "data.batch_size=8",
        "--set",
        "model.base_filters=4",
        "--set",
        "train.class_weights=balanced",
        "--set",
        "train.label_smoothing=0.1",
        "--set",
        "train.top_k=2",
    ).stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    log_dir = project / "logs" / run_id
    with open(log_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"accuracy", "top2", "val_accuracy", "val_top2", "val_loss"} <= set(rows[0])  # top-2 of 3 classes

    printed = script(project, "evaluate.py", "--run", "latest").stdout
    assert "accuracy=" in printed and "precision" in printed
    scores = json.loads((log_dir / "eval_val.json").read_text())
    assert 0 <= scores["accuracy"] <= 1 and np.array(scores["confusion_matrix"]).sum() == 16
    assert (log_dir / "confusion_val.png").is_file()

    script(project, "predict.py", "--run", run_id, "--output", str(tmp_path / "pred"))
    with open(tmp_path / "pred" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["class1"] in CLASSES for r in rows)
    assert len(list((tmp_path / "pred").glob("*_pred.png"))) == 4
