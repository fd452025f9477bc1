"""``skelgen doctor``: a healthy project passes in seconds; each check fails on its own fixture, with the fix."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ChildCPU, copy_workspace, git, skelgen


def doctor(where: Path, *args: str) -> tuple[int, dict]:
    proc = skelgen("doctor", "--project", str(where), "--json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def failing(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["status"] == "fail"]


@pytest.fixture
def project(built_projects, tmp_path: Path) -> Path:
    return copy_workspace(built_projects, tmp_path / "ws")


def test_a_healthy_project_passes_every_check_in_under_10_seconds(project: Path) -> None:
    with ChildCPU() as cpu:
        proc = skelgen("doctor", cwd=project / "core", check=False)
    seconds = cpu.seconds
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {line.split(":")[0].split()[1] for line in proc.stdout.splitlines() if line.startswith("ok ")}
    assert checks == {"versions", "template", "git", "datasets", "runs", "weights", "disk", "devices"}, proc.stdout
    assert "TensorFlow 2.21" in proc.stdout and "sees 1 CPU" in proc.stdout
    assert proc.stdout.rstrip().endswith("the project is healthy")
    assert "I0000" not in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
    assert seconds < 10, f"skelgen doctor took {seconds:.1f} CPU s"


def _pin_tensorflow(project: Path) -> str:
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace('"tensorflow-cpu>=2.16,<2.22"', '"tensorflow-cpu>=2.16,<2.20"')
    )
    return "pins tensorflow-cpu"


def _unreadable_template(project: Path) -> str:
    answers = project / ".copier-answers.yml"
    lines = [
        "_src_path: /nowhere/skelgen/template" if line.startswith("_src_path:") else line
        for line in answers.read_text().splitlines()
    ]
    answers.write_text("\n".join(lines) + "\n")
    return "/nowhere/skelgen/template cannot be read"


def _untracked_data(project: Path) -> str:
    (project / "scratch.npy").write_bytes(b"\0" * 64)
    return "untracked data or outputs that git does not ignore: scratch.npy"


def _changed_shard(project: Path) -> str:
    shard = sorted((project / "datasets/shapes/tfrecords").glob("shapes_val-*.tfrecord"))[0]
    with open(shard, "ab") as f:
        f.write(b"x")
    return f"changed since the build (SHA-256 differs): {shard.name}"


def _missing_shard(project: Path) -> str:
    shard = sorted((project / "datasets/shapes/tfrecords").glob("shapes_train-*.tfrecord"))[-1]
    shard.unlink()
    return f"missing: {shard.name}"


def _old_schema(project: Path) -> str:
    info_file = project / "datasets/shapes/tfrecords/dataset_info.json"
    info = json.loads(info_file.read_text())
    info["schema_version"] = 0
    info_file.write_text(json.dumps(info))
    return "schema version 0; this project reads version 1"


def _stuck_run(project: Path) -> str:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = project / "logs" / "20260101-000000-default"
    run.mkdir(parents=True)
    record = {"run_id": run.name, "status": "running", "host": platform.node(), "pid": int(gone.stdout)}
    (run / "run.json").write_text(json.dumps(record))
    return f"python train.py --resume {run.name}"


def _missing_weights(project: Path) -> str:
    (project / "configs/pretrained.yaml").write_text("model:\n  weights: models/encoder.weights.h5\n")
    return "configs/pretrained.yaml: model.weights names models/encoder.weights.h5, which does not exist"


def _full_disk(project: Path) -> str:
    from skelgen import api

    api.add_dataset(name="voc2012", project=project)
    raw = project / "datasets/voc2012/VOCdevkit"
    raw.mkdir()
    free, made, i = shutil.disk_usage(project).free, 0, 0
    while made < 2 * free:  # sparse files: their size counts, no block is written
        size = min(1 << 40, 2 * free - made + 1)
        with open(raw / f"part{i}.tar", "wb") as f:
            f.truncate(size)
        made, i = made + size, i + 1
    return "building voc2012 needs about"


@pytest.mark.parametrize(
    ("check", "fault"),
    [
        ("versions", _pin_tensorflow),
        ("template", _unreadable_template),
        ("git", _untracked_data),
        ("datasets", _changed_shard),
        ("datasets", _missing_shard),
        ("datasets", _old_schema),
        ("runs", _stuck_run),
        ("weights", _missing_weights),
        ("disk", _full_disk),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__.strip("_"),
)
def test_each_check_fails_on_its_fault_naming_the_fix(project: Path, check: str, fault) -> None:
    needle = fault(project)
    status, report = doctor(project, "--no-devices")
    assert status == 1 and not report["ok"]
    problems = failing(report)
    assert [f["check"] for f in problems] == [check], problems
    assert needle in problems[0]["message"] + " " + problems[0]["fix"], problems[0]
    assert problems[0]["fix"], "every failure says what to do"


def test_a_config_whose_strategy_the_devices_cannot_run_fails(project: Path) -> None:
    (project / "configs/tpu.yaml").write_text("train:\n  distribute: tpu\n")
    (project / "configs/workers.yaml").write_text("train:\n  distribute: multi_worker\n")
    status, report = doctor(project)
    messages = {f["message"].split(":")[0]: f for f in failing(report)}
    assert status == 1 and set(messages) == {"configs/tpu.yaml", "configs/workers.yaml"}, report
    assert "TPU_NAME" in messages["configs/tpu.yaml"]["message"]
    assert "TF_CONFIG" in messages["configs/workers.yaml"]["fix"]


def test_a_workspace_is_checked_project_by_project(project: Path) -> None:
    _stuck_run(project)
    proc = skelgen("doctor", "--no-devices", cwd=project.parent, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{project.name}:" and any(line.startswith("  fail runs:") for line in lines), proc.stdout
    assert lines[-1] == f"{project.parent}: 1 problem to fix, 0 warnings"


def test_outside_any_project_is_one_line(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    proc = skelgen("doctor", "--project", str(tmp_path), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "neither inside a skelgen project nor a workspace" in proc.stderr
