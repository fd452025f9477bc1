"""Pretrained backbones: each one gets its own input convention inside the model, weights load from
files the tests save themselves, ``weights: imagenet`` works offline after ``skelgen weights import``,
and nothing downloads (the network is blocked for the whole session: ``tests/netblock``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import make_project, script, skelgen
from skelgen_runtime.models import APPLICATIONS

PRETRAINED = sorted(APPLICATIONS)


@pytest.fixture(scope="module")
def seg_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("ws"), "pre", "segmentation", "keras")


def _run(project: Path, code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = project / "_check.py"
    path.write_text(textwrap.dedent(code))
    try:
        return subprocess.run(
            [sys.executable, str(path), *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, **(env or {})},
        )
    finally:
        path.unlink()


def test_the_network_is_blocked_here_and_in_every_script_the_tests_start(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="network access is blocked"):
        socket.create_connection(("storage.googleapis.com", 443), timeout=5)
    child = subprocess.run(
        [sys.executable, "-c", "import urllib.request as u; u.urlopen('https://pypi.org', timeout=5)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode != 0 and "network access is blocked" in child.stderr


_FEATURES = """
    import sys
    sys.path.insert(0, ".")
    import numpy as np, keras
    from matplotlib import cbook
    from PIL import Image
    from core.backbones import BACKBONES
    from core.config import Config
    from skelgen_runtime.config import load_config
    from skelgen_runtime.models import APPLICATIONS

    name, weights_file = sys.argv[1], sys.argv[2]
    app = APPLICATIONS[name]
    # a real photograph that matplotlib ships
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((96, 64))
    image = np.asarray(photo, np.float32)[None]
    keras.utils.set_random_seed(7)
    reference = getattr(keras.applications, app.constructor)(include_top=False, weights=None, input_shape=(64, 96, 3))
    reference.save_weights(weights_file)
    keras.utils.set_random_seed(1234)  # the project's model starts from other random weights
    config = load_config(None, [f"model.backbone={name}", f"model.weights={weights_file}", "data.image_size=[64,96]"],
                         schema=Config)
    assert config.data.mean is None and config.data.std is None, config.data
    inputs = keras.Input((64, 96, 3))
    ours = keras.Model(inputs, BACKBONES.get(name)(inputs, weights=config.model.weights))(image, training=False)
    taps = keras.Model(reference.input, [reference.get_layer(n).output for n in app.feature_layers])
    preprocess = getattr(keras.applications, app.family).preprocess_input
    theirs = taps(preprocess(image.copy()), training=False)
    diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(ours, theirs)]
    # the same features without the backbone's preprocessing: what the pipelines used to feed it
    plain = taps(((image / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype("float32"), training=False)
    old = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(plain, theirs))
    print({"diffs": diffs, "old": old, "shapes": [list(a.shape) for a in ours]})
"""


@pytest.mark.parametrize("name", PRETRAINED)
def test_a_pretrained_backbone_sees_its_own_preprocessing_of_a_photo(
    seg_project: Path, tmp_path: Path, name: str
) -> None:
    proc = _run(seg_project, _FEATURES, name, str(tmp_path / f"{name}.weights.h5"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 - our own script's dict
    assert len(result["diffs"]) == 5 and max(result["diffs"]) <= 1e-4, result
    assert [s[1] for s in result["shapes"]] == [32, 16, 8, 4, 2]  # strides 2..32 of a 64-pixel side
    if name != "efficientnetb0":  # EfficientNet rescales inside its own graph; the others differ without it
        assert result["old"] > 1e-2, result


_CONFIGS = """
    import sys
    sys.path.insert(0, ".")
    from core.config import Config
    from skelgen_runtime.config import load_config
    from skelgen_runtime.errors import ConfigError

    def error(*overrides):
        try:
            load_config(None, list(overrides), schema=Config)
        except ConfigError as err:
            return str(err)
        return None

    scratch = load_config(None, [], schema=Config)
    assert scratch.data.mean == (0.485, 0.456, 0.406) and scratch.data.std == (0.229, 0.224, 0.225)
    print(error("model.backbone=resnet50", "data.mean=[0.5,0.5,0.5]", "data.std=[0.2,0.2,0.2]"))
    print(error("model.backbone=mobilenetv2", "data.image_size=[48,48]"))
    print(error("model.backbone=resnet5"))
    print(error("model.backbone=resnet50", "model.weights=nowhere.weights.h5"))
    print(error("model.depth=4", "data.image_size=[40,40]"))
    print(error("data.mean=null"))
    # a resolved config (what logs/RUN/config.yaml holds) loads again as it is
    resolved = load_config(None, ["model.backbone=resnet50"], schema=Config)
    assert resolved.data.mean is None
    print(error("model.backbone=resnet50", "data.mean=null", "data.std=null"))
"""


def test_mean_and_std_with_a_backbone_that_preprocesses_itself_and_sizes_it_cannot_take_are_refused(
    seg_project: Path,
) -> None:
    proc = _run(seg_project, _CONFIGS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mean, size, unknown, missing, depth, half, resolved = proc.stdout.strip().splitlines()[-7:]
    assert "data.mean and data.std: backbone 'resnet50' normalises its input itself" in mean
    assert "keras.applications.resnet50.preprocess_input (caffe" in mean and "applied twice" in mean
    assert "data.image_size [48, 48]: backbone 'mobilenetv2'" in size and "divisible by 32 (e.g. [64, 64])" in size
    assert "unknown backbone 'resnet5'" in unknown and "did you mean 'resnet50'?" in unknown
    assert (
        "model.weights" in missing
        and "'nowhere.weights.h5' is neither null, imagenet, an existing weights file" in missing
    )
    assert "divisible by 16" in depth
    assert "data.mean and data.std are set together" in half
    assert resolved == "None"


_MISMATCH = """
    import sys
    sys.path.insert(0, ".")
    import keras
    from core.backbones import BACKBONES
    from skelgen_runtime.errors import WeightsError

    other = sys.argv[1]
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(64, 64, 3)).save_weights(other)
    try:
        BACKBONES.get("resnet50")(keras.Input((64, 64, 3)), weights=other)
    except WeightsError as err:
        print(err)
"""


def test_weights_of_another_architecture_are_refused_naming_the_file_and_the_layer(
    seg_project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "mobilenet.weights.h5"
    proc = _run(seg_project, _MISMATCH, str(other))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert f"{other} does not fit backbone 'resnet50' (keras.applications.ResNet50)" in line
    assert "Layer 'conv1_conv'" in line


def _imagenet_file_for(name: str, path: Path, input_shape=(224, 224, 3)) -> None:
    """A file in Keras's legacy HDF5 weights format, as Keras's ImageNet downloads are (random weights)."""
    code = f"""
        import h5py, keras
        from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
        keras.utils.set_random_seed(3)
        model = keras.applications.{APPLICATIONS[name].constructor}(include_top=False, weights=None,
                                                                   input_shape={tuple(input_shape)!r})
        with h5py.File({str(path)!r}, "w") as f:
            save_weights_to_hdf5_group(f, model)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


TINY = [
    "--config",
    "configs/demo.yaml",
    "--set",
    "train.epochs=1",
    "--set",
    "train.steps_per_epoch=2",
    "--set",
    "data.image_size=[64,64]",
    "--set",
    "data.batch_size=4",
]


def test_imagenet_weights_offline_fail_before_training_then_train_once_imported(
    built_projects, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    args = [*TINY, "--set", "model.backbone=mobilenetv2", "--set", "model.weights=imagenet"]
    runs_before = {p for p in (project / "logs").iterdir() if p.is_dir()}

    # nothing imported, no network: refused before any run starts, with the command that imports the file
    proc = script(project, "train.py", *args, check=False)
    expected = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"skelgen weights import {expected} --backbone mobilenetv2 --sha256 HEX" in proc.stderr, proc.stderr
    assert "network access is blocked" in proc.stderr  # the download was tried, and failed loudly
    assert {p for p in (project / "logs").iterdir() if p.is_dir()} == runs_before, "no run may start"

    # a file downloaded elsewhere: Keras has no hash for MobileNetV2, so the user's SHA-256 is checked
    downloaded = tmp_path / "downloads" / expected
    downloaded.parent.mkdir()
    _imagenet_file_for("mobilenetv2", downloaded)
    no_hash = skelgen("weights", "import", str(downloaded), check=False)
    assert no_hash.returncode == 2 and "--sha256" in no_hash.stderr
    wrong = skelgen("weights", "import", str(downloaded), "--sha256", "0" * 64, check=False)
    assert wrong.returncode == 1 and f"differs from the given {'0' * 64}" in wrong.stderr
    assert not (keras_home / "models" / expected).exists()
    from skelgen_runtime.models.pretrained import file_digest

    digest = file_digest(downloaded)
    out = skelgen("weights", "import", str(downloaded), "--sha256", digest)
    assert (keras_home / "models" / expected).is_file(), out.stdout

    proc = script(project, "train.py", *args)
    [run] = {p for p in (project / "logs").iterdir() if p.is_dir()} - runs_before
    record = json.loads((run / "run.json").read_text())
    [source] = record["pretrained_weights"]
    assert source["backbone"] == "mobilenetv2" and source["weights"] == "imagenet"
    assert source["sha256"] == digest and source["checked_against"] == "given sha256"
    config = (run / "config.yaml").read_text()
    assert "mean: null" in config and "std: null" in config
    # evaluation and export run the same in-graph preprocessing
    script(project, "evaluate.py", "--run", "latest")
    script(project, "export.py", "--run", "latest", "--format", "saved_model")


def test_import_refuses_a_file_whose_hash_differs_from_kerass(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    fake = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    fake.write_bytes(b"not the weights")
    proc = skelgen("weights", "import", str(fake), check=False)
    assert proc.returncode == 1
    assert "differs from 4d473c1dd8becc155b73f8504c6f6626, the hash Keras checks" in proc.stderr, proc.stderr
    assert not (tmp_path / "keras-home" / "models" / fake.name).exists()
    renamed = tmp_path / "weights.h5"
    fake.rename(renamed)
    proc = skelgen("weights", "import", str(renamed), "--backbone", "resnet5", check=False)
    assert proc.returncode == 2 and "did you mean 'resnet50'?" in proc.stderr
