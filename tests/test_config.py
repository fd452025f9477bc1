"""Config loading and validation (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from skelgen_runtime.config import SegmentationConfig, apply_overrides, load_config
from skelgen_runtime.errors import ConfigError

import re

from skelgen_runtime.config import CONFIG_MODELS

# template config files are switched by name: "{% if task == 'segmentation' %}demo.yaml{% endif %}"
CONFIGS = sorted((REPO / "template/project/configs").iterdir())


def _task(path: Path) -> str:
    return re.search(r"task == '(\w+)'", path.name).group(1)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_template_config_validates(path: Path) -> None:
    task = _task(path)
    config = load_config(path, task=task)
    assert isinstance(config, CONFIG_MODELS[task])


def test_every_task_has_a_default_and_a_demo_config() -> None:
    from skelgen.api import TASKS

    for task in TASKS:
        names = {re.sub(r"\{%.*?%\}", "", p.name) for p in CONFIGS if _task(p) == task}
        assert names == {"default.yaml", "demo.yaml"}, task


def test_segmentation_demo_config_is_small_and_fast() -> None:
    path = next(p for p in CONFIGS if _task(p) == "segmentation" and "demo" in p.name)
    config = load_config(path, task="segmentation")
    assert isinstance(config, SegmentationConfig) and tuple(config.data.image_size) == (64, 64)


def test_overrides_parse_yaml_values() -> None:
    raw = apply_overrides({"train": {"epochs": 3}}, ["train.epochs=5", "data.image_size=[96, 64]", "model.weights=null"])
    assert raw == {"train": {"epochs": 5}, "data": {"image_size": [96, 64]}, "model": {"weights": None}}
    config = load_config(None, ["train.learning_rate=1e-4", "data.augment.flip=false"], task="segmentation")
    assert config.train.learning_rate == pytest.approx(1e-4) and config.data.augment.flip is False


def test_validation_lists_every_problem_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  batch_size: 0\n  colour: red\ntrain:\n  optimizer: rmsprop\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, task="segmentation")
    text = str(err.value)
    assert str(path) in text
    for needle in ("data.batch_size", "data.colour: unknown key", "train.optimizer"):
        assert needle in text


def test_malformed_yaml_and_non_mapping(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "a.yaml", task="segmentation")
    (tmp_path / "b.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        load_config(tmp_path / "b.yaml", task="segmentation")


def test_override_into_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"experiment": "x"}, ["experiment.name=y"])
