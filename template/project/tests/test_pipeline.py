"""Smoke test of this project end to end on a few examples: build -> view -> train -> evaluate -> predict.

It runs in a copy of the project under a temporary folder, reading the raw data of the dataset
named in configs/default.yaml through symlinks, so the project's own logs/ and models/ stay as they are.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASET = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["data"]["dataset"]
TIMEOUT = 600


def run(sandbox: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=sandbox, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    if not (ROOT / "datasets" / f"build_{DATASET}_to_tfrecord.py").is_file():
        pytest.skip(f"dataset {DATASET!r} (configs/default.yaml) has not been added: skelgen add-dataset {DATASET}")
    box = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", ".git", "logs", "models", "tfrecords", "data", "annotations")
    shutil.copytree(ROOT, box, dirs_exist_ok=True, ignore=ignore)
    for entry in (ROOT / "datasets" / DATASET).iterdir():
        if entry.name != "tfrecords" and not (box / "datasets" / DATASET / entry.name).exists():
            (box / "datasets" / DATASET / entry.name).symlink_to(entry)
    return box


def test_build_records(sandbox: Path) -> None:
    run(sandbox, f"datasets/build_{DATASET}_to_tfrecord.py", "--max-examples", "8", "--workers", "2", "--shard-size", "4")
    info = json.loads((sandbox / "datasets" / DATASET / "tfrecords" / "dataset_info.json").read_text())
    assert info["splits"]["train"]["count"] == 8
    assert len(info["splits"]["train"]["shards"]) == 2


def test_view_records(sandbox: Path, tmp_path: Path) -> None:
    run(sandbox, f"datasets/tfrecord2image_{DATASET}_format.py", "--split", "val", "--num", "2", "--out", str(tmp_path))
    assert len(list(tmp_path.glob("*.png"))) == 3  # two pictures and the grid


def test_train_evaluate_predict(sandbox: Path, tmp_path: Path) -> None:
    out = run(sandbox, "train.py", "--config", "configs/demo.yaml", "--set", "train.epochs=1",
              "--set", "train.steps_per_epoch=1", "--set", "data.batch_size=2", "--set", "data.eval_batch_size=4")
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    with open(sandbox / "logs" / run_id / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0"]
    assert (sandbox / "models" / run_id / "final.keras").is_file()

    run(sandbox, "evaluate.py", "--run", "latest")
    scores = json.loads((sandbox / "logs" / run_id / "eval_val.json").read_text())
    assert 0.0 <= scores["miou"] <= 1.0 and scores["examples"] == 8

    run(sandbox, "predict.py", "--run", run_id, "--output", str(tmp_path))
    assert len(list(tmp_path.glob("*_label.png"))) == 8
    assert len(list(tmp_path.glob("*_overlay.png"))) == 8
