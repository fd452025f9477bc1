"""The run record's provenance: git commit and uncommitted patch, versions, dataset fingerprint; run ids; status history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_workspace, git


def project_files(project: Path) -> dict[str, bytes]:
    """The files git would see in ``project`` (tracked and untracked, not ignored; no run outputs) and their contents."""
    names = git(project, "ls-files", "--cached", "--others", "--exclude-standard", "--deduplicate").splitlines()
    return {
        name: (project / name).read_bytes()
        for name in names
        if (project / name).is_file() and not (name.startswith(("logs/", "models/")) and name.count("/") > 1)
    }


def patched_files(patch: Path) -> set[str]:
    return {line.split()[-1][2:] for line in patch.read_text().splitlines() if line.startswith("diff --git ")}


def test_run_json_has_the_commit_and_a_patch_that_reproduces_the_project(built_projects, tmp_path: Path) -> None:
    from skelgen_runtime.runs import new_run

    project = copy_workspace(built_projects, tmp_path / "ws")
    ws = project.parent
    head = git(ws, "rev-parse", "HEAD").strip()
    config_yaml = (project / "configs/demo.yaml").read_text()

    clean = new_run(project, "demo", config_yaml).record()  # the previous release's positional call
    assert clean["git_commit"] == head and clean["git_dirty"] is False and clean["git_patch"] is None
    assert not (project / "logs" / clean["run_id"] / "uncommitted.patch").exists()
    assert clean["git_prefix"] == f"{project.name}/"

    # an edit, a deletion, an untracked file, a staged change: the patch holds them all; the index stays as it was
    (project / "core/config.py").write_text((project / "core/config.py").read_text() + "\n# tried a thing\n")
    (project / "README.md").unlink()
    (project / "core/extra.py").write_text("EXTRA = 1\n")
    (project / "configs/demo.yaml").write_text(config_yaml.replace("seed: 42", "seed: 7"))
    git(ws, "add", f"{project.name}/configs/demo.yaml")
    index = (ws / ".git/index").read_bytes()
    status = git(ws, "status", "--porcelain")
    record = new_run(project, "demo", config_yaml).record()
    assert (ws / ".git/index").read_bytes() == index and git(ws, "status", "--porcelain") == status
    assert record["git_commit"] == head and record["git_dirty"] is True
    patch = project / "logs" / record["run_id"] / record["git_patch"]
    assert patched_files(patch) == {
        f"{project.name}/{name}" for name in ("core/config.py", "README.md", "core/extra.py", "configs/demo.yaml")
    }

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(ws), str(clone))
    git(clone, "checkout", "-q", record["git_commit"])
    assert project_files(clone / project.name) != project_files(project)
    git(clone, "apply", str(patch))
    assert project_files(clone / project.name) == project_files(project)


def test_run_json_provenance_fields(built_projects, tmp_path: Path) -> None:
    import keras
    import numpy
    import tensorflow as tf

    from skelgen_runtime.provenance import dataset_fingerprint
    from skelgen_runtime.runs import new_run

    project = copy_workspace(built_projects, tmp_path / "ws")
    record = new_run(
        project,
        "demo",
        config={"experiment": "demo", "train": {"seed": 3}, "data": {"dataset": "shapes"}},
        monitor="val_miou",
        monitor_mode="max",
    ).record()
    assert yaml.safe_load((project / "logs" / record["run_id"] / "config.yaml").read_text())["train"] == {"seed": 3}
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert record["template_version"] == answers["_commit"]
    assert (record["tensorflow_version"], record["keras_version"], record["numpy_version"]) == (
        tf.__version__,
        keras.__version__,
        numpy.__version__,
    )
    assert record["cuda_version"] == (tf.sysconfig.get_build_info().get("cuda_version") or None)
    assert record["seed"] == 3 and record["monitor"] == "val_miou" and record["monitor_mode"] == "max"
    assert record["host"] and record["pid"] == os.getpid() and record["argv"] == sys.argv
    assert [h["status"] for h in record["history"]] == ["running"] and record["status"] == "running"

    dataset = record["dataset"]
    info_file = project / "datasets/shapes/tfrecords/dataset_info.json"
    assert dataset["name"] == "shapes" and dataset["schema"] == "segmentation" and dataset["splits"]["train"] == 48
    assert dataset["info"] == "datasets/shapes/tfrecords/dataset_info.json"
    # the fingerprint follows the shards' checksums, not the file's other fields
    info = json.loads(info_file.read_text())
    info["created"] = "another time"
    info_file.write_text(json.dumps(info))
    assert dataset_fingerprint(info_file)["fingerprint"] == dataset["fingerprint"]
    info["splits"]["train"]["shards"][0]["sha256"] = "0" * 64
    info_file.write_text(json.dumps(info))
    assert dataset_fingerprint(info_file)["fingerprint"] != dataset["fingerprint"]


def test_no_commit_gives_null_and_a_patch_of_every_file(built_projects, tmp_path: Path) -> None:
    from skelgen_runtime.runs import new_run

    project = tmp_path / "fresh" / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    git(project.parent, "init", "-q")
    # run outputs stay out of the patch even where the .gitignore does not exclude them
    ignores = (project / ".gitignore").read_text()
    (project / ".gitignore").write_text(ignores.replace("logs/*/\n", "").replace("models/*/\n", ""))
    new_run(project, "demo", "experiment: demo\n")
    record = new_run(project, "demo", "experiment: demo\n").record()
    assert record["git_commit"] is None and record["git_dirty"] is True
    patch = project / "logs" / record["run_id"] / record["git_patch"]
    assert "p/logs/.gitkeep" in patched_files(patch)
    assert not [name for name in patched_files(patch) if name.startswith(("p/logs/2", "p/models/2"))]
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(empty))
    git(empty, "apply", str(patch))
    assert project_files(empty / "p") == project_files(project)

    outside = tmp_path / "nogit"
    outside.mkdir()
    record = new_run(outside, "demo", "experiment: demo\n").record()
    assert (record["git_commit"], record["git_dirty"], record["git_patch"]) == (None, None, None)


def test_large_untracked_files_are_not_copied_into_git(built_projects, tmp_path: Path, monkeypatch, capsys) -> None:
    from skelgen_runtime import provenance
    from skelgen_runtime.runs import new_run

    project = copy_workspace(built_projects, tmp_path / "ws")
    monkeypatch.setattr(provenance, "PATCH_LIMIT", 4096)
    (project / "weights.bin").write_bytes(os.urandom(8192))
    blob = git(project, "hash-object", "weights.bin").strip()
    record = new_run(project, "demo", "experiment: demo\n").record()
    assert record["git_commit"] and record["git_dirty"] is True and record["git_patch"] is None
    assert "over 4 KiB" in record["git_error"] and "untracked: weights.bin" in record["git_error"]
    # said on the terminal too, where the user sees it, not only in run.json
    warning = capsys.readouterr().err.strip()
    assert warning == f"warning: run {record['run_id']}: {record['git_error']}"
    assert "no uncommitted.patch is saved" in warning and str(project / ".gitignore") in warning
    missing = subprocess.run(["git", "cat-file", "-e", blob], cwd=project, capture_output=True)
    assert missing.returncode != 0, "the large file's contents were written into the repository"


def test_run_ids_are_unique_within_one_second(tmp_path: Path, monkeypatch) -> None:
    from skelgen_runtime import runs

    monkeypatch.setattr(runs, "_timestamp", lambda: "20250101-120000")
    (tmp_path / "models" / "20250101-120000-demo-3").mkdir(parents=True)  # left by a run whose logs were deleted
    ids = [runs.new_run(tmp_path, "demo", "experiment: demo\n").run_id for _ in range(3)]
    assert ids == ["20250101-120000-demo", "20250101-120000-demo-2", "20250101-120000-demo-4"]
    assert [r.run_id for r in runs.list_runs(tmp_path)] == ids


RACER = """
import sys, time
from pathlib import Path
from skelgen_runtime import provenance, runs
provenance.library_versions()  # TensorFlow imported before the start, so both processes race
runs._timestamp = lambda: "20250101-120000"
root, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
print(" ".join(runs.new_run(root, "demo", "experiment: demo\\n").run_id for _ in range(5)), flush=True)
"""


def test_run_ids_are_unique_across_racing_processes(tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "root"), str(go)],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    ids = [run_id for out, _ in outputs for run_id in out.split()]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert sorted(p.name for p in (tmp_path / "root/logs").iterdir()) == sorted(ids)


def test_set_status_keeps_a_history(tmp_path: Path) -> None:
    from skelgen_runtime.runs import Run

    run = Run(tmp_path, "r")
    run.log_dir.mkdir(parents=True)
    run.set_status("running", reason="started", run_id="r")
    run.update_record(status="running", pid=1)  # unchanged status: no new entry
    run.set_status("interrupted", reason="SIGINT at epoch 2", epochs_done=2)
    run.update_record(status="complete", finished="now")  # the old way still records the change
    record = run.record()
    assert [(h["status"], h["reason"]) for h in record["history"]] == [
        ("running", "started"),
        ("interrupted", "SIGINT at epoch 2"),
        ("complete", None),
    ]
    assert all(h["at"] for h in record["history"])
    assert (record["status"], record["epochs_done"], record["pid"], record["finished"]) == ("complete", 2, 1, "now")
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        run.set_status("done")
