"""What a sweep worker does about trials whose worker died (:mod:`skelgen_runtime.sweeps.runner`).

- :func:`fail_dead`: a running trial whose worker is gone is failed: on this host when its claim file
  (``logs/sweeps/ID/trial-NNNN.lock``) is locked by nobody, on other hosts when it has sent no heartbeat for
  a minute (Optuna's ``fail_stale_trials``). A worker that died after its run had ended leaves a trial whose
  work is done: it is recorded complete (the run's best objective) or pruned instead.
- :func:`reconcile`: the run of a failed trial that still says ``running`` while nobody trains it is recorded
  failed too, with the trial's reason.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Callable

from skelgen_runtime.locks import holder_of

__all__ = ["fail_dead", "reconcile", "best_value"]


def fail_dead(study: Any, root: Path, host: str, objective: str, direction: str, say: Callable[[str], None]) -> None:
    """Fail the running trials of ``study`` whose worker is gone (module docstring)."""
    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # other hosts: a minute without a heartbeat
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker, claim = trial.system_attrs.get("worker") or {}, trial.system_attrs.get("claim")
        if worker.get("host") != host or not claim or holder_of(Path(claim)) is not None:
            continue
        if not Path(claim).exists():  # another project folder on this host: its own workers see to it
            continue
        state, value = _ended_run(trial, root, objective, direction)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if state is not None:  # the worker died after its run had ended: the trial's work is done
                study._storage.set_trial_state_values(
                    trial._trial_id, state=state, values=[value] if value is not None else None
                )
                say(f"trial {trial.number} {state.name.lower()}: its run had ended when its worker died")
                continue
            why = f"its worker (process {worker.get('pid')}) ended during the trial"
            study._storage.set_trial_system_attr(trial._trial_id, "fail_reason", why)
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            say(f"trial {trial.number} failed: {why}")


def best_value(run: Any, objective: str, direction: str) -> float | None:
    """The trial's value: the best finite ``objective`` in the run's ``metrics.csv`` (None if none)."""
    from skelgen_runtime.run_summary import best_of, read_metrics

    value, _ = best_of(read_metrics(run), objective, "max" if direction == "maximize" else "min")
    return float(value) if value is not None else None


def _ended_run(trial: Any, root: Path, objective: str, direction: str) -> tuple[Any, float | None]:
    """(COMPLETE, value) or (PRUNED, last reported value) when ``trial``'s run had ended, else (None, None)."""
    from optuna.trial import TrialState

    from skelgen_runtime.runs import Run

    run_id = trial.user_attrs.get("run_id")
    run = Run(root, run_id) if run_id else None
    if run is None or not run.record_file.is_file():
        return None, None
    if run.status == "pruned":
        steps = trial.intermediate_values
        return TrialState.PRUNED, (steps[max(steps)] if steps else None)
    value = best_value(run, objective, direction) if run.status == "complete" else None
    return (TrialState.COMPLETE, value) if value is not None else (None, None)


def reconcile(study: Any, root: Path, host: str, sweep: str) -> None:
    """A failed trial of this host whose run still says ``running`` and nobody trains: the run failed too."""
    from optuna.trial import TrialState

    from skelgen_runtime.runs import Run

    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        run_id = trial.user_attrs.get("run_id")
        if not run_id or (trial.system_attrs.get("worker") or {}).get("host") != host:
            continue
        run = Run(root, run_id)
        if not run.record_file.is_file() or run.status != "running" or run.trained_by() is not None:
            continue
        reason = trial.system_attrs.get("fail_reason") or "its sweep worker ended during the trial"
        run.set_status("failed", reason=f"sweep {sweep} trial {trial.number}: {reason}")
