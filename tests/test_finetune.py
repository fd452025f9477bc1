"""Fine-tuning in both frameworks: the backbone frozen for the first epochs (BatchNorm in inference
mode, nothing of it moves), then trained at a multiple of the learning rate; resume-safe; recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import epochs_logged, script, train_and_kill

TINY = [
    "--config",
    "configs/demo.yaml",
    "--set",
    "data.image_size=[32,32]",
    "--set",
    "data.batch_size=8",
    "--set",
    "train.steps_per_epoch=2",
    "--set",
    "model.backbone=mobilenetv2",
]

_SAVE = """
    import sys, keras
    keras.utils.set_random_seed(5)
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(sys.argv[1])
"""

# the model of the run with its pretrained start, then with a checkpoint of the run: how far each part moved
_MOVED = """
    import sys, json
    sys.path.insert(0, ".")
    import numpy as np
    import core
    from core.config import Config
    from skelgen_runtime.config import load_config

    run_config, checkpoint = sys.argv[1], sys.argv[2]
    config = load_config(__import__("pathlib").Path(run_config), schema=Config)
    from skelgen_runtime.records.info import load_info
    info = load_info(__import__("pathlib").Path("datasets") / config.data.dataset / "tfrecords")
    start = core.build_model(config.model, num_classes=info.num_classes, input_shape=(32, 32, 3))
    before = {w.path: np.array(w) for w in start.weights}
    start.load_weights(checkpoint)
    encoder = {id(w) for layer in start.layers if layer.name.split(".")[0] == "encoder" for w in layer.weights}
    moved = {}
    for w in start.weights:
        part = "encoder" if id(w) in encoder else "rest"
        kind = "trainable" if w.trainable else "statistics"
        delta = float(np.max(np.abs(np.array(w) - before[w.path]))) if w.path in before else 0.0
        moved[f"{part}.{kind}"] = max(moved.get(f"{part}.{kind}", 0.0), delta)
    print(json.dumps(moved))
"""


def _python(project: Path, code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=project, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _new_runs(project: Path, before: set[Path]) -> list[Path]:
    return sorted(p for p in (project / "logs").iterdir() if p.is_dir() and p not in before)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_frozen_backbone_does_not_move_then_trains_and_the_record_says_when(
    built_projects, tmp_path: Path, framework: str
) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", framework), project, symlinks=True)
    weights = tmp_path / "mobilenetv2.weights.h5"
    _python(project, _SAVE, str(weights))
    runs_before = {p for p in (project / "logs").iterdir() if p.is_dir()}

    # one epoch, all of it frozen: the backbone's weights and BatchNorm statistics are the file's
    script(
        project,
        "train.py",
        *TINY,
        "--set",
        f"model.weights={weights}",
        "--set",
        "train.epochs=1",
        "--set",
        "train.freeze_backbone_epochs=1",
    )
    [frozen_run] = _new_runs(project, runs_before)
    moved = json.loads(
        _python(
            project,
            _MOVED,
            str(frozen_run / "config.yaml"),
            str(project / "models" / frozen_run.name / "checkpoints" / "last.weights.h5"),
        )
    )
    assert moved["encoder.trainable"] == 0.0 and moved["encoder.statistics"] == 0.0, moved
    assert moved["rest.trainable"] > 0.0, moved

    # two epochs, the first frozen, the second at a tenth of the learning rate: now the backbone moves
    runs_before = {p for p in (project / "logs").iterdir() if p.is_dir()}
    script(
        project,
        "train.py",
        *TINY,
        "--set",
        f"model.weights={weights}",
        "--set",
        "train.epochs=2",
        "--set",
        "train.freeze_backbone_epochs=1",
        "--set",
        "train.backbone_lr_multiplier=0.1",
    )
    [run] = _new_runs(project, runs_before)
    moved = json.loads(
        _python(
            project,
            _MOVED,
            str(run / "config.yaml"),
            str(project / "models" / run.name / "checkpoints" / "last.weights.h5"),
        )
    )
    assert moved["encoder.trainable"] > 0.0 and moved["encoder.statistics"] > 0.0, moved
    record = json.loads((run / "run.json").read_text())
    tuning = record["fine_tuning"]
    assert tuning["backbone_layers"] == ["encoder.preprocess", "encoder"]
    assert tuning["phases"] == [
        {"epochs": [1, 1], "backbone": "frozen (BatchNorm in inference mode)"},
        {"epochs": [2, 2], "backbone": "trainable"},
    ]
    assert tuning["backbone_lr_multiplier"] == 0.1
    assert record["pretrained_weights"][0]["file"] == str(weights)


def test_fine_tuning_without_a_backbone_named_encoder_is_refused(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", "keras"), project, symlinks=True)
    classifier = project / "core" / "classifier.py"
    classifier.write_text(classifier.read_text().replace('name=f"encoder', 'name=f"trunk'))
    backbones = project / "core" / "backbones.py"
    backbones.write_text(backbones.read_text().replace('name=f"encoder', 'name=f"trunk'))
    proc = script(
        project,
        "train.py",
        "--config",
        "configs/demo.yaml",
        "--set",
        "data.image_size=[32,32]",
        "--set",
        "train.freeze_backbone_epochs=1",
        "--set",
        "train.epochs=1",
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "need the backbone's layers named 'encoder' or 'encoder.*'" in proc.stderr


@pytest.mark.slow
def test_a_run_resumed_after_unfreezing_keeps_the_optimizer_state_of_every_variable(
    built_projects, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", "tf"), project, symlinks=True)
    args = [
        "--config",
        "configs/demo.yaml",
        "--set",
        "data.image_size=[32,32]",
        "--set",
        "data.batch_size=8",
        "--set",
        "train.steps_per_epoch=2",
        "--set",
        "train.epochs=4",
        "--set",
        "train.freeze_backbone_epochs=1",
    ]
    # killed once epoch 3 is logged: the resume state of epoch 2 (the first unfrozen one) is on disk
    run_dir, killed = train_and_kill(project, args, after_epochs=3)
    assert killed.returncode != 0
    backup = project / "models" / run_dir.name / "backup"
    assert backup.is_dir()
    check = """
        import sys, numpy as np, tensorflow as tf
        path = tf.train.latest_checkpoint(sys.argv[1])
        reader = tf.train.load_checkpoint(path)
        # the first backbone convolution's kernel is the only variable of shape (3, 3, 3, F)
        kernels = [n for n, shape in tf.train.list_variables(path) if len(shape) == 4 and shape[:3] == [3, 3, 3]]
        moments = [n for n in kernels if n.startswith("optimizer/_variables/")]
        print(len([n for n in kernels if n.startswith("optimizer/_trainable_variables/")]), len(moments),
              min(float(np.abs(reader.get_tensor(n)).max()) for n in moments))
    """
    # the backbone's kernel is one of the optimizer's variables, and its two Adam moments are in the resume
    # state, non-zero: the backbone trained in epoch 2
    weights, moments, smallest = _python(project, check, str(backup)).split()
    assert (weights, moments) == ("1", "2") and float(smallest) > 0
    script(project, "train.py", "--resume", "auto")
    assert epochs_logged(run_dir) == [1, 2, 3, 4]  # metrics.csv counts from 1, as the output does
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


_ENCODERS = """
    import sys, json, keras, numpy as np
    sys.path.insert(0, ".")
    import core  # noqa: F401 - the project's layers
    first = keras.models.load_model(sys.argv[1], compile=False)
    second = keras.models.load_model(sys.argv[2], compile=False)
    theirs = {l.name: l.get_weights() for l in first.layers if l.name.startswith("encoder.")}
    ours = {l.name: l.get_weights() for l in second.layers if l.name.startswith("encoder.")}
    shared = [n for n in ours if ours[n]]
    print(json.dumps({"layers": len(shared), "equal": all(
        all(np.array_equal(a, b) for a, b in zip(ours[n], theirs[n])) for n in shared)}))
"""


@pytest.mark.slow
def test_another_runs_backbone_arrives_through_its_final_keras_and_a_mismatch_is_named(
    built_projects, tmp_path: Path
) -> None:
    """The transfer of benchmarks/run.py's models group on a tiny budget: pretrain by classification, then
    segment from its final.keras with the backbone frozen: the segmenter's backbone is the classifier's."""
    small = [
        "--config",
        "configs/demo.yaml",
        "--set",
        "data.image_size=[32,32]",
        "--set",
        "data.batch_size=8",
        "--set",
        "train.epochs=1",
        "--set",
        "train.steps_per_epoch=2",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=2",
    ]
    classification = tmp_path / "cls"
    shutil.copytree(built_projects("classification", "keras"), classification, symlinks=True)
    before = {p for p in (classification / "logs").iterdir() if p.is_dir()}
    script(classification, "train.py", *small)
    [pretrain] = _new_runs(classification, before)
    final = classification / "models" / pretrain.name / "final.keras"

    segmentation = tmp_path / "seg"
    shutil.copytree(built_projects("segmentation", "keras"), segmentation, symlinks=True)
    before = {p for p in (segmentation / "logs").iterdir() if p.is_dir()}
    script(
        segmentation, "train.py", *small, "--set", f"model.weights={final}", "--set", "train.freeze_backbone_epochs=1"
    )
    [run] = _new_runs(segmentation, before)
    result = json.loads(
        _python(segmentation, _ENCODERS, str(final), str(segmentation / "models" / run.name / "final.keras"))
    )
    assert result == {"layers": 12, "equal": True}, result  # 3 stages x (2 convolutions + 2 batch norms)
    source = json.loads((run / "run.json").read_text())["pretrained_weights"][0]
    assert source["backbone"] == "simple" and source["file"] == str(final) and source["layers"] == 12

    proc = script(
        segmentation, "train.py", *small, "--set", "model.depth=3", "--set", f"model.weights={final}", check=False
    )
    assert proc.returncode == 1 and f"model.weights: {final} has no layer 'encoder.stage3.conv1'" in proc.stderr, (
        proc.stderr
    )


@pytest.mark.slow
def test_a_run_resumed_in_the_frozen_phase_stays_frozen(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", "keras"), project, symlinks=True)
    weights = tmp_path / "mobilenetv2.weights.h5"
    _python(project, _SAVE, str(weights))
    args = [
        *TINY,
        "--set",
        f"model.weights={weights}",
        "--set",
        "train.epochs=3",
        "--set",
        "train.freeze_backbone_epochs=3",
        "--set",
        "train.steps_per_epoch=6",
    ]
    run_dir, killed = train_and_kill(project, args, after_epochs=1)
    assert killed.returncode != 0
    script(project, "train.py", "--resume", "auto")
    assert epochs_logged(run_dir) == [1, 2, 3]
    moved = json.loads(
        _python(project, _MOVED, str(run_dir / "config.yaml"), str(project / "models" / run_dir.name / "final.keras"))
    )
    assert moved["encoder.trainable"] == 0.0 and moved["encoder.statistics"] == 0.0, moved
    assert moved["rest.trainable"] > 0.0, moved
