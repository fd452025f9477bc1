"""End to end: a generated project's own test suite, and the demo's quality on shapes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import script


@pytest.mark.slow
def test_generated_project_own_tests_pass(shapes_project: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=shapes_project, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout and "skipped" not in proc.stdout


@pytest.mark.slow
def test_demo_learns_shapes(shapes_project: Path, tmp_path: Path) -> None:
    """README command 1's job: the demo config reaches val mIoU >= 0.85 on shapes."""
    import shutil

    project = tmp_path / "demo"
    shutil.copytree(shapes_project, project, symlinks=True)
    script(project, "datasets/build_shapes_to_tfrecord.py")
    t0 = time.perf_counter()
    script(project, "train.py", "--config", "configs/demo.yaml", timeout=900)
    train_seconds = time.perf_counter() - t0
    out = script(project, "evaluate.py", "--run", "latest").stdout
    run_dir = next((project / "logs").glob("*/eval_val.json")).parent
    miou = json.loads((run_dir / "eval_val.json").read_text())["miou"]
    print(f"demo: val miou {miou:.4f}, training {train_seconds:.0f}s\n{out}")
    assert miou >= 0.85
