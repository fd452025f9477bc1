"""The run record: one folder per run in ``logs/`` and one in ``models/``.

::

    logs/RUN/run.json        status (running | complete | failed), times, versions, argv
    logs/RUN/config.yaml     the resolved config (file + overrides)
    logs/RUN/metrics.csv     one row per epoch, each epoch exactly once, also across resumes
    logs/RUN/tensorboard/    summaries
    logs/RUN/eval_SPLIT.json evaluations
    models/RUN/backup/       resume state (removed when training completes)
    models/RUN/checkpoints/  last.weights.h5, best.weights.h5
    models/RUN/final.keras   the trained model

``RUN`` is ``YYYYMMDD-HHMMSS-EXPERIMENT``, so runs sort by start time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelgen_runtime.errors import RunError
from skelgen_runtime.records.writer import atomic_write_text

__all__ = ["Run", "now_iso", "new_run", "find_run", "find_resumable", "list_runs"]


@dataclass(frozen=True)
class Run:
    """Paths of one run under a project root."""

    root: Path
    run_id: str

    @property
    def log_dir(self) -> Path:
        return self.root / "logs" / self.run_id

    @property
    def model_dir(self) -> Path:
        return self.root / "models" / self.run_id

    @property
    def config_file(self) -> Path:
        return self.log_dir / "config.yaml"

    @property
    def metrics_csv(self) -> Path:
        return self.log_dir / "metrics.csv"

    @property
    def tensorboard_dir(self) -> Path:
        return self.log_dir / "tensorboard"

    @property
    def backup_dir(self) -> Path:
        return self.model_dir / "backup"

    @property
    def checkpoint_dir(self) -> Path:
        return self.model_dir / "checkpoints"

    @property
    def final_model(self) -> Path:
        return self.model_dir / "final.keras"

    @property
    def record_file(self) -> Path:
        return self.log_dir / "run.json"

    def record(self) -> dict[str, Any]:
        try:
            return json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def status(self) -> str:
        return self.record().get("status", "unknown")

    def update_record(self, **fields: Any) -> None:
        data = self.record()
        data.update(fields)
        atomic_write_text(self.record_file, json.dumps(data, indent=2))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def new_run(root: Path, experiment: str, config_yaml: str) -> Run:
    """Create the folders and record of a new run; return it."""
    from skelgen_runtime._version import __version__

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_id, n = f"{stamp}-{experiment}", 1
    while (root / "logs" / run_id).exists():
        n += 1
        run_id = f"{stamp}-{experiment}-{n}"
    run = Run(root, run_id)
    run.log_dir.mkdir(parents=True)
    run.model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.config_file, config_yaml)
    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # pragma: no cover - the runtime always has TensorFlow
        tf_version = None
    run.update_record(
        run_id=run_id,
        status="running",
        started=now_iso(),
        argv=sys.argv,
        skelgen_version=__version__,
        tensorflow_version=tf_version,
        python=platform.python_version(),
        host=platform.node(),
        pid=os.getpid(),
        git_commit=_git_commit(root),
    )
    return run


def list_runs(root: Path) -> list[Run]:
    """Every run with a record, oldest first."""
    logs = root / "logs"
    if not logs.is_dir():
        return []
    return [Run(root, p.name) for p in sorted(logs.iterdir()) if (p / "run.json").is_file()]


def find_run(root: Path, spec: str) -> Run:
    """Resolve ``latest`` (newest complete run) or a run id (or unique prefix) to a finished run."""
    runs = list_runs(root)
    if spec == "latest":
        done = [r for r in runs if r.status == "complete"]
        if not done:
            raise RunError(f"no completed run in {root / 'logs'}; train one with python train.py")
        return done[-1]
    matches = [r for r in runs if r.run_id == spec] or [r for r in runs if r.run_id.startswith(spec)]
    if not matches:
        raise RunError(f"no run {spec!r} in {root / 'logs'}; known runs: {', '.join(r.run_id for r in runs) or 'none'}")
    if len(matches) > 1:
        raise RunError(f"run {spec!r} is ambiguous: {', '.join(r.run_id for r in matches)}")
    run = matches[0]
    if not run.final_model.is_file():
        raise RunError(f"run {run.run_id} has no trained model ({run.final_model}); "
                       f"finish it with python train.py --resume {run.run_id}")
    return run


def find_resumable(root: Path, spec: str) -> Run | None:
    """``auto``: the newest run that did not complete (None if there is none); else that run id."""
    runs = list_runs(root)
    if spec == "auto":
        unfinished = [r for r in runs if r.status != "complete"]
        return unfinished[-1] if unfinished else None
    for r in runs:
        if r.run_id == spec:
            if r.status == "complete":
                raise RunError(f"run {spec} already completed; start a new run instead")
            return r
    raise RunError(f"no run {spec!r} in {root / 'logs'} to resume")
