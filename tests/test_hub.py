"""keras-hub models (the ``hub`` extra): DeepLabV3+ and SegFormer, classifiers and CenterNet on keras-hub
backbones; each builds, trains 2 steps, evaluates, exports and reloads; presets load from a local folder
the test saves; a project without keras-hub is told which pip command installs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import script

pytestmark = pytest.mark.slow

TWO_STEPS = [
    "--config",
    "configs/demo.yaml",
    "--set",
    "data.image_size=[64,64]",
    "--set",
    "data.batch_size=4",
    "--set",
    "train.epochs=1",
    "--set",
    "train.steps_per_epoch=2",
]


def _copy(built_projects, task: str, tmp_path: Path) -> Path:
    project = tmp_path / "p"
    shutil.copytree(built_projects(task, "keras"), project, symlinks=True)
    return project


def _new_run(project: Path, before: set[Path]) -> Path:
    [run] = {p for p in (project / "logs").iterdir() if p.is_dir()} - before
    return run


@pytest.mark.parametrize(
    ("task", "model", "backbone"),
    [
        ("segmentation", "deeplabv3plus", "hub_resnet18"),
        ("segmentation", "segformer", "hub_mit_b0"),
        ("classification", "classifier", "hub_resnet18"),
        ("classification", "classifier", "hub_mit_b0"),
        ("detection", "centernet", "hub_resnet18"),
    ],
)
def test_a_keras_hub_model_trains_evaluates_exports_and_reloads(
    built_projects, tmp_path: Path, task: str, model: str, backbone: str
) -> None:
    project = _copy(built_projects, task, tmp_path)
    before = {p for p in (project / "logs").iterdir() if p.is_dir()}
    # the whole model section replaced: the demo's keys are the from-scratch builder's
    out = script(project, "train.py", *TWO_STEPS, "--set", f"model={{name: {model}, backbone: {backbone}}}")
    assert f"model {model}:" in out.stdout
    run = _new_run(project, before)
    config = (run / "config.yaml").read_text()
    assert "mean: null" in config and f"backbone: {backbone}" in config  # keras-hub's converter normalises
    script(project, "evaluate.py", "--run", run.name)
    assert (run / "eval_val.json").is_file()
    saved = tmp_path / "saved"
    script(project, "export.py", "--run", run.name, "--format", "saved_model", "--out", str(saved))
    check = """
        import sys, numpy as np, tensorflow as tf
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        image = np.random.default_rng(0).integers(0, 256, (1, 70, 90, 3), dtype=np.uint8)
        out = serve(images=tf.constant(image))
        print({k: list(v.shape) for k, v in out.items()})
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(check), str(saved)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    shapes = eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 - our own script's dict
    if task == "segmentation":
        assert shapes["labels"] == [1, 70, 90]
    elif task == "classification":
        assert shapes["probabilities"][0] == 1
    else:
        assert shapes["boxes"] == [1, 100, 4]


_PRESET = """
    import sys, keras_hub
    from skelgen_runtime.models.hub import HUB_BACKBONES
    spec = HUB_BACKBONES["hub_resnet18"]
    backbone = getattr(keras_hub.models, spec.cls)(**spec.config, image_shape=(64, 64, 3))
    backbone.save_to_preset(sys.argv[1])
"""


def test_a_keras_hub_preset_folder_loads_and_bad_presets_are_named(built_projects, tmp_path: Path) -> None:
    project = _copy(built_projects, "classification", tmp_path)
    preset = tmp_path / "preset"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRESET), str(preset)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    before = {p for p in (project / "logs").iterdir() if p.is_dir()}
    script(project, "train.py", *TWO_STEPS, "--set", "model.backbone=hub_resnet18", "--set", f"model.weights={preset}")
    record = json.loads((_new_run(project, before) / "run.json").read_text())
    assert record["pretrained_weights"] == [{"backbone": "hub_resnet18", "weights": str(preset)}]

    broken = tmp_path / "broken"
    shutil.copytree(preset, broken)
    (broken / "model.weights.h5").unlink()
    proc = script(
        project,
        "train.py",
        *TWO_STEPS,
        "--set",
        "model.backbone=hub_resnet18",
        "--set",
        f"model.weights={broken}",
        check=False,
    )
    assert (
        proc.returncode == 1 and f"{broken} is not a keras-hub preset folder: model.weights.h5 missing" in proc.stderr
    )

    proc = script(
        project,
        "train.py",
        *TWO_STEPS,
        "--set",
        "model.backbone=hub_resnet18",
        "--set",
        "model.weights=resnet_18_imagenett",
        check=False,
    )
    assert proc.returncode == 1 and "did you mean 'resnet_18_imagenet'?" in proc.stderr, proc.stderr
    proc = script(project, "train.py", *TWO_STEPS, "--set", "model.backbone=hub_resnet19", check=False)
    assert proc.returncode == 2 and "did you mean 'hub_resnet18'?" in proc.stderr


def test_without_keras_hub_a_project_that_names_it_is_told_the_pip_command(built_projects, tmp_path: Path) -> None:
    project = _copy(built_projects, "classification", tmp_path)
    shadow = tmp_path / "shadow" / "keras_hub"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('keras_hub is not installed', name='keras_hub')\n")
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}
    before = {p for p in (project / "logs").iterdir() if p.is_dir()}
    proc = subprocess.run(
        [sys.executable, "train.py", *TWO_STEPS, "--set", "model.backbone=hub_mit_b0"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "pip install 'skelgen-tf[hub]'" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert {p for p in (project / "logs").iterdir() if p.is_dir()} == before  # nothing started
