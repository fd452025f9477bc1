"""The real template, rendered for every task x framework, and its recorded answers."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
import yaml

from conftest import make_project
from skelgen.api import FRAMEWORKS, TASKS


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_renders_and_compiles(tmp_path: Path, task: str, framework: str) -> None:
    project = make_project(tmp_path, "p", task, framework)
    for py in project.rglob("*.py"):
        py_compile.compile(str(py), doraise=True)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["scaffold"] == "project" and answers["task"] == task and answers["framework"] == framework
    assert "_commit" in answers and "_src_path" in answers
    assert not list(project.rglob("*.jinja")), "no template suffix may leak into a project"
    text = (project / "pyproject.toml").read_text()
    assert '"skelgen-tf>=0.1,<0.2"' in text and '"skelgen>' not in text and '"skelgen=' not in text
    assert f'TASK = "{task}"' in (project / "datasets/build_data.py").read_text()


def test_dataset_scaffold_records_its_own_answers(shapes_project: Path) -> None:
    answers = yaml.safe_load((shapes_project / "datasets/.copier-answers.shapes.yml").read_text())
    assert answers["scaffold"] == "dataset"  # recorded, so an update re-renders the dataset scaffold
    assert answers["dataset_name"] == "shapes" and answers["preset"] == "shapes"
    assert answers["class_names"] == ["background", "circle", "square", "triangle"]
    project_answers = yaml.safe_load((shapes_project / ".copier-answers.yml").read_text())
    assert project_answers["scaffold"] == "project"  # untouched by the dataset scaffold
    build = shapes_project / "datasets/build_shapes_to_tfrecord.py"
    py_compile.compile(str(build), doraise=True)
    assert 'CLASSES = ["background", "circle", "square", "triangle"]' in build.read_text()


def test_copier_preset_choices_match_the_presets() -> None:
    from conftest import REPO
    from skelgen_runtime.presets import preset_names

    questions = yaml.safe_load((REPO / "copier.yml").read_text())
    assert sorted(questions["preset"]["choices"].values()) == preset_names()
    assert questions["task"]["choices"] == list(TASKS) and questions["framework"]["choices"] == list(FRAMEWORKS)
