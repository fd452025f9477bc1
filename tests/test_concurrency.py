"""Two processes at once in one project: trainings started together get their own runs and share no
file; a run being trained is neither resumed nor updated beside it; a dataset being built is not built
again beside it; the locks that say so are never left behind by a killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_training_control import TINY

from conftest import copy_workspace, epochs_logged, skelgen

pytestmark = pytest.mark.slow

BUSY = 75  # BusyError's exit status (EX_TEMPFAIL)


def _wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _train(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *TINY, *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _files(project: Path) -> dict[str, float]:
    """Every file outside logs/, models/, .git and __pycache__ with its modification time."""
    skip = {"logs", "models", ".git", "__pycache__"}
    return {
        str(p.relative_to(project)): p.stat().st_mtime
        for p in project.rglob("*")
        if p.is_file() and not skip & set(p.relative_to(project).parts)
    }


def test_two_trainings_started_together_get_their_own_runs_and_share_no_file(built_projects, tmp_path: Path) -> None:
    project = copy_workspace(built_projects, tmp_path / "ws")
    before = _files(project)
    procs = [_train(project, "--set", "train.epochs=2") for _ in range(2)]  # the same second
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    runs = sorted(p.parent for p in (project / "logs").glob("*/run.json"))
    assert len(runs) == 2 and runs[0].name != runs[1].name
    assert {json.loads((r / "run.json").read_text())["pid"] for r in runs} == {p.pid for p in procs}
    for run in runs:  # each run's record, curves and model are its own and whole
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "complete" and epochs_logged(run) == [1, 2]
        assert (project / "models" / run.name / "final.keras").is_file()
    assert _files(project) == before, "a training wrote outside its own run folders"


def test_a_run_being_trained_is_neither_resumed_nor_updated_beside_it(built_projects, tmp_path: Path) -> None:
    from skelgen_runtime.locks import holder_of

    project = copy_workspace(built_projects, tmp_path / "ws")
    trainer = _train(project, "--set", "train.epochs=500")
    try:
        locks = lambda: [p for p in (project / "logs").glob("*/train.lock") if holder_of(p)]  # noqa: E731
        _wait_for(lambda: locks() or trainer.poll() is not None, "the training to start")
        assert trainer.poll() is None, trainer.communicate()
        run = locks()[0].parent.name
        for spec in (run, "auto"):  # by id, and the newest unfinished run
            proc = subprocess.run(
                [sys.executable, "train.py", "--resume", spec], cwd=project, capture_output=True, text=True
            )
            last = proc.stderr.strip().splitlines()[-1]
            assert proc.returncode == BUSY, proc.stderr
            assert last.startswith(f"error: run {run} is being trained by process {trainer.pid} (") and (
                f"python train.py --resume {run}" in last
            ), last
        update = skelgen("update", cwd=project, check=False)
        assert update.returncode == BUSY, update.stdout + update.stderr
        assert f"run {run} is training (process {trainer.pid} " in update.stderr
        assert epochs_logged(project / "logs" / run) == sorted(set(epochs_logged(project / "logs" / run)))
        assert trainer.poll() is None, "the refused commands disturbed the training"
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.communicate(timeout=60)
    assert holder_of(project / "logs" / run / "train.lock") is None  # a killed training holds nothing


SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import ImageFolderSource, LabelMap

    class Slow(ImageFolderSource):
        def encode(self, item, split):
            time.sleep(float(sys.argv[2]))
            return super().encode(item, split)

    main(dataset="shapes", default_source=Path(sys.argv[1]), out_dir=Path(sys.argv[1]) / "tfrecords",
         schema_task="classification", make_source=lambda root: Slow(root, LabelMap(("circle", "square", "triangle"))),
         argv=["--workers", "1"])
    """
)


def test_a_second_build_of_a_dataset_being_built_is_refused_naming_the_first(tmp_path: Path) -> None:
    from skelgen_runtime.locks import holder_of
    from skelgen_runtime.samples.shapes import write_shapes

    raw = tmp_path / "shapes"
    write_shapes(raw, task="classification", counts={"train": 30, "val": 9}, size=16)
    (tmp_path / "build.py").write_text(SLOW_BUILD)
    lock = raw / "tfrecords" / ".build.lock"

    def build(delay: float) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(tmp_path / "build.py"), str(raw), str(delay)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = build(0.5)
    try:
        _wait_for(lambda: holder_of(lock) is not None or first.poll() is not None, "the first build to start")
        assert first.poll() is None, first.communicate()
        second = build(0)
        out, err = second.communicate(timeout=120)
        assert second.returncode == BUSY, out + err
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith(f"error: {raw / 'tfrecords'} is being built by process {first.pid} (")
        )
        assert first.poll() is None, "the refused build disturbed the first"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert holder_of(lock) is None  # a killed build holds nothing: the next build runs
    third = build(0)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    info = json.loads((raw / "tfrecords" / "dataset_info.json").read_text())
    assert (info["splits"]["train"]["count"], info["splits"]["val"]["count"]) == (30, 9)
    assert os.listdir(raw / "tfrecords").count(".build.lock") == 1
