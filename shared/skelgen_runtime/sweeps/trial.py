"""The training side of a sweep trial: ``train.py`` started by a sweep worker links its run to the trial.

A worker (:mod:`skelgen_runtime.sweeps.runner`) starts ``python train.py --config BASE --set ...`` with the
environment variable :data:`ENV` holding the trial (JSON: storage URL, study, trial id and number, objective,
direction, pruner, the worker's pid). :class:`Training` then

- tags the run: ``run.json`` gets ``"sweep": {"id": STUDY, "trial": NUMBER}`` and the trial the run id
  (user attribute ``run_id``), so either finds the other;
- after every epoch (saved: its row, checkpoints and resume state on disk) reports the objective to the
  study and asks the pruner; a pruned run stops there and is recorded ``pruned`` with the epoch;
- dies with its worker: a ``kill -9`` of the worker ends the training too (``PR_SET_PDEATHSIG`` on Linux,
  else a thread that watches the parent), so no orphan trains a trial the study has failed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from skelgen_runtime.errors import SkelgenError

__all__ = ["ENV", "TrialLink", "make_pruner", "open_storage"]

#: the environment variable a sweep worker passes the trial in
ENV = "SKELGEN_SWEEP_TRIAL"


def make_pruner(name: str) -> Any:
    """Optuna's pruner for a sweep file's ``pruner`` (median, hyperband or none)."""
    import optuna

    if name == "median":  # the first 3 trials always run whole: a median of fewer says little
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_storage(url: str, *, heartbeat: bool = True) -> Any:
    """Optuna's RDB storage at ``url`` (SQLite, PostgreSQL, MySQL), heartbeats on (a trial whose worker died on
    another machine is failed after a minute without one).

    Raises:
        MissingDependencyError: Optuna or the database's driver is not installed (the pip command said).
        UserInputError: the database cannot be reached or opened (one line, the password hidden).
    """
    from skelgen_runtime.errors import MissingDependencyError, UserInputError

    try:
        import optuna
        from sqlalchemy.engine import make_url
    except ImportError:
        raise MissingDependencyError("sweeps need Optuna: pip install 'skelgen-tf[sweep]'") from None
    try:
        shown = make_url(url).render_as_string(hide_password=True)
        backend = make_url(url).get_backend_name()
    except Exception:  # noqa: BLE001 - sqlalchemy's parse errors
        raise UserInputError(f"--storage {url!r} is not a database URL (e.g. sqlite:///logs/sweeps.db)") from None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 120}  # workers wait for each other's writes
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=10 if heartbeat else None, grace_period=60
            )
    except ImportError as err:
        raise MissingDependencyError(
            f"storage {shown} needs a database driver ({err.name or err}): for PostgreSQL pip install "
            "'psycopg[binary]' (and a URL postgresql+psycopg://...), for MySQL pip install PyMySQL"
        ) from None
    except Exception as err:  # noqa: BLE001 - sqlalchemy/driver errors: connection refused, bad file, ...
        first = str(getattr(err, "orig", None) or err).strip().splitlines()
        raise UserInputError(
            f"cannot open sweep storage {shown}: {first[0] if first else type(err).__name__}"
        ) from None


def _die_with(parent: int) -> None:
    """End this process when ``parent`` (the sweep worker) ends, however it ends."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the worker had ended before the line above
        os._exit(137)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(137)

    threading.Thread(target=watch, name="sweep-parent-watch", daemon=True).start()


@dataclass
class TrialLink:
    """The sweep trial this training run is (module docstring); :meth:`from_env` when a worker started it."""

    storage_url: str
    study: str
    trial_id: int
    number: int
    objective: str
    direction: str
    pruner: str
    parent: int | None = None
    _opened: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrialLink | None:
        raw = (environ if environ is not None else os.environ).get(ENV)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data and not k.startswith("_")})
        except (ValueError, TypeError, KeyError) as err:
            raise SkelgenError(f"{ENV} is not a sweep trial ({err}); unset it to train outside a sweep") from None

    def attach(self) -> None:
        """Die with the worker; call once, early."""
        if self.parent:
            _die_with(int(self.parent))

    def _trial(self) -> Any:
        import optuna

        if self._opened is not None:
            return self._opened
        study = optuna.load_study(
            study_name=self.study,
            storage=open_storage(self.storage_url, heartbeat=False),
            pruner=make_pruner(self.pruner),
        )
        self._opened = optuna.trial.Trial(study, self.trial_id)
        return self._opened

    def tag(self, run: Any) -> None:
        """Link ``run`` and the trial both ways."""
        run.update_record(sweep={"id": self.study, "trial": self.number})
        self._trial().set_user_attr("run_id", run.run_id)

    def report(self, epoch: int, logs: Mapping[str, Any]) -> bool:
        """Report epoch ``epoch`` (from 0) of the objective; True when the pruner stops the trial there.

        Raises:
            TrainingFailed: the run does not log the objective (the logged names said).
        """
        from skelgen_runtime.training.control import TrainingFailed

        if self.objective not in logs:
            raise TrainingFailed(
                f"the sweep's objective {self.objective!r} is not logged; logged: {', '.join(sorted(logs))} "
                "(set objective: in the sweep file)"
            )
        value = float(logs[self.objective])
        trial = self._trial()
        if not math.isfinite(value):
            return False  # a NaN loss fails the run by itself; a NaN metric is not a value to compare
        trial.report(value, step=epoch + 1)
        return bool(trial.should_prune())
