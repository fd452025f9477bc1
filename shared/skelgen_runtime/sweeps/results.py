"""What a sweep found: the ranked trials, the best trial's complete config, Optuna's plots.

JSON of ``skelgen sweep show ID --json`` (:func:`results_json`), trials ranked (complete by objective, best
first; then pruned, running and failed ones by number)::

    {"sweep": ID, "objective": NAME, "direction": "maximize" | "minimize", "finished": N,
     "trials": [{"trial": N, "run": RUN_ID | null, "status": "complete" | "pruned" | "running" | "failed",
                 "value": FLOAT | null, "params": {KEY: VALUE}, "reason": TEXT | null}, ...]}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelgen_runtime.errors import RunError, UserInputError, did_you_mean
from skelgen_runtime.sweeps.trial import open_storage

__all__ = ["TrialRow", "SweepResults", "load_results", "results_json", "results_text", "save_best", "save_plots"]

_STATUS = {"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running", "WAITING": "running", "FAIL": "failed"}


@dataclass(frozen=True)
class TrialRow:
    """One trial: its number, run, status, objective value (complete trials), parameters and failure reason."""

    trial: int
    run: str | None
    status: str
    value: float | None
    params: dict[str, Any]
    reason: str | None


@dataclass(frozen=True)
class SweepResults:
    sweep: str
    objective: str
    direction: str
    trials: list[TrialRow]

    @property
    def finished(self) -> int:
        return sum(row.status in ("complete", "pruned") for row in self.trials)

    @property
    def best(self) -> TrialRow | None:
        return next((row for row in self.trials if row.status == "complete"), None)


def load_results(storage_url: str, sweep: str) -> SweepResults:
    """The trials of study ``sweep``, ranked (module docstring).

    Raises:
        UserInputError: no study of that name (the closest and the known ones named) or the storage cannot be opened.
    """
    import optuna

    storage = open_storage(storage_url, heartbeat=False)
    names = [s.study_name for s in storage.get_all_studies()]
    if sweep not in names:
        known = f"the sweeps there: {', '.join(sorted(names))}" if names else "it holds no sweep yet"
        raise UserInputError(f"no sweep {sweep!r} in the storage{did_you_mean(sweep, names)}; {known}")
    study = optuna.load_study(study_name=sweep, storage=storage)
    kept = study.user_attrs.get("skelgen") or {}
    direction = kept.get("direction") or study.direction.name.lower()
    rows = []
    for t in study.get_trials(deepcopy=False):
        status = _STATUS.get(t.state.name, t.state.name.lower())
        reason = t.system_attrs.get("fail_reason") if status == "failed" else None
        rows.append(TrialRow(t.number, t.user_attrs.get("run_id"), status, t.value, dict(t.params), reason))
    sign = -1.0 if direction == "maximize" else 1.0
    order = {"complete": 0, "pruned": 1, "running": 2, "failed": 3}
    rows.sort(key=lambda r: (order.get(r.status, 4), sign * r.value if r.value is not None else 0.0, r.trial))
    return SweepResults(sweep, kept.get("objective", "value"), direction, rows)


def results_json(results: SweepResults) -> dict[str, Any]:
    return {
        "sweep": results.sweep,
        "objective": results.objective,
        "direction": results.direction,
        "finished": results.finished,
        "trials": [row.__dict__ for row in results.trials],
    }


def results_text(results: SweepResults) -> str:
    """The ranked table, then the best trial and what to do with it."""
    keys = sorted({key for row in results.trials for key in row.params})
    head = ["trial", "run", "status", results.objective, *keys]
    lines = [head]
    for row in results.trials:
        value = f"{row.value:.4f}" if row.value is not None else "-"
        params = [_shown(row.params.get(k)) for k in keys]
        lines.append([str(row.trial), row.run or "-", row.status, value, *params])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.append(f"{results.finished} finished trials ({results.direction} {results.objective})")
    for row in results.trials:
        if row.status == "failed" and row.reason:
            out.append(f"trial {row.trial} failed: {row.reason}")
    if results.best is not None:
        out.append(
            f"best: trial {results.best.trial} (run {results.best.run}); its config: "
            f"skelgen sweep best {results.sweep} --out configs/best.yaml"
        )
    return "\n".join(out)


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def save_best(root: Path, results: SweepResults, out: Path) -> tuple[TrialRow, Path]:
    """Copy the best trial's complete config (its run's ``logs/RUN/config.yaml``) to ``out``.

    Raises:
        RunError: no trial completed yet, or the best trial's run is not in this project.
    """
    from skelgen_runtime.files import atomic_write_text
    from skelgen_runtime.layout import ProjectLayout

    best = results.best
    if best is None:
        raise RunError(f"sweep {results.sweep} has no complete trial yet; run it: skelgen sweep run sweeps/FILE.yaml")
    source = ProjectLayout(root).run_logs(best.run or "?") / "config.yaml"
    if not best.run or not source.is_file():
        raise RunError(
            f"trial {best.trial}'s run {best.run} is not in {root} (a worker on another machine trained it): "
            "copy its logs/RUN/config.yaml from there"
        )
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# sweep {results.sweep}, trial {best.trial} (run {best.run}): {results.objective} {best.value:.6g}\n"
    atomic_write_text(out, header + source.read_text())
    return best, out


def save_plots(storage_url: str, sweep: str, out: Path) -> list[Path]:
    """Optuna's optimisation history and parameter importances (PED-ANOVA, no scikit-learn) as PNGs in ``out``.

    The importances need two complete trials or more; with fewer, only the history is drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as oplt

    load_results(storage_url, sweep)  # the sweep exists (else the closest name is said)
    study = optuna.load_study(study_name=sweep, storage=open_storage(storage_url, heartbeat=False))
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    import warnings

    written = []
    drawings = [("history.png", lambda: oplt.plot_optimization_history(study))]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) >= 2:
        drawings.append(
            ("importances.png", lambda: oplt.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator()))
        )
    for name, draw in drawings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib module experimental
            axes = draw()
        figure: Any = getattr(axes, "figure", axes)  # Optuna returns Axes (a Figure for several panels)
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        path = out / name
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
