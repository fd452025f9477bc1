"""The contract between template files and the library: public entry points only, and the previous
release's template keeps working with this library."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_project
from skelgen.api import FRAMEWORKS, TASKS
from skelgen_runtime import PUBLIC_MODULES
from skelgen_runtime._version import __version__


def _rendered_projects(tmp_path: Path) -> list[Path]:
    """A project of every task x framework, with a dataset of every preset its task has."""
    from skelgen import api
    from skelgen_runtime.presets import PRESETS

    projects = []
    for task in TASKS:
        for framework in FRAMEWORKS:
            project = make_project(tmp_path / f"{task}-{framework}", "p", task, framework)
            for preset in (p for p in PRESETS.values() if task in p.tasks):
                api.add_dataset(
                    name=preset.name.replace("-", "_"),
                    preset=preset.name,
                    project=project,
                    sample_counts={"train": 0, "val": 0, "pred": 0},
                    commit=False,
                )
            projects.append(project)
    return projects


def _library_uses(source: str) -> set[tuple[str, str]]:
    """``(module, name)`` of every library name a file imports or reads from an imported library module."""
    tree = ast.parse(source)
    uses, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skelgen_runtime"):
            for alias in node.names:
                uses.add((node.module, alias.name))
                if f"{node.module}.{alias.name}" in PUBLIC_MODULES:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("skelgen_runtime"):
                    uses.add((alias.name, ""))
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.add((aliases[node.value.id], node.attr))
    return uses


def test_the_template_uses_only_declared_public_entry_points(tmp_path: Path) -> None:
    """Every rendered file imports only public names; the template-owned files (the wiring that every
    project merges on update) use few of them: the recipes' jobs, the build and view jobs, the readers."""
    checked, wiring = set(), set()
    for project in _rendered_projects(tmp_path):
        for path in project.rglob("*.py"):
            text = path.read_text()
            uses = _library_uses(text)
            if "Owner: template" in text:
                wiring |= uses
            for module, name in uses:
                where = f"{path.relative_to(project)}: {module}.{name}".rstrip(".")
                if f"{module}.{name}" in PUBLIC_MODULES:
                    continue  # a public submodule
                assert module in PUBLIC_MODULES, f"{where}: {module} is not a public module"
                if name:
                    exported = importlib.import_module(module).__all__
                    assert name in exported, f"{where}: {name} is not in {module}.__all__"
                checked.add((module, name))
    assert len(checked) > 40
    # the 0.2 template used 96 library names; the wiring now uses about a quarter of that
    assert len(wiring) <= 24 and len({module for module, _ in wiring}) <= 5, sorted(wiring)


def test_every_public_name_exists() -> None:
    """The public modules' names, and the previous minor's (kept for its projects), all exist."""
    from skelgen_runtime import PREVIOUS_MODULES

    assert not set(PUBLIC_MODULES) & set(PREVIOUS_MODULES)
    for module in (*PUBLIC_MODULES, *PREVIOUS_MODULES):
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", ()):
            assert hasattr(mod, name), f"{module}.{name} is declared public but missing"


# ------------------------------------------------------------------ the previous release against this library


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def _version_at(commit: str) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:shared/skelgen_runtime/_version.py"], capture_output=True, text=True
    )
    match = re.search(r'__version__ = "([^"]+)"', proc.stdout)
    return match.group(1) if match else None


def previous_release() -> tuple[str, str]:
    """``(version, commit)`` of the release before this one: its ``vX.Y.Z`` tag, else the last commit
    before the version file moved to this version."""
    from packaging.version import Version

    current = Version(__version__)
    tags = [t for t in _git("tag", "-l", "v*").split() if re.fullmatch(r"v\d+(\.\d+)*", t) and Version(t[1:]) < current]
    if tags:
        tag = max(tags, key=lambda t: Version(t[1:]))
        return tag[1:], _git("rev-list", "-n1", tag).strip()
    for commit in _git("rev-list", "HEAD", "--", "shared/skelgen_runtime/_version.py").split():
        parent = (
            _git("rev-list", "-n1", f"{commit}^").strip()
            if _git("rev-list", "--parents", "-n1", commit).split()[1:]
            else ""
        )
        before = _version_at(parent) if parent else None
        if _version_at(commit) == __version__ and before and Version(before) < current:
            return before, parent
    if _git("rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.fail(
            "this clone is shallow: the previous release's template is in the git history "
            "(git fetch --unshallow), which this test renders"
        )
    pytest.fail(f"no release before {__version__} found in the git history")


@pytest.fixture(scope="module")
def previous_template(tmp_path_factory) -> tuple[str, Path]:
    version, commit = previous_release()
    folder = tmp_path_factory.mktemp("previous-template")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "copier.yml", "template"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", version], ["tag", f"v{version}"]):
        subprocess.run(
            ["git", "-C", str(folder), *args], check=True, capture_output=True, env={**__import__("os").environ, **env}
        )
    return version, folder


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "framework"), [("segmentation", "tf"), ("classification", "keras"), ("detection", "keras")]
)
def test_a_project_of_the_previous_release_passes_its_own_tests_with_this_library(
    tmp_path: Path, monkeypatch, previous_template, task: str, framework: str
) -> None:
    from skelgen import api

    version, folder = previous_template
    monkeypatch.setenv("SKELGEN_TEMPLATE", str(folder))
    project = make_project(tmp_path, "old", task, framework)
    assert f"_commit: v{version}" in (project / ".copier-answers.yml").read_text()
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 12, "val": 8, "pred": 8})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


@pytest.mark.slow
def test_a_project_of_a_previous_development_install_updates_and_passes_its_own_tests(
    tmp_path: Path, monkeypatch
) -> None:
    """skelgen 0.1 ran from a checkout: its projects record the checkout's path and a bare commit hash.
    While that checkout exists, skelgen update brings them to this version."""
    import os

    version, commit = previous_release()
    checkout, ws = tmp_path / "old-checkout", tmp_path / "ws"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(checkout)], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", commit], check=True, env=env)
    copier = [sys.executable, "-m", "copier", "copy", "--vcs-ref", "HEAD", "--defaults", "--quiet"]
    data = ["-d", "scaffold=project", "-d", "project_name=old", "-d", "task=segmentation", "-d", "framework=tf"]
    subprocess.run([*copier, *data, str(checkout), str(ws / "old")], check=True, env=env, capture_output=True)
    dataset = [
        "-d",
        "scaffold=dataset",
        "-d",
        "task=segmentation",
        "-d",
        "dataset_name=shapes",
        "-d",
        "preset=shapes",
        "-d",
        "reader=ImagesMasksSource",
        "-d",
        "class_names=[background, circle, square, triangle]",
    ]
    subprocess.run([*copier, *dataset, str(checkout), str(ws / "old")], check=True, env=env, capture_output=True)
    from skelgen_runtime.samples.shapes import write_shapes

    write_shapes(ws / "old" / "datasets" / "shapes", task="segmentation", counts={"train": 12, "val": 8, "pred": 8})
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "made by skelgen 0.1"]):
        subprocess.run(["git", "-C", str(ws), *args], check=True, env=env, capture_output=True)
    answers = (ws / "old" / ".copier-answers.yml").read_text()
    assert f"_src_path: {checkout}" in answers and f"_commit: {commit[:7]}" in answers

    out = subprocess.run(
        [str(Path(sys.executable).parent / "skelgen"), "update"],
        cwd=ws / "old",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"project: updated {version}+g{commit[:8]} -> {__version__}" in out.stdout
    assert f"dataset shapes: updated {version}+g{commit[:8]} -> {__version__}" in out.stdout
    assert (ws / "old" / "core" / "project.py").is_file(), "a file the new template adds arrives"
    gone = [
        rel
        for rel in ("datasets/pipelines.py", "datasets/data_generator.py", "datasets/volume_generator.py")
        if (ws / "old" / rel).exists()
    ]
    assert not gone, f"files the template no longer has stay: {gone}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ws / "old",
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
