"""Config loading and validation in the library: overrides, errors with "did you mean", builder sections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from conftest import library_schema
from skelgen_runtime.config import (
    Section,
    TrainConfig,
    apply_overrides,
    builder_section,
    load_config,
    registry_key,
)
from skelgen_runtime.errors import ConfigError
from skelgen_runtime.registry import Registry


def test_overrides_parse_yaml_values() -> None:
    raw = apply_overrides(
        {"train": {"epochs": 3}}, ["train.epochs=5", "data.image_size=[96, 64]", "model.weights=null"]
    )
    assert raw == {"train": {"epochs": 5}, "data": {"image_size": [96, 64]}, "model": {"weights": None}}
    schema = library_schema("segmentation")
    config = load_config(None, ["train.learning_rate=1e-4", "data.augment.flip=false"], schema=schema)
    assert isinstance(config, schema)
    assert config.train.learning_rate == pytest.approx(1e-4) and config.data.augment.flip is False


def test_validation_lists_every_problem_with_its_key_and_the_closest_one(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "data:\n  batch_size: 0\n  colour: red\n  augment: {flipp: true}\ntrain:\n  optimizer: rmsprop\n  epoch: 3\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, schema=library_schema())
    text = str(err.value)
    assert str(path) in text and "\n" not in text
    for needle in (
        "data.batch_size",
        "data.colour: unknown key",
        "train.optimizer",
        "data.augment.flipp: unknown key; did you mean 'flip'?",
        "train.epoch: unknown key; did you mean 'epochs'?",
    ):
        assert needle in text
    assert "data.colour: unknown key; did" not in text  # nothing close to suggest


def test_malformed_yaml_and_non_mapping(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "a.yaml", schema=library_schema())
    (tmp_path / "b.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        load_config(tmp_path / "b.yaml", schema=library_schema())


@pytest.mark.parametrize(
    "text, needles",
    [
        ("", ["is empty", "configs/default.yaml"]),
        ("# every key commented out\n\n", ["is empty"]),
        ("train:\n  epochs: 3\n  epochs: 4\n", ["line 3", "key 'epochs' is given twice (first on line 2)"]),
        ("train: {epochs: 2}\ndata: {}\ntrain: {}\n", ["line 3", "key 'train' is given twice (first on line 1)"]),
    ],
)
def test_an_empty_file_or_a_key_given_twice_is_an_error(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Neither trains silently: an empty file on library defaults, a repeated key on its last value."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, schema=library_schema())
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_override_into_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"experiment": "x"}, ["experiment.name=y"])


# ------------------------------------------------------------------ a project's own schema


def _schema():
    """A project-like schema: a model registry with two builders, a loss registry."""
    models, losses = Registry("model"), Registry("loss")

    @models.register("net")
    def build_net(
        input_shape,
        num_classes,
        *,
        depth: Annotated[int, Field(ge=1, le=5)] = 3,
        width: float = 1.0,
        mode: str | None = None,
        name: str = "net",
    ):
        return dict(depth=depth, width=width, mode=mode)

    @models.register("other")
    def build_other(input_shape, num_classes, *, size: int):
        return dict(size=size)

    losses.register("ce")(object)
    losses.register("dice_ce")(object)

    class Train(TrainConfig):
        loss: registry_key(losses) = "ce"

    class Config(Section):
        model: builder_section(models, default="net") = builder_section(models, default="net")()
        train: Train = Train()

    return Config, models


def test_builder_section_takes_the_builders_keywords_typed_and_defaulted() -> None:
    schema, models = _schema()
    config = load_config(None, ["model.width=2", "model.mode=fast"], schema=schema)
    assert config.model.name == "net" and config.model.num_classes is None
    assert config.model.depth == 3 and config.model.width == 2.0 and config.model.mode == "fast"
    options = config.model.model_dump(exclude={"name", "num_classes"})
    assert options == {"depth": 3, "width": 2.0, "mode": "fast"}  # every keyword, with its default
    assert models.get("net")((8, 8, 3), 2, **options) == options
    assert load_config(None, ["model.name=other", "model.size=7"], schema=schema).model.size == 7


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["model.dpeth=2"], ["model.dpeth: unknown key: not a keyword of build_net", "did you mean 'depth'?"]),
        (["model.depth=9"], ["model.depth: Input should be less than or equal to 5"]),
        (["model.width=wide"], ["model.width: Input should be a valid number"]),
        (["model.name=othr"], ["model.name: unknown model 'othr'; registered: net, other; did you mean 'other'?"]),
        (["model.name=other"], ["model.size: missing: build_other"]),
        (
            ["model.name=other", "model.size=1", "model.depth=2"],
            ["model.depth: unknown key: not a keyword of build_other"],
        ),
        (
            ["train.loss=dicece"],
            ["train.loss: unknown loss 'dicece'; registered: ce, dice_ce; did you mean 'dice_ce'?"],
        ),
    ],
)
def test_builder_section_and_registry_keys_refuse_with_the_key_named(overrides, needles) -> None:
    schema, _ = _schema()
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides, schema=schema)
    for needle in needles:
        assert needle in str(err.value)


# ------------------------------------------------------------------ the schema's snapshot, checked before TensorFlow

SURE = [
    (["model.dpeth=2"], "model.dpeth: unknown key; did you mean 'depth'?"),
    (["model.depth=9"], "model.depth: 9 is greater than the maximum of 5"),
    (["model.width=wide"], "model.width: 'wide' is not of type"),
    (["model.name=othr"], "model.name: unknown model 'othr'; registered: net, other; did you mean 'other'?"),
    (["model.name=other", "model.size=1", "model.depth=2"], "model.depth: unknown key"),
    (["train.loss=dicece"], "train.loss: unknown loss 'dicece'; registered: ce, dice_ce; did you mean 'dice_ce'?"),
    (["train.lerning_rate=1"], "train.lerning_rate: unknown key; did you mean 'learning_rate'?"),
    (["train.epochs=0"], "train.epochs: 0 is less than the minimum of 1"),
    (["trian.epochs=3"], "trian: unknown key; did you mean 'train'?"),
]
#: mistakes only the full validation sees, and values its lax mode accepts: the snapshot must let them through
LEFT = [
    ["model.name=other"],  # a keyword without a default, left out
    ["model.depth='3'"],  # text that is a number
    ["model.width=2"],  # an integer for a float
    ["train.epochs=5.0"],  # a whole float for an integer
    ["model.mode=null"],
    [],
]


@pytest.fixture
def snapshot(tmp_path: Path, monkeypatch) -> Path:
    from skelgen_runtime.config.precheck import write_snapshot

    monkeypatch.setenv("SKELGEN_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "project"
    (root / "core").mkdir(parents=True)
    (root / "core" / "config.py").write_text("# the project's schema\n")
    assert write_snapshot(root, _schema()[0]) is not None
    return root


@pytest.mark.parametrize(("overrides", "message"), SURE, ids=[" ".join(o) for o, _ in SURE])
def test_the_snapshot_refuses_what_the_full_validation_refuses(snapshot: Path, overrides, message) -> None:
    from skelgen_runtime.config.precheck import precheck

    with pytest.raises(ConfigError) as early:
        precheck(snapshot, None, overrides)
    assert message in str(early.value) and str(early.value).startswith("invalid config (defaults): ")
    with pytest.raises(ConfigError) as full:
        load_config(None, overrides, schema=_schema()[0])
    assert message.split(":")[0] + ":" in str(full.value), "both name the same key"


@pytest.mark.parametrize("overrides", LEFT, ids=[" ".join(o) or "defaults" for o in LEFT])
def test_the_snapshot_leaves_to_the_full_validation_what_it_cannot_be_sure_of(snapshot: Path, overrides) -> None:
    from skelgen_runtime.config.precheck import precheck

    assert precheck(snapshot, None, overrides) is True  # checked, and passed


def test_a_change_of_core_makes_the_snapshot_stale(snapshot: Path, tmp_path: Path) -> None:
    from skelgen_runtime.config.precheck import precheck, snapshot_path

    before = snapshot_path(snapshot)
    (snapshot / "core" / "losses.py").write_text("LOSSES = {}\n")
    assert snapshot_path(snapshot) != before
    assert precheck(snapshot, None, ["model.dpeth=2"]) is False  # no current snapshot: the full validation decides
    with pytest.raises(ConfigError, match="is empty"):  # the file's own mistakes are answered all the same
        empty = tmp_path / "empty.yaml"
        empty.write_text("# nothing\n")
        precheck(snapshot, empty)


@pytest.mark.slow
def test_train_py_answers_a_config_typo_before_tensorflow(built_projects, tmp_path: Path) -> None:
    import shutil

    from conftest import script

    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", "keras"), project, symlinks=True)
    tiny = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=1", "--set", "data.image_size=[32,32]"]
    script(project, "train.py", *tiny)  # writes the snapshot
    typo = script(project, "train.py", "--set", "train.lerning_rate=0.1", check=False)
    assert typo.returncode == 2 and "did you mean 'learning_rate'" in typo.stderr, typo.stderr
    assert "loading TensorFlow" not in typo.stdout, "answered before TensorFlow"
    with open(project / "core" / "losses.py", "a") as f:
        f.write("\n# an edit\n")
    again = script(project, "train.py", "--set", "train.lerning_rate=0.1", check=False)
    assert again.returncode == 2 and "did you mean 'learning_rate'" in again.stderr
    assert "loading TensorFlow" in again.stdout, "a stale snapshot is not used"
