"""The real template, rendered for every task x framework, and its recorded answers."""

from __future__ import annotations

import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import make_project
from skelgen.api import FRAMEWORKS, TASKS
from skelgen_runtime._version import __version__


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_renders_and_compiles(tmp_path: Path, task: str, framework: str) -> None:
    project = make_project(tmp_path, "p", task, framework)
    for py in project.rglob("*.py"):
        py_compile.compile(str(py), doraise=True)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["scaffold"] == "project" and answers["task"] == task and answers["framework"] == framework
    assert answers["_commit"] == f"v{__version__}" and answers["_src_path"]
    assert not list(project.rglob("*.jinja")), "no template suffix may leak into a project"
    text = (project / "pyproject.toml").read_text()
    major, minor = __version__.split(".")[:2]
    assert f'"skelgen-tf>={__version__},<{major}.{int(minor) + 1}"' in text
    assert '"skelgen>' not in text and '"skelgen=' not in text
    assert f'TASK = "{task}"' in (project / "datasets/build_data.py").read_text()
    _scripts_are_recipes(project)
    _default_config_says_the_builder_defaults(project)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project, capture_output=True, text=True
    )
    assert lint.returncode == 0, f"the rendered project fails its own lint settings:\n{lint.stdout}{lint.stderr}"


def _default_config_says_the_builder_defaults(project: Path) -> None:
    """configs/default.yaml documents the defaults: each model key it sets equals the default of the
    registered builder's keyword (the model section is derived from that signature)."""
    import ast

    model = yaml.safe_load((project / "configs/default.yaml").read_text())["model"]
    registered = {}
    for call in ast.walk(ast.parse((project / "core/__init__.py").read_text())):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Call)
            and getattr(call.func.func, "attr", "") == "register"
        ):
            registered[call.func.args[0].value] = call.args[0].id
    builder = registered[model["name"]]
    defaults = {}
    for module in (project / "core").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == builder:
                args = node.args.kwonlyargs
                defaults = {a.arg: ast.literal_eval(d) for a, d in zip(args, node.args.kw_defaults) if d is not None}
    assert defaults, f"{builder} not found in core/"
    differing = {k: (v, defaults[k]) for k, v in model.items() if k in defaults and v != defaults[k]}
    assert not differing, f"configs/default.yaml vs {builder}'s defaults: {differing}"


SCRIPTS = ("train.py", "evaluate.py", "predict.py", "export.py")


def _scripts_are_recipes(project: Path) -> None:
    """Each script: at most 40 lines of code besides its docstring, one ``main`` of at most 15
    statements, and from the library only the error guard and the jobs (the order of things is theirs)."""
    import ast

    for name in SCRIPTS:
        source = (project / name).read_text()
        tree = ast.parse(source)
        doc_end = tree.body[0].end_lineno if isinstance(tree.body[0], ast.Expr) else 0
        code = [line for line in source.splitlines()[doc_end:] if line.strip() and not line.lstrip().startswith("#")]
        assert len(code) <= 40, f"{name}: {len(code)} lines of code"
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        statements = [n for n in ast.walk(main) if isinstance(n, ast.stmt) and n is not main]
        assert len(statements) <= 15, f"{name}: main() has {len(statements)} statements"
        library = {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("skelgen_runtime")
        }
        assert library == {"skelgen_runtime.errors", "skelgen_runtime.jobs"}, f"{name}: {library}"


def test_dataset_scaffold_records_its_own_answers(shapes_project: Path) -> None:
    answers = yaml.safe_load((shapes_project / "datasets/.copier-answers.shapes.yml").read_text())
    assert answers["scaffold"] == "dataset"  # recorded, so an update re-renders the dataset scaffold
    assert answers["dataset_name"] == "shapes" and answers["preset"] == "shapes"
    assert answers["class_names"] == ["background", "circle", "square", "triangle"]
    project_answers = yaml.safe_load((shapes_project / ".copier-answers.yml").read_text())
    assert project_answers["scaffold"] == "project"  # untouched by the dataset scaffold
    build = shapes_project / "datasets/build_shapes_to_tfrecord.py"
    py_compile.compile(str(build), doraise=True)
    source = shapes_project / "datasets/shapes/source.py"  # the user's: classes and reader, apart from the build
    py_compile.compile(str(source), doraise=True)
    assert 'CLASSES = ["background", "circle", "square", "triangle"]' in source.read_text()
    assert "CLASSES = " not in build.read_text() and "dataset_source(NAME)" in build.read_text()


def test_copier_preset_choices_match_the_presets() -> None:
    from conftest import REPO
    from skelgen_runtime.presets import preset_names

    questions = yaml.safe_load((REPO / "copier.yml").read_text())
    assert sorted(questions["preset"]["choices"].values()) == preset_names()
    assert questions["skelgen_version"]["default"] == __version__, "the template knows which skelgen it belongs to"
    assert questions["task"]["choices"] == list(TASKS) and questions["framework"]["choices"] == list(FRAMEWORKS)


# ------------------------------------------------------------------ who owns which file, said three times alike

_OWNER_LINE = {
    "you": "Owner: you. skelgen update never changes this file once it exists.",
    "template": "Owner: template. skelgen update brings new versions of this file and keeps your edits",
}


def _readme_owners(readme: str) -> list[tuple[str, str]]:
    """``(path pattern, owner)`` from the project README's "Who owns what" table (NAME matches any name)."""
    import re

    section = readme.split("## Who owns what", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2] in ("you", "template"):
            rows += [(path, cells[2]) for path in re.findall(r"`([^`]+)`", cells[0])]
    return rows


def _readme_owner(rel: str, rows: list[tuple[str, str]]) -> str | None:
    import fnmatch

    best = None
    for pattern, owner in rows:
        glob = pattern.replace("NAME", "*").replace("RUN", "*")
        if fnmatch.fnmatch(rel, glob) or (glob.endswith("/") and fnmatch.fnmatch(rel, glob + "*")):
            if best is None or len(pattern) > len(best[0]):
                best = (pattern, owner)
    return best and best[1]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_ownership_is_the_same_in_copier_yml_the_readme_and_every_file(
    tmp_path: Path, task: str, framework: str
) -> None:
    from pathspec import PathSpec

    from conftest import REPO
    from skelgen import api

    skip = yaml.safe_load((REPO / "copier.yml").read_text())["_skip_if_exists"]
    yours = PathSpec.from_lines("gitignore", skip)
    project = make_project(tmp_path, "p", task, framework)
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 1, "val": 1, "pred": 0})
    if task == "segmentation":
        api.add_dataset(name="brats", project=project)
    rows = _readme_owners((project / "README.md").read_text())
    checked = 0
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        rel = path.relative_to(project).as_posix()
        if rel.startswith(("datasets/shapes/", "datasets/brats/", "logs/", "models/")) or "copier-answers" in rel:
            continue  # data, runs and copier's own records
        owner = "you" if yours.match_file(rel) else "template"
        assert _readme_owner(rel, rows) == owner, (
            f"README says {_readme_owner(rel, rows)} for {rel}, copier.yml {owner}"
        )
        if path.suffix in (".py", ".yaml", ".toml") or path.name == ".gitignore":
            assert _OWNER_LINE[owner] in path.read_text(), f"{rel} does not say 'Owner: {owner}.'"
        checked += 1
    assert checked >= 20
