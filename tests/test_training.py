"""Training runs: the run record, resuming after SIGKILL, evaluate and predict, config errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import epochs_logged, script, train_and_kill

TINY = [
    "--set",
    "data.image_size=[32,32]",
    "--set",
    "data.batch_size=8",
    "--set",
    "model.base_filters=4",
    "--set",
    "model.depth=2",
]


@pytest.fixture(params=["keras", "tf"])
def framework(request) -> str:
    return request.param


@pytest.fixture
def project(built_projects, framework: str, tmp_path: Path) -> Path:
    """A private copy of the built segmentation project of ``framework``."""
    copy = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", framework), copy, symlinks=True)
    return copy


def _run_id(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("run "))


def test_sigkill_then_resume_auto_finishes_each_epoch_once(project: Path) -> None:
    epochs = 30  # enough that the kill lands mid-run on a fast machine
    run_dir, _ = train_and_kill(
        project, ["--config", "configs/demo.yaml", *TINY, "--set", f"train.epochs={epochs}"], after_epochs=2
    )
    done_before = epochs_logged(run_dir)
    assert 2 <= len(done_before) < epochs

    out = script(project, "train.py", "--resume", "auto").stdout
    assert f"resuming run {run_dir.name}" in out
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["epochs_done"] == epochs
    model_dir = project / "models" / run_dir.name
    assert (model_dir / "final.keras").is_file()
    assert (model_dir / "checkpoints/best.weights.h5").is_file()
    assert not (model_dir / "backup").exists(), "the resume state is removed once training completes"
    assert list(run_dir.glob("events.out.tfevents.*")), "TensorBoard events in the run's log folder"

    # nothing left to resume: auto starts a new run instead
    out = script(
        project, "train.py", "--resume", "auto", "--config", "configs/demo.yaml", *TINY, "--set", "train.epochs=1"
    ).stdout
    assert "no unfinished run to resume" in out and _run_id(out) != run_dir.name


def test_run_record_evaluate_and_predict(project: Path, tmp_path: Path) -> None:
    out = script(project, "train.py", "--config", "configs/demo.yaml", *TINY, "--set", "train.epochs=2").stdout
    run_id = _run_id(out)
    log_dir = project / "logs" / run_id
    config = (log_dir / "config.yaml").read_text()
    assert "image_size:\n  - 32\n  - 32" in config and "epochs: 2" in config
    assert epochs_logged(log_dir) == [1, 2]
    with open(log_dir / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert {"epoch", "loss", "miou", "val_loss", "val_miou", "learning_rate"} <= set(header)

    ev = script(project, "evaluate.py", "--run", "latest").stdout
    assert "miou=" in ev and "circle" in ev
    scores = json.loads((log_dir / "eval_val.json").read_text())
    assert set(scores["per_class"]) == {"background", "circle", "square", "triangle"}
    assert 0.0 <= scores["miou"] <= 1.0 and scores["examples"] == 16

    script(project, "predict.py", "--run", run_id, "--output", str(tmp_path / "pred"))
    labels = sorted((tmp_path / "pred").glob("*_label.png"))
    assert len(labels) == 4 and len(list((tmp_path / "pred").glob("*_overlay.png"))) == 4
    label = Image.open(labels[0])
    assert label.mode == "P" and label.size == (64, 64)  # the source image's own size
    assert set(np.unique(np.array(label))) <= {0, 1, 2, 3}

    image = project / "datasets/shapes/data/val/val_00000.jpg"
    script(project, "predict.py", "--run", "latest", "--input", str(image), "--output", str(tmp_path / "one"))
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [
        "predict.json",
        "val_00000_label.png",
        "val_00000_overlay.png",
    ]
    assert json.loads((tmp_path / "one" / "predict.json").read_text())["run"] == run_id


def _refused(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The one ``error:`` line of a script that must fail without a traceback."""
    proc = script(project, *args, check=False, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and proc.stderr.count("error:") == 1, proc.stderr
    return last


@pytest.mark.parametrize("framework", ["keras"])
def test_predict_evaluate_and_export_mistakes_get_one_line(project: Path, tmp_path: Path) -> None:
    """Issue 18 point 8: each mistake is one line naming the file and what to do; nothing half-written is left."""
    script(project, "train.py", "--config", "configs/demo.yaml", *TINY, "--set", "train.epochs=1")
    val = project / "datasets/shapes/data/val"
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("val_00000.jpg", "val_00001.jpg"):
        shutil.copy(val / name, photos / name)
    (photos / "zz_notes.jpg").write_text("not a picture")
    out = tmp_path / "out"

    # a non-image: its name and the reason, not a Python object's repr
    line = _refused(project, "predict.py", "--input", str(photos / "zz_notes.jpg"), "--output", str(out))
    assert str(photos / "zz_notes.jpg") in line and "not an image" in line and " object at 0x" not in line
    # a folder with one bad image stops, pointing at --skip-bad, and leaves nothing behind
    line = _refused(project, "predict.py", "--input", str(photos), "--output", str(out))
    assert "zz_notes.jpg" in line and "--skip-bad" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    # --skip-bad predicts the others and names the one left out
    proc = script(project, "predict.py", "--input", str(photos), "--skip-bad", "--output", str(out))
    assert f"warning: skipped {photos / 'zz_notes.jpg'}" in proc.stderr and "left out 1 unreadable input" in proc.stdout
    manifest = json.loads((out / "predict.json").read_text())
    assert [s["file"] for s in manifest["skipped"]] == [str(photos / "zz_notes.jpg")]
    assert len(list(out.glob("*_label.png"))) == 2
    # a second prediction into the same folder replaces the first whole: no stale files mixed in
    script(project, "predict.py", "--input", str(photos / "val_00001.jpg"), "--output", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["predict.json", "val_00001_label.png", "val_00001_overlay.png"]
    assert json.loads((out / "predict.json").read_text())["skipped"] == []

    # --output a file, or a folder of other files; --input missing; typos in --split, --weights, --format
    (tmp_path / "taken.txt").write_text("mine")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    for args, needles in [
        (["predict.py", "--output", str(tmp_path / "taken.txt")], ["taken.txt is a file", "name a folder"]),
        (["predict.py", "--output", str(mine)], ["holds files predict.py did not write (thesis.tex)"]),
        (["predict.py", "--input", str(tmp_path / "nothere"), "--output", str(out)], ["nothere does not exist"]),
        (["predict.py", "--split", "prd", "--output", str(out)], ["has no split 'prd'", "did you mean 'pred'?"]),
        (["evaluate.py", "--split", "vall"], ["has no split 'vall'", "did you mean 'val'?"]),
        (["evaluate.py", "--split", "pred"], ["'pred' has no labels", "labelled: train, val"]),
        (["evaluate.py", "--weights", "bset"], ["unknown --weights 'bset'", "did you mean 'best'?"]),
        (["export.py", "--format", "tfl"], ["unknown --format 'tfl'", "did you mean 'tflite'?"]),
        (["evaluate.py", "--tta"], ["--tta is for volume datasets", "shapes (segmentation records)"]),
    ]:
        line = _refused(project, *args)
        assert all(n in line for n in needles), (args, line)
    assert (mine / "thesis.tex").read_text() == "mine" and (tmp_path / "taken.txt").read_text() == "mine"

    # the scripts outside a project
    lone = tmp_path / "lone"
    lone.mkdir()
    for name in ("train.py", "evaluate.py"):
        shutil.copy(project / name, lone / name)
        assert "is not a skelgen project" in _refused(lone, name)
    # model.weights: imagenet without the file and without network: the import command, no download traceback
    line = _refused(
        project,
        "train.py",
        "--set",
        "model.backbone=mobilenetv2",
        "--set",
        "model.weights=imagenet",
        *TINY[:4],
        env={"KERAS_HOME": str(tmp_path / "keras")},
    )
    assert "Keras could not download it" in line and "skelgen weights import" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.epoch=3"], "train.epoch: unknown key; did you mean 'epochs'?"),
        (["--set", "train.epochs=zero"], "train.epochs"),
        (["--set", "data.image_size=[8,8]"], "at least 16 pixels"),
        (
            ["--set", "model.backbone=resnet5"],
            "unknown backbone 'resnet5'; registered: efficientnetb0, hub_mit_b0, hub_resnet18, mobilenetv2, resnet50, "
            "simple; did you mean 'resnet50'?",
        ),
        (["--set", "model.num_classes=7"], "model.num_classes is 7 but"),
        (["--set", "data.dataset=missing"], "dataset 'missing' is not in this project (shapes)"),
        (["--config", "configs/none.yaml"], "config file configs/none.yaml not found"),
        (["--set", "novalue"], "expected key=value"),
    ],
)
@pytest.mark.parametrize("framework", ["keras"])
def test_bad_configs_fail_with_one_clear_line(project: Path, args: list[str], message: str) -> None:
    proc = script(project, "train.py", "--config", "configs/demo.yaml", *TINY, *args, check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last, proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    assert not list((project / "logs").glob("*/run.json")), "a refused config must not start a run"


@pytest.mark.parametrize("framework", ["keras"])
def test_evaluate_without_runs_says_what_to_do(project: Path) -> None:
    proc = script(project, "evaluate.py", "--run", "latest", check=False)
    assert proc.returncode == 1 and "no completed run" in proc.stderr and "train.py" in proc.stderr


def test_the_best_so_far_is_read_from_the_monitor_of_earlier_epochs(tmp_path: Path) -> None:
    """What a resumed ModelCheckpoint starts from (keras_fit): finite values of the monitor only."""
    from skelgen_runtime.run_summary import best_of, read_metrics
    from skelgen_runtime.runs import Run

    run = Run(tmp_path, "r")
    assert best_of(read_metrics(run), "val_miou", "max") == (None, None)  # no metrics.csv yet
    run.log_dir.mkdir(parents=True)
    run.metrics_csv.write_text("epoch,loss,val_miou,val_loss\n0,1.0,0.5,0.9\n1,0.8,0.7,nan\n2,0.7,,0.7\n")
    assert best_of(read_metrics(run), "val_miou", "max") == (0.7, 2)
    assert best_of(read_metrics(run), "val_loss", "min") == (0.7, 3)
    assert best_of(read_metrics(run), "val_accuracy", "max") == (None, None)
