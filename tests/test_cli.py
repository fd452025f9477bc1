"""The skelgen command line: speed, help, workspace creation, and refusals of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import SKELGEN, ChildCPU, in_terminal, skelgen
from skelgen import __version__, cli


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def test_help_is_fast_and_imports_no_tensorflow() -> None:
    best = min(_timed([SKELGEN, "--help"]) for _ in range(3))
    assert best <= 0.5, f"skelgen --help took {best:.2f} CPU s"
    probe = (
        "import sys; from skelgen.cli import cli; from click.testing import CliRunner;"
        "r = CliRunner();"
        "[r.invoke(cli, a) for a in (['--help'], ['new', '--help'], ['add-dataset', '--help'], ['runs', '--help'],"
        " ['runs', 'compare', '--help'], ['runs', 'plot', '--help'])];"
        "heavy = [m for m in ('tensorflow', 'keras', 'copier', 'matplotlib', 'numpy') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, f"the CLI's help imported {proc.stdout}"


BARE_CLICK_APP = """
import click

@click.group()
def cli():
    \"\"\"A bare click app: one group, one command with a choice.\"\"\"

@cli.command()
@click.option("--task", type=click.Choice(["a", "b"]))
def new(task):
    \"\"\"New.\"\"\"

cli()
"""


def test_help_costs_little_more_than_a_bare_click_app(tmp_path: Path) -> None:
    """skelgen --help within 1.3x of a bare click app's --help (best of 9 runs each, interleaved)."""
    bare = tmp_path / "bare.py"
    bare.write_text(BARE_CLICK_APP)
    ours, theirs = [], []
    for _ in range(9):
        theirs.append(_timed([sys.executable, str(bare), "--help"]))
        ours.append(_timed([SKELGEN, "--help"]))
    assert min(ours) <= 1.3 * min(theirs), f"skelgen --help {min(ours):.3f}s, a bare click app {min(theirs):.3f}s"


def test_python_m_skelgen_and_shell_completion() -> None:
    proc = subprocess.run([sys.executable, "-m", "skelgen", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"skelgen, version {__version__}"
    env = {**__import__("os").environ, "_SKELGEN_COMPLETE": "bash_complete", "COMP_CWORD": "3"}
    done = subprocess.run(
        [SKELGEN, "new", "--task", "c"],
        capture_output=True,
        text=True,
        env={**env, "COMP_WORDS": "skelgen new --task c"},
    ).stdout.split()
    assert done == ["plain,classification"]
    done = subprocess.run(
        [SKELGEN],
        capture_output=True,
        text=True,
        env={**env, "COMP_WORDS": "skelgen add-dataset x --preset c", "COMP_CWORD": "4"},
    ).stdout.split()
    assert done == ["plain,cityscapes", "plain,coco", "plain,custom"]
    script = subprocess.run(
        [SKELGEN], capture_output=True, text=True, env={**env, "_SKELGEN_COMPLETE": "bash_source"}
    ).stdout
    assert "_skelgen_completion()" in script and "complete -o nosort -F _skelgen_completion skelgen" in script


def _timed(cmd: list[str]) -> float:
    """CPU seconds of ``cmd`` (the suite runs tests side by side: wall time would count the neighbour's work)."""
    with ChildCPU() as cpu:
        subprocess.run(cmd, check=True, capture_output=True)
    return cpu.seconds


def test_version() -> None:
    assert skelgen("--version").stdout.strip() == f"skelgen, version {__version__}"


def test_subcommand_help_explains_options() -> None:
    out = skelgen("new", "--help").stdout
    for option in (
        "--task",
        "--framework",
        "--workspace",
        "--defaults",
        "[segmentation|classification|detection]",
        "[keras|tf]",
    ):
        assert option in out
    out = skelgen("add-dataset", "--help").stdout
    for option in ("--preset", "--project", "--source", "--defaults"):
        assert option in out
    out = skelgen("runs", "--help").stdout
    for text in ("--project", "--json", "compare", "plot", "latest", '"best_epoch"', '"differing"'):
        assert text in out
    assert "--metric" in skelgen("runs", "plot", "--help").stdout


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_help_shows_its_choices_defaults_and_an_example() -> None:
    """skelgen --help and each subcommand's: one example at least; every option with choices lists them;
    every option that is not a flag says its default (click's [default: ...] or 'default' in its help)."""
    from click.testing import CliRunner

    commands = list(_commands(cli.cli))
    assert {" ".join(path) for path, _ in commands} >= {
        "new",
        "add-dataset",
        "update",
        "runs",
        "runs compare",
        "runs plot",
        "weights",
        "weights import",
        "doctor",
    }
    for path, command in [((), cli.cli), *commands]:
        out = CliRunner().invoke(cli.cli, [*path, "--help"], terminal_width=200).output
        where = f"skelgen {' '.join(path)} --help"
        assert "Example" in out and "  skelgen " in out.split("Example", 1)[1], f"{where}: no example"
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or param.name == "help":
                continue
            line = " ".join(out.split("Options:", 1)[1].split(param.opts[0], 1)[1].split("\n  -", 1)[0].split())
            if isinstance(param.type, click.Choice):
                assert "[" + "|".join(param.type.choices) + "]" in line, f"{where}: {param.opts[0]} choices"
            assert "default" in line or param.required, f"{where}: {param.opts[0]} says no default: {line!r}"


def test_new_is_fast_and_creates_a_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with ChildCPU() as cpu:  # git's processes included
        proc = skelgen("new", "seg", "--task", "segmentation", "--workspace", str(ws), "--defaults")
    assert cpu.seconds <= 3.0, f"skelgen new took {cpu.seconds:.2f} CPU s"
    assert "created segmentation project (keras)" in proc.stdout
    for name in (".gitignore", "README.md", "CHANGELOG.md", ".git"):
        assert (ws / name).exists(), name
    assert "| [seg](seg/) | segmentation | keras | - |" in (ws / "README.md").read_text()
    assert "created project seg (segmentation, keras)" in (ws / "CHANGELOG.md").read_text()
    project = ws / "seg"
    for rel in (
        "core/unet.py",
        "core/backbones.py",
        "datasets/build_data.py",
        "core/project.py",
        "datasets/preprocesses.py",
        "configs/default.yaml",
        "configs/demo.yaml",
        "train.py",
        "evaluate.py",
        "predict.py",
        "README.md",
        "pyproject.toml",
        "tests/test_pipeline.py",
        "logs",
        "models",
        ".copier-answers.yml",
    ):
        assert (project / rel).exists(), rel

    # a second project: same workspace, index lists both, the workspace is not re-initialised
    skelgen("new", "seg2", "--workspace", str(ws), "--defaults")
    readme = (ws / "README.md").read_text()
    assert "[seg](seg/)" in readme and "[seg2](seg2/)" in readme


def test_new_inside_an_existing_git_repo_does_not_nest_one(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    skelgen("new", "p", "--workspace", str(tmp_path / "ws"), "--defaults")
    assert not (tmp_path / "ws" / ".git").exists()


@pytest.mark.parametrize("name", ["../x", "my project", "class", "", "1abc", "a/b", "dét", "tensorflow", "Keras"])
def test_new_refuses_invalid_names(tmp_path: Path, name: str) -> None:
    proc = skelgen("new", name, "--workspace", str(tmp_path / "ws"), "--defaults", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "name" in lines[0]
    assert not (tmp_path / "ws").exists(), "nothing may be written for a refused name"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "name, needles",
    [
        ("dét", ["'é' is not ASCII", "e.g. det)"]),  # an identifier, but not one for file and package names
        ("tensorflow", ["would shadow 'tensorflow'", "tensorflow_project"]),
        ("1abc", ["not starting with a digit"]),
    ],
)
def test_a_refused_name_is_told_the_rule_it_breaks(tmp_path: Path, name: str, needles: list[str]) -> None:
    proc = skelgen("new", name, "--workspace", str(tmp_path / "ws"), "--defaults", check=False)
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_new_inside_a_project_is_refused_naming_its_workspace(tmp_path: Path) -> None:
    """A project made inside another would turn that project into a workspace (index, CHANGELOG, commit)."""
    ws = tmp_path / "ws"
    skelgen("new", "outer", "--workspace", str(ws), "--defaults")
    before = _snapshot(ws)
    proc = skelgen("new", "inner", "--defaults", cwd=ws / "outer" / "core", check=False)
    assert proc.returncode == 2 and f"is inside the project {ws / 'outer'}" in proc.stderr
    assert f"skelgen new inner --workspace {ws}" in proc.stderr
    assert _snapshot(ws) == before


def test_next_hints_quote_paths_a_shell_would_split(tmp_path: Path) -> None:
    ws = tmp_path / "my projects"
    out = skelgen("new", "p", "--workspace", str(ws), "--defaults").stdout
    assert f"next: cd '{ws / 'p'}' && skelgen add-dataset shapes" in out
    out = skelgen("add-dataset", "voc2012", cwd=ws / "p").stdout
    assert f"next: cd '{ws / 'p'}' && python datasets/build_voc2012_to_tfrecord.py" in out


def test_choices_are_case_insensitive(tmp_path: Path) -> None:
    skelgen("new", "p", "--framework", "TF", "--task", "Classification", "--workspace", str(tmp_path), "--defaults")
    assert "framework: tf" in (tmp_path / "p" / ".copier-answers.yml").read_text()


def test_new_refuses_a_non_empty_directory_and_changes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "taken").mkdir(parents=True)
    (ws / "taken" / "notes.txt").write_text("mine")
    before = _snapshot(ws)
    proc = skelgen("new", "taken", "--workspace", str(ws), "--defaults", check=False)
    assert proc.returncode == 2
    assert "already exists and is not empty" in proc.stderr and str(ws / "taken") in proc.stderr
    assert _snapshot(ws) == before


def test_new_refuses_a_workspace_it_cannot_write_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    cases = [
        (tmp_path / "afile" / "ws", f"{tmp_path / 'afile'} is a file, not a folder"),
        (Path("/proc/skelgen-ws"), "cannot be written in /proc"),  # looks writable to root, refuses anyway
    ]
    for ws, needle in cases:
        proc = skelgen("new", "p", "--workspace", str(ws), "--defaults", check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
        assert needle in lines[0] and "Traceback" not in proc.stderr
    assert (tmp_path / "afile").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_new_refuses_estimator_with_the_reason(tmp_path: Path) -> None:
    proc = skelgen("new", "p", "--framework", "estimator", "--workspace", str(tmp_path), "--defaults", check=False)
    assert proc.returncode == 2
    assert "tf.estimator was removed in TensorFlow 2.16" in proc.stderr


def test_new_refuses_unknown_task(tmp_path: Path) -> None:
    proc = skelgen("new", "p", "--task", "regression", "--workspace", str(tmp_path), "--defaults", check=False)
    assert proc.returncode == 2 and "unknown task 'regression'" in proc.stderr


def test_new_asks_for_missing_values_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("skelgen._click.interactive", lambda defaults: not defaults)
    result = CliRunner().invoke(cli.cli, ["new", "--workspace", str(tmp_path)], input="asked\n\n\n")
    assert result.exit_code == 0, result.output
    assert "Project name" in result.output and "Task" in result.output
    assert (tmp_path / "asked" / "train.py").is_file()


def test_the_custom_preset_asks_for_its_class_names_and_takes_classes(tmp_path: Path, monkeypatch) -> None:
    skelgen("new", "p", "--workspace", str(tmp_path), "--defaults")
    project = tmp_path / "p"
    monkeypatch.setattr("skelgen._click.interactive", lambda defaults: not defaults)
    result = CliRunner().invoke(
        cli.cli,
        ["add-dataset", "cells", "--preset", "custom", "--project", str(project)],
        input="background, nucleus\n",
    )
    assert result.exit_code == 0, result.output
    assert "Class names in label-id order" in result.output
    assert 'CLASSES = ["background", "nucleus"]' in (project / "datasets/cells/source.py").read_text()
    assert "- 1: nucleus" in (project / "datasets/cells/README.md").read_text()

    skelgen("add-dataset", "tissue", "--preset", "custom", "--classes", "bg,tumour,stroma", "--project", str(project))
    assert 'CLASSES = ["bg", "tumour", "stroma"]' in (project / "datasets/tissue/source.py").read_text()
    for classes, needle in (("a,,b", "a class name is empty"), ("a,b,a", "a given twice")):
        bad = skelgen(
            "add-dataset", "x", "--preset", "custom", "--classes", classes, "--project", str(project), check=False
        )
        assert bad.returncode == 2 and needle in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert not (project / "datasets/x").exists()


def test_new_without_name_and_without_terminal_is_a_usage_error(tmp_path: Path) -> None:
    proc = skelgen("new", "--workspace", str(tmp_path), check=False)
    assert proc.returncode == 2 and "missing NAME" in proc.stderr


def test_add_dataset_outside_a_project(tmp_path: Path) -> None:
    proc = skelgen("add-dataset", "shapes", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "is not inside a skelgen project" in proc.stderr and str(tmp_path) in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_add_dataset_generates_shapes_and_updates_the_index(tmp_path: Path) -> None:
    skelgen("new", "p", "--workspace", str(tmp_path), "--defaults")
    project = tmp_path / "p"
    proc = skelgen("add-dataset", "shapes", cwd=project / "core")  # any folder inside the project works
    assert "added dataset shapes" in proc.stdout
    # each step is announced as it starts (the images take seconds), not after the fact
    assert proc.stderr.splitlines() == [
        "rendering dataset shapes (shapes) into p ...",
        "generating 1016 images (train 800, val 200, pred 16) ...",
    ], proc.stderr
    assert len(list((project / "datasets/shapes/data/train").glob("*.jpg"))) == 800
    assert len(list((project / "datasets/shapes/annotations/val").glob("*.png"))) == 200
    assert len(list((project / "datasets/shapes/data/pred").glob("*.jpg"))) == 16
    for rel in (
        "datasets/build_shapes_to_tfrecord.py",
        "datasets/tfrecord2image_shapes_format.py",
        "datasets/.copier-answers.shapes.yml",
    ):
        assert (project / rel).exists(), rel
    assert not (project / "datasets/shapes/tfrecords").exists(), "the build makes its output folder"
    assert "| [p](p/) | segmentation | keras | shapes |" in (tmp_path / "README.md").read_text()

    again = skelgen("add-dataset", "shapes", "--project", str(project), check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    status, seen = in_terminal([SKELGEN, "add-dataset", "more", "--preset", "shapes"], project)
    assert status == 0 and "shapes images:" in seen and "img/s" in seen, seen  # a bar, on a terminal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../x", "--preset", "shapes"], "must not contain a path"),
        (["my data", "--preset", "shapes"], "invalid dataset name"),
        (["mine"], "is not a known dataset"),
        (["mine", "--preset", "nope"], "unknown dataset preset 'nope'"),
        (["shapez"], "is not a known dataset, so its layout is unknown; pass --preset"),
        (["shapez"], "did you mean 'shapes'?"),
        (["mine", "--preset", "shape"], "did you mean 'shapes'?"),
    ],
)
def test_add_dataset_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    skelgen("new", "p", "--workspace", str(tmp_path), "--defaults")
    before = _snapshot(tmp_path)
    proc = skelgen("add-dataset", *args, "--project", str(tmp_path / "p"), check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert _snapshot(tmp_path) == before


def test_a_broken_answers_file_is_named_with_how_to_restore_it(tmp_path: Path) -> None:
    skelgen("new", "p", "--workspace", str(tmp_path), "--defaults")
    (tmp_path / "p" / ".copier-answers.yml").write_text("_commit: [unclosed\n")
    for args in (["add-dataset", "shapes"], ["update", "--check"]):
        proc = skelgen(*args, cwd=tmp_path / "p", check=False)
        (line,) = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert ".copier-answers.yml cannot be read" in line and "git -C" in line and "checkout --" in line
