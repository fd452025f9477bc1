"""MLflow tracking (``train.trackers: [tensorboard, mlflow]``): one MLflow run per run, continued by a resume,
whose metrics are the very numbers of ``metrics.csv``; its params, tags and artifacts; bad settings."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git, script, train_and_kill

mlflow = pytest.importorskip("mlflow")

TINY = [
    "train.epochs=6",  # the kill after the first epoch comes well before the last, even on a loaded machine
    "train.steps_per_epoch=2",
    "data.batch_size=8",
    "data.image_size=[32,32]",
    "model.depth=2",
    'train.trackers=["tensorboard","mlflow"]',
]


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def private_project(built_projects, dest: Path, framework: str) -> Path:
    project = built_projects("segmentation", framework)
    shutil.copytree(project.parent, dest, symlinks=True)
    return dest / project.name


def csv_columns(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{column: [(epoch, value)]}`` of ``metrics.csv`` (epochs from 1, as written)."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, text in row.items():
            if key != "epoch" and text not in ("", None):
                columns.setdefault(key, []).append((int(row["epoch"]), float(text)))
    return columns


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_a_tracked_run_killed_and_resumed_is_one_mlflow_run_equal_to_metrics_csv(
    built_projects, tmp_path, monkeypatch, framework
):
    project = private_project(built_projects, tmp_path / "ws", framework)
    run_dir, killed = train_and_kill(project, ["--config", "configs/demo.yaml", *sets(*TINY)], after_epochs=1)
    assert killed.returncode != 0
    record = json.loads((run_dir / "run.json").read_text())
    first = record["mlflow"]["run_id"]
    assert "tracking_uri" not in record["mlflow"]  # the project's own store, found from the project
    script(project, "train.py", "--resume", "latest")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["mlflow"]["run_id"] == first  # the same MLflow run

    uri = f"sqlite:///{project / 'logs' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(project.name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # not mlflow.set_tracking_uri: it would outlive the test
    runs = mlflow.search_runs(experiment_ids=[experiment.experiment_id], output_format="list")
    assert [r.info.run_id for r in runs] == [first]  # nothing duplicated by the kill and the resume
    tracked = runs[0]
    columns = csv_columns(run_dir)
    assert set(tracked.data.metrics) == set(columns)
    for key, points in columns.items():
        assert tracked.data.metrics[key] == points[-1][1], key  # search_runs: the last epoch's, exactly
        history = sorted((m.step, m.value) for m in client.get_metric_history(first, key))
        assert history == points, key  # every epoch once, the very numbers of metrics.csv
    assert [step for step, _ in columns["loss"]] == [1, 2, 3, 4, 5, 6]

    assert tracked.info.status == "FINISHED" and tracked.info.run_name == run_dir.name
    tags = tracked.data.tags
    assert tags["mlflow.source.git.commit"] == record["git_commit"] == git(project, "rev-parse", "HEAD").strip()
    assert tags["skelgen.dataset_fingerprint"] == record["dataset"]["fingerprint"]
    assert tags["skelgen.template_version"] == record["template_version"]
    assert tags["skelgen.status"] == "complete"
    params = tracked.data.params
    assert params["train.epochs"] == "6" and params["model.depth"] == "2" and params["data.dataset"] == "shapes"
    assert float(params["train.learning_rate"]) > 0

    script(project, "evaluate.py", "--run", run_dir.name)
    artifacts = {a.path for a in client.list_artifacts(first)}
    assert {"config.yaml", "run.json", "curves.png", "eval_val"} <= artifacts, artifacts
    assert "eval_val/eval_val.json" in {a.path for a in client.list_artifacts(first, "eval_val")}
    scores = json.loads((run_dir / "eval_val.json").read_text())
    assert client.get_run(first).data.metrics["eval_val.miou"] == scores["miou"]
    if framework == "keras":  # an export too (the same code for both frameworks)
        script(project, "export.py", "--run", run_dir.name, "--format", "tflite")
        exported = {a.path for a in client.list_artifacts(first, "exports/tflite-best")}
        assert "exports/tflite-best/model.tflite" in exported, exported
    # artifacts under logs/, nothing beside the project (no mlruns/ folder of MLflow's file store)
    assert (project / "logs" / "mlflow-artifacts").is_dir() and not (project / "mlruns").exists()


def test_tracking_settings_are_checked_before_training(built_projects, tmp_path):
    """A file-store URI (deprecated by MLflow) and a tracker list without tensorboard are refused, named."""
    project = private_project(built_projects, tmp_path / "ws", "keras")
    env = {"MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")}
    proc = script(project, "train.py", "--config", "configs/demo.yaml", *sets(*TINY), check=False, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "file store" in proc.stderr and "MLFLOW_TRACKING_URI" in proc.stderr
    assert not (tmp_path / "mlruns").exists() and not list((project / "logs").glob("*/run.json"))
    proc = script(project, "train.py", "--config", "configs/demo.yaml", *sets('train.trackers=["mlflow"]'), check=False)
    assert proc.returncode == 2 and "tensorboard is always on" in proc.stderr, proc.stderr


def test_without_mlflow_installed_a_tracked_run_says_what_to_install(built_projects, tmp_path):
    project = private_project(built_projects, tmp_path / "ws", "keras")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "mlflow.py").write_text("raise ImportError('No module named mlflow')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/demo.yaml", *sets(*TINY)],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert proc.returncode != 0 and "pip install 'skelgen-tf[mlflow]'" in proc.stderr, proc.stderr
    assert not list((project / "logs").glob("*/run.json"))


@pytest.mark.slow
def test_two_tracked_trainings_started_at_once_share_a_new_store(built_projects, tmp_path):
    """Both create the SQLite store's tables at the same moment (a sweep's workers do): one does, the other
    waits for it (a lock beside the database), and each gets its MLflow run."""
    project = private_project(built_projects, tmp_path / "ws", "keras")
    args = [sys.executable, "train.py", "--config", "configs/demo.yaml", *sets(*TINY, "train.epochs=1")]
    procs = [
        subprocess.Popen(args, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'logs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(project.name).experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
    records = [json.loads(p.read_text()) for p in (project / "logs").glob("*/run.json")]
    assert sorted(r["mlflow"]["run_id"] for r in records) == sorted(r.info.run_id for r in runs)
