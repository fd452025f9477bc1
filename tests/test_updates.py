"""Keeping projects up to date across template versions: plain ``copier update`` and ``skelgen update``.

Template versions are tagged commits of a temporary repository made from this checkout's template
(``SKELGEN_TEMPLATE`` points skelgen at it); real copier and git throughout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SKELGEN
from skelgen.api import TASKS
from skelgen_runtime._version import __version__

COPIER = str(Path(sys.executable).parent / "copier")
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **GIT_ID, **(env or {})}
    )
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout


def template_files() -> list[str]:
    """copier.yml and template/ as the working tree has them (committed or not)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z", "--", "copier.yml", "template"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


class TemplateRepo:
    """A git repository of skelgen's template with one tag per version, made from this checkout."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for rel in template_files():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, path / rel)
        git(path, "init", "-q", "-b", "main")
        self.version = __version__
        self.commit(f"v{__version__}")

    def commit(self, tag: str) -> None:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", tag)
        git(self.path, "tag", tag)

    def release(self, version: str, *edits: tuple[str, str, str]) -> None:
        """Tag ``version`` after replacing ``old`` by ``new`` once in each ``(file, old, new)``."""
        for rel, old, new in (*edits, ("copier.yml", f'default: "{self.version}"', f'default: "{version}"')):
            path = self.path / rel
            text = path.read_text()
            assert old in text, f"{old!r} not in {rel}"
            path.write_text(text.replace(old, new, 1))
        self.version = version
        self.commit(f"v{version}")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but git's own, with its content."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


def changed_in(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "show", "--name-only", "--format=", commit).split())


TRAIN = "template/project/train.py.jinja"
BUILD = "template/dataset/datasets/build_{{dataset_name}}_to_tfrecord.py.jinja"
NEXT = "0.9.1"
N1_EDITS = (
    (TRAIN, "def main(argv=None) -> None:\n", "def main(argv=None) -> None:\n    # template N+1: main\n"),
    (BUILD, 'NAME = "{{ dataset_name }}"\n', 'NAME = "{{ dataset_name }}"\n# template N+1: build\n'),
)


@pytest.fixture
def template(tmp_path: Path, monkeypatch) -> TemplateRepo:
    repo = TemplateRepo(tmp_path / "template")
    monkeypatch.setenv("SKELGEN_TEMPLATE", str(repo.path))
    return repo


def make_workspace(tmp_path: Path, task: str) -> tuple[Path, Path]:
    """A committed workspace with one project of ``task`` and its shapes dataset, plus the user's edits."""
    from skelgen import api

    ws = tmp_path / "ws"
    project = api.new_project(name="proj", task=task, framework="keras", workspace=ws).path
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 2, "val": 2, "pred": 1})
    assert not git(ws, "status", "--porcelain"), "skelgen new and add-dataset leave everything committed"
    edit(project / "train.py", 'if __name__ == "__main__":', '# user: my option\nif __name__ == "__main__":')
    first_core = sorted((project / "core").glob("*.py"))[1]
    first_core.write_text(first_core.read_text() + "\n# user: my helper\n")
    edit(project / "configs" / "default.yaml", "seed: 42", "seed: 7")
    git(ws, "commit", "-qam", "user edits")
    return ws, project


def assert_updated(ws: Path, project: Path, before: dict[str, bytes]) -> None:
    """Both N+1 changes arrived, the user's three edits survived, nothing was deleted or conflicted."""
    after = tree(ws)
    assert set(before) <= set(after), f"deleted: {sorted(set(before) - set(after))}"
    text = "\n".join(v.decode(errors="replace") for k, v in after.items() if k.endswith((".py", ".yaml", ".yml")))
    assert "<<<<<<<" not in text and not [k for k in after if k.endswith(".rej")]
    train = (project / "train.py").read_text()
    assert "# template N+1: main" in train and "# user: my option" in train
    assert "# template N+1: build" in (project / "datasets" / "build_shapes_to_tfrecord.py").read_text()
    assert any("# user: my helper" in p.read_text() for p in (project / "core").glob("*.py"))
    assert "seed: 7" in (project / "configs" / "default.yaml").read_text()
    assert f'"skelgen-tf>={NEXT},<0.10"' in (project / "pyproject.toml").read_text()
    for answers in (project / ".copier-answers.yml", project / "datasets" / ".copier-answers.shapes.yml"):
        assert yaml.safe_load(answers.read_text())["_commit"] == f"v{NEXT}"
    assert not git(ws, "status", "--porcelain")


def assert_scaffolds_kept_apart(ws: Path, project_commit: str, dataset_commit: str) -> None:
    project_files, dataset_files = changed_in(ws, project_commit), changed_in(ws, dataset_commit)
    assert "proj/train.py" in project_files and not any(f.startswith("proj/datasets/build_") for f in project_files)
    assert "proj/datasets/build_shapes_to_tfrecord.py" in dataset_files
    assert dataset_files <= {
        "proj/datasets/build_shapes_to_tfrecord.py",
        "proj/datasets/tfrecord2image_shapes_format.py",
        "proj/datasets/.copier-answers.shapes.yml",
        "proj/datasets/shapes/README.md",
        "proj/datasets/shapes/source.py",
    }


@pytest.mark.parametrize("task", TASKS)
def test_plain_copier_update_and_skelgen_update_bring_both_changes_and_keep_edits(
    tmp_path: Path, template: TemplateRepo, task: str
) -> None:
    ws, project = make_workspace(tmp_path, task)
    template.release(NEXT, *N1_EDITS)
    copy = tmp_path / "copy"
    shutil.copytree(ws, copy, symlinks=True)
    before = tree(ws)

    # plain copier, no skelgen in between: the project scaffold, then the dataset's
    run([COPIER, "update", "--defaults"], project)
    git(ws, "commit", "-qam", "copier update: project")
    project_commit = git(ws, "rev-parse", "HEAD").strip()
    run([COPIER, "update", "--defaults", "-a", "datasets/.copier-answers.shapes.yml"], project)
    git(ws, "commit", "-qam", "copier update: dataset")
    assert_updated(ws, project, before)
    assert_scaffolds_kept_apart(ws, project_commit, git(ws, "rev-parse", "HEAD").strip())

    # skelgen update on the second copy: one commit per scaffold
    out = run([SKELGEN, "update"], copy / "proj").stdout
    assert (
        f"project: updated {__version__} -> {NEXT}" in out and f"dataset shapes: updated {__version__} -> {NEXT}" in out
    )
    assert_updated(copy, copy / "proj", before)
    dataset_commit, project_commit = git(copy, "log", "-2", "--format=%H").split()
    assert_scaffolds_kept_apart(copy, project_commit, dataset_commit)
    assert "up to date" in run([SKELGEN, "update"], copy / "proj").stdout


@pytest.mark.parametrize("mode", ["inline", "rej"])
def test_a_conflicting_update_fails_naming_the_file_and_keeps_both_versions(
    tmp_path: Path, template: TemplateRepo, mode: str
) -> None:
    ws, project = make_workspace(tmp_path, "segmentation")
    edit(
        project / "train.py", "    python train.py --resume auto", "    python train.py --resume auto   # user: my line"
    )
    git(ws, "commit", "-qam", "user edits the line the template changes")
    template.release(
        NEXT, (TRAIN, "    python train.py --resume auto", "    python train.py --resume auto   # template's line")
    )
    head = git(ws, "rev-parse", "HEAD")

    proc = run([SKELGEN, "update", "--conflict", mode], project, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and "train.py" in message and "conflicts with your edits" in message
    assert git(ws, "rev-parse", "HEAD") == head, "nothing is committed"
    text = (project / "train.py").read_text()
    if mode == "inline":
        assert "<<<<<<< before updating" in text and "# user: my line" in text and "# template's line" in text
    else:
        # copier re-applies the user's diff to the new version: the hunk that does not apply is the .rej
        rejected = (project / "train.py.rej").read_text()
        assert "# template's line" in text and "# user: my line" in rejected


def test_dry_run_changes_nothing(tmp_path: Path, template: TemplateRepo) -> None:
    ws, project = make_workspace(tmp_path, "classification")
    template.release(NEXT, *N1_EDITS)
    before = (
        tree(ws),
        git(ws, "rev-parse", "HEAD"),
        git(ws, "status", "--porcelain", "--ignored"),
        git(ws, "for-each-ref"),
        git(ws, "stash", "list"),
    )
    out = run([SKELGEN, "update", "--dry-run"], project).stdout
    assert f"project: would update {__version__} -> {NEXT}" in out and "M train.py" in out and "dry run" in out
    after = (
        tree(ws),
        git(ws, "rev-parse", "HEAD"),
        git(ws, "status", "--porcelain", "--ignored"),
        git(ws, "for-each-ref"),
        git(ws, "stash", "list"),
    )
    assert after == before


def test_ten_successive_versions_arrive_one_by_one_with_every_edit_kept(tmp_path: Path, template: TemplateRepo) -> None:
    ws, project = make_workspace(tmp_path, "detection")
    edit(project / "README.md", "## Setup", "## Setup\n\nuser: our team's notes.")
    edit(
        project / "evaluate.py",
        "    args = evaluate_arguments(__doc__).parse_args(argv)",
        "    args = evaluate_arguments(__doc__).parse_args(argv)  # user",
    )
    git(ws, "commit", "-qam", "more user edits")
    files = [
        TRAIN,
        "template/project/evaluate.py",
        "template/project/predict.py",
        "template/project/README.md.jinja",
        "template/project/pyproject.toml.jinja",
        "template/project/datasets/build_data.py.jinja",
        "template/project/export.py",
        "template/project/tests/test_pipeline.py.jinja",
        "template/project/.gitignore",
        BUILD,
    ]
    for k, rel in enumerate(files, start=1):
        marker = f"template version {k} was here"
        line = "# " + marker + "\n" if not rel.endswith(".md.jinja") else marker + "\n"
        text = (template.path / rel).read_text()
        (template.path / rel).write_text(text + "\n" + line)
        template.release(f"0.9.{k}")
        proc = run([SKELGEN, "update"], project)
        assert "conflict" not in proc.stdout + proc.stderr
    rendered = {
        TRAIN: "train.py",
        "template/project/evaluate.py": "evaluate.py",
        "template/project/predict.py": "predict.py",
        "template/project/README.md.jinja": "README.md",
        "template/project/pyproject.toml.jinja": "pyproject.toml",
        "template/project/datasets/build_data.py.jinja": "datasets/build_data.py",
        "template/project/export.py": "export.py",
        "template/project/tests/test_pipeline.py.jinja": "tests/test_pipeline.py",
        "template/project/.gitignore": ".gitignore",
        BUILD: "datasets/build_shapes_to_tfrecord.py",
    }
    for k, rel in enumerate(files, start=1):
        assert f"template version {k} was here" in (project / rendered[rel]).read_text(), rendered[rel]
    assert "user: our team's notes." in (project / "README.md").read_text()
    assert "parse_args(argv)  # user" in (project / "evaluate.py").read_text()
    assert "# user: my option" in (project / "train.py").read_text()
    assert "seed: 7" in (project / "configs" / "default.yaml").read_text()
    assert not git(ws, "status", "--porcelain")
    assert len(git(ws, "log", "--format=%s", "--grep", "skelgen update").splitlines()) == 20  # project + dataset, x10


def test_a_file_the_template_drops_goes_unless_the_user_edited_it(tmp_path: Path, template: TemplateRepo) -> None:
    """copier deletes a file the new template no longer has, whatever it holds; skelgen keeps the ones the
    user edited (and says so), so an update never drops the user's work."""
    ws, project = make_workspace(tmp_path, "segmentation")
    edit(
        project / "export.py",
        "    args = export_arguments(",
        "    # user: my export tweak\n    args = export_arguments(",
    )
    git(ws, "commit", "-qam", "user edits export.py")
    for rel in ("template/project/export.py", "template/project/predict.py"):  # N+1 drops both scripts
        (template.path / rel).unlink()
    template.release(NEXT)
    out = run([SKELGEN, "update"], project).stdout
    assert "D predict.py" in out and not (project / "predict.py").exists(), "an unedited dropped file goes"
    assert "kept export.py: the new template no longer has it, but you had edited it" in out
    assert "# user: my export tweak" in (project / "export.py").read_text()
    assert not git(ws, "status", "--porcelain"), "the update is committed, the kept file with it"
    assert "export.py" in git(ws, "ls-files", "proj/")


def test_update_refuses_a_dirty_tree_with_the_commands_to_run(tmp_path: Path, template: TemplateRepo) -> None:
    ws, project = make_workspace(tmp_path, "segmentation")
    template.release(NEXT, *N1_EDITS)
    (project / "train.py").write_text((project / "train.py").read_text() + "# uncommitted\n")
    proc = run([SKELGEN, "update"], project, check=False)
    message = proc.stderr.strip()
    assert proc.returncode != 0 and len(message.splitlines()) == 1 and message.startswith("error:")
    assert "uncommitted changes" in message and f"git -C {ws} add -u proj" in message and "stash push" in message

    # untracked code is to be committed; untracked data and outputs never are: they go to .gitignore
    (project / "core" / "mine.py").write_text("X = 1\n")
    (project / "outputs").mkdir()
    for i in range(3):
        (project / "outputs" / f"{i}.png").write_bytes(b"\x89PNG")
    (project / "notes.bin").write_bytes(b"\0")
    message = run([SKELGEN, "update"], project, check=False).stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"new code: core/mine.py: commit it (git -C {ws} add proj/core/mine.py)" in message
    assert "untracked data or outputs: notes.bin, outputs/:" in message  # git's order; a folder once
    assert f"{project / '.gitignore'}" in message and "add -A" not in message


def test_outputs_and_raw_data_are_ignored_where_the_readmes_put_them(tmp_path: Path) -> None:
    """predict.py --output predictions/, raw data in a dataset's folder, previews: git sees none of them."""
    from skelgen import api

    ws = tmp_path / "ws"
    project = api.new_project(name="proj", task="segmentation", framework="keras", workspace=ws).path
    api.add_dataset(name="voc", preset="voc2012", project=project)
    # a publisher's layout gets no empty plain-layout folders, and its README does not claim a copy
    assert sorted(p.name for p in (project / "datasets" / "voc").iterdir()) == ["README.md", "source.py"]
    readme = (project / "datasets" / "voc" / "README.md").read_text()
    assert "copied into" not in readme and "Put the raw data here" in readme
    for rel in (
        "predictions/a_overlay.png",
        "datasets/voc/VOCdevkit/VOC2012/JPEGImages/a.jpg",
        "datasets/voc/tfrecords/train-00000-of-00001.tfrecord",
        "datasets/voc/preview/a.png",
    ):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(b"x")
    assert not git(ws, "status", "--porcelain", "--untracked-files=all")
    (project / "datasets" / "voc" / "helpers.py").write_text("# the user's code\n")
    assert git(ws, "status", "--porcelain").strip() == "?? proj/datasets/voc/helpers.py"


def test_a_conflict_after_a_committed_scaffold_names_that_commit(tmp_path: Path, template: TemplateRepo) -> None:
    ws, project = make_workspace(tmp_path, "classification")
    build = project / "datasets" / "build_shapes_to_tfrecord.py"
    edit(build, 'NAME = "shapes"\n', 'NAME = "shapes"  # user\n')
    git(ws, "commit", "-qam", "user edits the build script's line the template changes")
    template.release(
        NEXT,
        N1_EDITS[0],
        (BUILD, 'NAME = "{{ dataset_name }}"\n', 'NAME = "{{ dataset_name }}"  # template\n'),
    )
    proc = run([SKELGEN, "update"], project, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    project_commit = git(ws, "rev-parse", "--short=10", "HEAD").strip()
    assert "dataset shapes" in message and "build_shapes_to_tfrecord.py" in message
    assert "nothing committed" not in message
    assert f"this update committed 1 change before it: {project_commit} 'skelgen update: project" in message
    assert "# template N+1: main" in git(ws, "show", "HEAD:proj/train.py")


def _snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("breakage", ["missing template", "broken template"])
def test_a_failed_new_leaves_the_workspace_exactly_as_it_was(tmp_path: Path, monkeypatch, breakage: str) -> None:
    broken = tmp_path / "broken"
    if breakage == "broken template":
        repo = TemplateRepo(broken)
        edit(
            broken / TRAIN,
            "def main(argv=None) -> None:",
            "def main(argv=None) -> None:  {{ undefined_filter | nope }}",
        )
        repo.commit("v9.9.9")
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    run([SKELGEN, "new", "first", "--workspace", str(existing), "--defaults"], tmp_path)
    monkeypatch.setenv("SKELGEN_TEMPLATE", str(broken))
    for ws in (fresh, existing):
        before = _snapshot(ws)
        proc = run([SKELGEN, "new", "second", "--workspace", str(ws), "--defaults"], tmp_path, check=False)
        assert proc.returncode != 0 and proc.stderr.strip().startswith("error:"), proc.stderr
        assert "Traceback" not in proc.stderr
        assert _snapshot(ws) == before, ws


def test_the_store_tags_every_version_and_never_records_a_commit_past_a_tag(tmp_path: Path, monkeypatch) -> None:
    from skelgen import store

    monkeypatch.setenv("SKELGEN_HOME", str(tmp_path / "home"))
    assert store.source().ref == f"v{__version__}"
    assert store.source().ref == f"v{__version__}", "the same content keeps its tag"
    changed = tmp_path / "changed"
    for rel in template_files():
        (changed / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, changed / rel)
    edit(changed / TRAIN, "def main(", "# an edited development checkout\ndef main(")
    monkeypatch.setattr(store, "packaged_template", lambda: changed)
    assert store.source().ref == f"v{__version__}.post1"
    monkeypatch.undo()
    monkeypatch.setenv("SKELGEN_HOME", str(tmp_path / "home"))
    assert store.source().ref == f"v{__version__}"
    tags = store.release_tags(store.store_path())
    assert set(tags) == {f"v{__version__}", f"v{__version__}.post1"}
    assert not git(store.store_path(), "status", "--porcelain"), "the store's work tree stays clean"


def test_a_failing_update_leaves_the_project_as_it_was_committed(tmp_path: Path, template: TemplateRepo) -> None:
    ws, project = make_workspace(tmp_path, "segmentation")
    template.release(
        NEXT, (TRAIN, "def main(argv=None) -> None:", "def main(argv=None) -> None:  {{ nope | nofilter }}")
    )
    before = (tree(ws), git(ws, "rev-parse", "HEAD"))
    proc = run([SKELGEN, "update"], project, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: copier could not update project")
    assert (tree(ws), git(ws, "rev-parse", "HEAD")) == before
    assert not git(ws, "status", "--porcelain"), "nothing half-updated is left"


SOURCE = "template/dataset/datasets/{{dataset_name}}/source.py.jinja"


def test_what_the_user_adapts_to_the_data_is_theirs_and_updates_never_meet_it(
    tmp_path: Path, template: TemplateRepo
) -> None:
    """CLASSES and make_source() live in datasets/NAME/source.py (user-owned): edited there, a template update of
    the build script merges without a conflict, and the template's own changes to source.py stay out of it."""
    ws, project = make_workspace(tmp_path, "segmentation")
    source = project / "datasets" / "shapes" / "source.py"
    assert source.read_text().startswith('"""Where the shapes raw data is') and "Owner: you." in source.read_text()
    edit(source, '"square"', '"box"')
    edit(source, "def make_source(root: Path) -> Reader:\n", "def make_source(root: Path) -> Reader:  # mine\n")
    git(ws, "commit", "-qam", "the user's classes and reader")
    template.release(NEXT, *N1_EDITS, (SOURCE, "FIRST_ID = ", "# template N+1: source\nFIRST_ID = "))
    proc = run([SKELGEN, "update"], project)
    assert "CONFLICT" not in proc.stdout + proc.stderr
    assert "# template N+1: build" in (project / "datasets" / "build_shapes_to_tfrecord.py").read_text()
    text = source.read_text()
    assert '"box"' in text and "# mine" in text and "template N+1" not in text
    assert not git(ws, "status", "--porcelain")
