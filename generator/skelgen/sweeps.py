"""``skelgen sweep``: run a project's sweep file, show its trials, draw its plots, write its best config.

The work is :mod:`skelgen_runtime.sweeps`'; this module finds the project and its storage, checks the sweep
file against the project's schema in the project's Python (which loads TensorFlow: the CLI itself never
does), and hands over.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from skelgen.api import find_project
from skelgen_runtime.errors import ConfigError, SkelgenError

__all__ = ["storage_url", "check", "run_sweep", "show_sweep", "plot_sweep", "best_config"]


def storage_url(root: Path, storage: str | None) -> str:
    """``--storage`` as given, else the project's SQLite file ``logs/sweeps.db`` (its folder made)."""
    from skelgen_runtime.sweeps.runner import default_storage

    if storage:
        return storage
    (root / "logs").mkdir(exist_ok=True)
    return default_storage(root)


def check(root: Path, file: Path, python: str = sys.executable) -> dict[str, Any]:
    """The sweep file checked against the project's config schema (:mod:`skelgen_runtime.sweeps.check`).

    Raises:
        ConfigError: the file, a key or a value is refused (named).
    """
    from skelgen_runtime.sweeps.spec import read_sweep

    read_sweep(file, root)  # the file's own sense first: no TensorFlow needed to refuse an inverted range
    proc = subprocess.run(
        [python, "-m", "skelgen_runtime.sweeps.check", str(root), str(file)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SkelgenError(f"checking {file} against the project's config failed: {tail}") from None
    if "error" in answer:
        raise ConfigError(answer["error"])
    return answer


def run_sweep(
    *,
    file: Path,
    project: Path = Path("."),
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    say: Callable[[str], None] = print,
) -> Any:
    """Check the sweep file, then run its trials until the study has ``trials`` finished ones.

    Raises:
        ConfigError: the sweep file is refused (before any trial).
        UserInputError: the storage cannot be opened, or a bad ``trials``/``workers``.
        SweepStopped: Ctrl-C; RunError: three trials failed in a row.
    """
    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.sweeps.runner import Sweep
    from skelgen_runtime.sweeps.spec import read_sweep

    if trials is not None and trials < 1:
        raise UserInputError(f"--trials {trials}: give 1 or more")
    if workers < 1:
        raise UserInputError(f"--workers {workers}: give 1 or more")
    root = find_project(Path(file).parent if project == Path(".") else project)
    file = Path(file).resolve()
    spec = read_sweep(file, root)
    url = storage_url(root, storage)
    from skelgen_runtime.sweeps.trial import open_storage

    open_storage(url, heartbeat=False)  # an unreachable storage is said before the check's seconds
    say(f"checking {file.relative_to(root) if file.is_relative_to(root) else file} against the project's config")
    answer = check(root, file)
    say(
        f"sweep {spec.name}: {trials or spec.trials} trials, {answer['direction']} {answer['objective']}, "
        f"sampler {spec.sampler} (seed {spec.seed}), pruner {spec.pruner}, {workers} worker(s)"
    )
    sweep = Sweep(
        root,
        spec,
        url,
        objective=answer["objective"],
        direction=answer["direction"],
        trials=trials,
        workers=workers,
        say=say,
    )
    return sweep.run()


def show_sweep(*, sweep: str, project: Path = Path("."), storage: str | None = None) -> Any:
    from skelgen_runtime.sweeps.results import load_results

    root = find_project(project)
    return load_results(storage_url(root, storage), sweep)


def plot_sweep(*, sweep: str, out: Path, project: Path = Path("."), storage: str | None = None) -> list[Path]:
    from skelgen_runtime.sweeps.results import save_plots

    root = find_project(project)
    return save_plots(storage_url(root, storage), sweep, out)


def best_config(*, sweep: str, out: Path, project: Path = Path("."), storage: str | None = None) -> Any:
    from skelgen_runtime.sweeps.results import load_results, save_best

    root = find_project(project)
    return save_best(root, load_results(storage_url(root, storage), sweep), out)
