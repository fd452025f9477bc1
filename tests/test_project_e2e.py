"""End to end: every generated project's own test suite, and the demos' quality on shapes.

The demo runs are the issue's acceptance numbers, measured on every CI run for the combinations
that fit the suite's time budget; the others are measured by hand (see the README's note).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ChildCPU, make_project, script
from skelgen.api import FRAMEWORKS, TASKS


@pytest.fixture(scope="module")
def shapes_projects(tmp_path_factory):
    """``get(task, framework)``: a fresh project with the full shapes dataset added (not built)."""
    from skelgen import api

    cache: dict[tuple[str, str], Path] = {}

    def get(task: str, framework: str) -> Path:
        if (task, framework) not in cache:
            project = make_project(tmp_path_factory.mktemp("ws"), f"{task}_{framework}", task, framework)
            api.add_dataset(name="shapes", project=project)
            cache[task, framework] = project
        return cache[task, framework]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_generated_project_own_tests_pass(shapes_projects, task: str, framework: str) -> None:
    project = shapes_projects(task, framework)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout and "skipped" not in proc.stdout


#: (task, framework, {score: minimum}) measured on every CI run
DEMOS = [
    ("segmentation", "keras", {"miou": 0.85}),
    ("classification", "keras", {"accuracy": 0.95}),
    ("classification", "tf", {"accuracy": 0.95}),
    ("detection", "keras", {"ap50": 0.80, "ap": 0.40}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "framework", "minimum"), DEMOS, ids=[f"{t}-{f}" for t, f, _ in DEMOS])
def test_demo_learns_shapes(shapes_projects, task: str, framework: str, minimum: dict[str, float]) -> None:
    """The demo config reaches the issue's quality bar on shapes within about 6 minutes of training on 2 cores,
    measured as its CPU time over the 2 cores (alone on the machine a demo keeps both 80-90 % busy; the
    suite runs two tests side by side, so wall time would count the neighbour's work)."""
    project = shapes_projects(task, framework)
    script(project, "datasets/build_shapes_to_tfrecord.py")
    with ChildCPU() as cpu:  # the suite runs two tests side by side: the demo's own CPU time, not wall time
        script(project, "train.py", "--config", "configs/demo.yaml", timeout=1800)
    train_seconds = cpu.seconds / 2  # on 2 cores
    out = script(project, "evaluate.py", "--run", "latest").stdout
    scores = json.loads(next((project / "logs").glob("*/eval_val.json")).read_text())
    shown = ", ".join(f"{k} {scores[k]:.4f}" for k in minimum)
    print(f"demo {task}/{framework}: {shown}, training {train_seconds:.0f}s\n{out}")
    for key, low in minimum.items():
        assert scores[key] >= low, f"{key} {scores[key]:.4f} < {low}"
    assert train_seconds <= 6 * 60 * 1.25, f"training took {train_seconds:.0f}s"
