"""What every benchmark group of ``run.py`` shares: result rows, interleaved timing, subprocesses, fixtures.

A row compares *ours* with a *baseline* measured in the same run, repetitions interleaved
(``ours, baseline, ours, baseline, ...``) so that load from other processes on the machine hits
both alike; each side's value is the median of its repetitions.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

__all__ = [
    "Row",
    "Settings",
    "interleave",
    "run_timed",
    "run_phased",
    "python",
    "quiet_env",
    "make_project",
    "write_shapes_split",
]


@dataclass(frozen=True)
class Settings:
    """How big and how often: the full suite's sizes or ``--quick``'s tiny ones."""

    quick: bool
    reps: int
    work: Path

    def pick(self, full, quick):
        """``full`` normally, ``quick`` in ``--quick`` mode."""
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the table: ``ratio`` is ours over the baseline, oriented so that higher is better.

    Attributes:
        group: e.g. ``"build"``.
        name: what is compared, e.g. ``"shapes 2,400 images, 1 worker vs minimal writer"``.
        ours, baseline: the medians, in ``unit``.
        unit: e.g. ``"s"`` or ``"examples/s"``.
        higher_is_better: whether larger values of ``unit`` are better (speeds) or not (times).
        target: the ratio (or, with ``compare="difference"``, the margin) the issue asks for (``None``: reported only).
        samples: every repetition of each side, for the JSON.
        note: what the reader should know (sizes, workers).
    """

    group: str
    name: str
    ours: float
    baseline: float
    unit: str
    higher_is_better: bool
    target: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    note: str = ""
    #: ``"ratio"`` (ours / baseline, oriented) or ``"difference"`` (ours - baseline, oriented): what ``target`` bounds
    compare: str = "ratio"

    @property
    def ratio(self) -> float:
        if self.compare == "difference":
            return self.ours - self.baseline if self.higher_is_better else self.baseline - self.ours
        if self.higher_is_better:
            return self.ours / self.baseline if self.baseline else float("inf")
        return self.baseline / self.ours if self.ours else float("inf")

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target

    def to_json(self) -> dict:
        return {**asdict(self), "ratio": round(self.ratio, 3), "met": self.met}


def interleave(variants: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Call each variant once per repetition, in turn; return every value of each."""
    values: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, measure in variants.items():
            values[name].append(measure())
    return values


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment for measured subprocesses: TensorFlow's start-up logs off."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def python(*args: str | Path) -> list[str]:
    """A command line running this interpreter."""
    return [sys.executable, *map(str, args)]


def run_timed(cmd: Sequence[str], *, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> float:
    """Run ``cmd`` to completion and return its wall time in seconds; fail loudly if it fails."""
    return run_phased(cmd, cwd=cwd, env=env, timeout=timeout)[0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds (user + system) of the last command :func:`run_phased` ran, its own workers included
last_cpu_seconds = 0.0
#: what that command printed on stdout
last_stdout = ""


def run_phased(
    cmd: Sequence[str], *, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> tuple[float, float | None]:
    """Like :func:`run_timed`, also returning the ``phase_seconds=S`` the command printed last (or ``None``).

    The command's CPU time (its own and that of the processes it waited for) is left in
    :data:`last_cpu_seconds`, its output in :data:`last_stdout`.
    """
    global last_cpu_seconds, last_stdout
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env or quiet_env(), capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    last_cpu_seconds, last_stdout = _children_cpu() - cpu, proc.stdout
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n"
            f"{proc.stderr[-4000:]}"
        )
    phases = [line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("phase_seconds=")]
    return elapsed, float(phases[-1]) if phases else None


def make_project(work: Path, name: str = "bench") -> Path:
    """A freshly generated segmentation project (keras) with an empty ``shapes`` dataset."""
    from skelgen import api

    shutil.rmtree(work / "ws" / name, ignore_errors=True)  # a --work folder kept from an earlier run
    project = api.new_project(name=name, task="segmentation", framework="keras", workspace=work / "ws").path
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
    return project


def write_shapes_split(root: Path, counts: dict[str, int], size: int) -> Path:
    """The segmentation shapes dataset under ``root`` (written once; reused if complete)."""
    from skelgen_runtime.samples.shapes import write_shapes

    stamp = root / f".complete-{size}-{'-'.join(f'{k}{v}' for k, v in sorted(counts.items()))}"
    if not stamp.exists():
        write_shapes(root, task="segmentation", counts=counts, size=size)
        stamp.touch()
    return root
